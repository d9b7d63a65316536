// What the status page costs to render, in Node: a Worker on the free plan has 10 ms of
// CPU per request. The page is built by the monitor's real core (node:sqlite) for many
// hosts with a week of history, then rendered by src/status/page.tsx, which esbuild
// bundles here (Node runs .ts but not JSX).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { benchConfig, benchCore, cpuMicros, DAY_START, percentile, pinger } from "./worker-sim.ts";

type PageModule = typeof import("../../src/status/page.tsx");

export interface StatusPageCost {
  hosts: number;
  events: number;
  bytes: number;
  medianMs: number;
  p95Ms: number;
}

const WEEK_MS = 7 * 86_400_000;

async function loadPage(root: string): Promise<{ page: PageModule; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), "witness-bench-page-"));
  const outfile = join(dir, "page.mjs");
  await build({ entryPoints: [join(root, "src", "status", "page.tsx")], bundle: true, format: "esm", platform: "neutral", outfile, logLevel: "error" });
  const page = (await import(pathToFileURL(outfile).href)) as PageModule;
  return { page, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Renders the page for `hosts` hosts and `events` history events `rounds` times. */
export async function measureStatusPage(root: string, hosts: number, events: number, rounds: number): Promise<StatusPageCost> {
  const { page, cleanup } = await loadPage(root);
  try {
    const now = DAY_START + WEEK_MS;
    const { core, storage } = benchCore(hosts, 30, () => now);
    const config = benchConfig(hosts, 30);
    const ping = pinger(core, hosts, () => now);
    for (let index = 0; index < hosts; index++) await ping(index);
    // A week of history spread over the hosts: pages and their recoveries, and acks.
    const types = ["alert", "recovery", "ack"] as const;
    for (let index = 0; index < events; index++) {
      const hostId = config.hosts[index % hosts]?.id ?? null;
      storage.record({ at: now - WEEK_MS + Math.floor((index / events) * WEEK_MS), hostId, type: types[index % 3] ?? "alert", kind: "failing", detail: `status "error" (bench event ${index})`, by: index % 3 === 2 ? "@bench" : null });
    }
    const view = { now, hosts: [...core.allHosts().values()], meta: core.monitorMeta(), outbox: core.outbox(), alarmAt: null, events: core.events({ since: now - WEEK_MS, limit: 2000 }) };
    const input = { config, view };
    let bytes = 0;
    const times: number[] = [];
    for (let round = 0; round < rounds; round++) {
      // CPU time, not wall time: the Worker's limit is on CPU, and a shared machine stretches wall time.
      const started = cpuMicros();
      bytes = page.renderDashboard(input).length;
      times.push((cpuMicros() - started) / 1000);
    }
    // The first renders warm the JIT; the Worker's isolate is warm after its first request too.
    const warm = times.slice(Math.min(5, Math.floor(rounds / 4)));
    return { hosts, events: view.events.length, bytes, medianMs: percentile(warm, 50), p95Ms: percentile(warm, 95) };
  } finally {
    cleanup();
  }
}
