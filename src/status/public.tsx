/** @jsxImportSource hono/jsx */
// What strangers may see when the operator opts in (publicStatus, publicBadges): host
// names and up or down, read from the snapshot in KV, so a public page or a badge costs
// one KV read and never a Durable Object request. Nothing else leaves the monitor.
import type { Config } from "../config.ts";
import type { Snapshot } from "../monitor/state.ts";
import { STYLE } from "./style.ts";

export type PublicState = "up" | "down" | "unknown";

/**
 * Up or down as the last snapshot says; unknown when there is none or it is older than
 * the monitor's promise to republish (then it says nothing about now).
 */
export function publicState(snapshot: Snapshot | null, hostId: string, now: number, lateAfterMs: number): PublicState {
  if (snapshot === null || now - snapshot.publishedAt > lateAfterMs) return "unknown";
  const host = snapshot.hosts.find((candidate) => candidate.id === hostId);
  if (host === undefined) return "unknown";
  return host.conditions.length === 0 ? "up" : "down";
}

export function renderPublic(config: Config, snapshot: Snapshot | null, now: number, lateAfterMs: number): string {
  const hosts = config.hosts.map((host) => ({ name: host.name, state: publicState(snapshot, host.id, now, lateAfterMs) }));
  const down = hosts.filter((host) => host.state === "down").length;
  return (
    "<!doctype html>" +
    (
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <meta http-equiv="refresh" content="60" />
          <title>{down === 0 ? "Status" : `${down} down · Status`}</title>
          <style dangerouslySetInnerHTML={{ __html: STYLE }} />
        </head>
        <body>
          <main class="narrow public">
            <h1>Status</h1>
            <ul>
              {hosts.map((host) => (
                <li data-public-host={host.name}>
                  <span>{host.name}</span>
                  <span class={host.state}>{host.state}</span>
                </li>
              ))}
            </ul>
            <p class="muted">{snapshot === null ? "No report from the monitor yet." : `As of ${new Date(snapshot.publishedAt).toISOString().slice(0, 16).replace("T", " ")} UTC.`}</p>
          </main>
        </body>
      </html>
    ).toString()
  );
}

const BADGE_COLOUR: Record<PublicState, string> = { up: "#2e7d32", down: "#c62828", unknown: "#757575" };

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A flat badge, "<name> | up", sized for its text (about 7 px a character at 11 px). */
export function renderBadge(name: string, state: PublicState): string {
  const label = escapeXml(name);
  const left = Math.round(name.length * 7 + 12);
  const right = Math.round(state.length * 7 + 12);
  const width = left + right;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="20" role="img" aria-label="${label}: ${state}">
<title>${label}: ${state}</title>
<rect width="${left}" height="20" fill="#555"/><rect x="${left}" width="${right}" height="20" fill="${BADGE_COLOUR[state]}"/>
<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">
<text x="${left / 2}" y="14">${label}</text><text x="${left + right / 2}" y="14">${state}</text>
</g>
</svg>`;
}
