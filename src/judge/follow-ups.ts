// What the cron tells the chat about the operator's own actions: a mute that ended,
// and what became of a remote pause (applied, refused, or never picked up). Pure, like
// the judge: the stored command, the host's record and what was already said, in;
// lines to send and the new "already said" out.
import type { Config, HostConfig } from "../config.ts";
import { utcClock } from "../format.ts";
import { escapeHtml } from "../phone/messages.ts";
import type { PingRecord } from "./records.ts";
import type { FollowUps, OperatorState, StoredCommand } from "../monitor/state.ts";

export interface FollowUpInput {
  host: HostConfig;
  timing: Config["timing"];
  previous: FollowUps | undefined;
  operator: OperatorState | null;
  command: StoredCommand | null;
  record: PingRecord | null;
  /** Labels of the host's open conditions, for the "unmuted" notice. */
  openConditions: readonly string[];
  now: number;
}

export interface FollowUpOutput {
  followUps: FollowUps;
  lines: string[];
  changed: boolean;
}

/** How long a confirmed pause may take to show up in a ping before the chat hears it did not. */
export function commandDeadlineMs(host: HostConfig): number {
  // Three pings' worth: the agent applies a command on the ping after the one that carried it.
  return (3 * host.intervalSeconds + 15) * 1000;
}


export function reviewFollowUps(input: FollowUpInput): FollowUpOutput {
  const { host, operator, command, record, now } = input;
  const followUps: FollowUps = { muteEndAnnounced: null, commandReported: null, commandTimedOut: null, ...input.previous };
  const lines: string[] = [];
  const name = `<b>${escapeHtml(host.id)}</b>`;

  const mutedUntil = operator?.mutedUntil ?? null;
  if (mutedUntil !== null && mutedUntil <= now && followUps.muteEndAnnounced !== mutedUntil) {
    const before = operator?.mutedConditions ?? [];
    const cleared = before.filter((kind) => !input.openConditions.includes(kind));
    const opened = input.openConditions.filter((kind) => !before.includes(kind));
    const parts = [
      input.openConditions.length === 0 ? "all clear" : `open: ${escapeHtml(input.openConditions.join(", "))}`,
      ...(cleared.length > 0 ? [`recovered while muted: ${escapeHtml(cleared.join(", "))}`] : []),
      ...(opened.length > 0 && before.length > 0 ? [`new while muted: ${escapeHtml(opened.join(", "))}`] : []),
    ];
    lines.push(`🔔 ${name} is no longer muted (${parts.join("; ")}).`);
    followUps.muteEndAnnounced = mutedUntil;
  }

  if (command !== null && command.confirmedAt !== null && followUps.commandReported !== command.command.id) {
    const id = escapeHtml(command.command.id);
    const result = record?.commandResult?.id === command.command.id ? record.commandResult : undefined;
    if (result !== undefined) {
      const detail = result.detail ? ` (${escapeHtml(result.detail)})` : "";
      switch (result.outcome) {
        case "applied":
          lines.push(`⏸️ ${name} paused by remote command ${id}, applied at ${utcClock(result.at)} (host clock). Resume is a human edit of circuit.json on the host.`);
          break;
        case "already_paused":
          lines.push(`⏸️ ${name} was already paused; remote command ${id} left circuit.json as it was.`);
          break;
        case "not_allowed":
          lines.push(`⚠️ ${name} refused remote command ${id}: its agent runs without --allow-remote-pause. Trading was NOT paused.`);
          break;
        default:
          lines.push(`⚠️ ${name} failed to apply remote command ${id}${detail}. Trading was NOT paused.`);
      }
      followUps.commandReported = command.command.id;
    } else if (followUps.commandTimedOut !== command.command.id && now - command.confirmedAt > commandDeadlineMs(host)) {
      // Said once; the command stays queued until it expires, so a late outcome is still reported.
      lines.push(
        `⚠️ ${name} has not applied remote pause ${id} ${Math.round((now - command.confirmedAt) / 60_000)} min after it was confirmed ` +
          `(host dark, or agent without --allow-remote-pause?). Trading may NOT be paused; the command stays queued until ${utcClock(command.command.expiresAt)}.`,
      );
      followUps.commandTimedOut = command.command.id;
    }
  }

  const changed =
    followUps.muteEndAnnounced !== (input.previous?.muteEndAnnounced ?? null) ||
    followUps.commandReported !== (input.previous?.commandReported ?? null) ||
    followUps.commandTimedOut !== (input.previous?.commandTimedOut ?? null);
  return { followUps, lines, changed };
}
