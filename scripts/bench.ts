// npm run bench: what witness costs and how fast it is, measured on the real code.
// KV operations per host per day (counted over a simulated day), CPU of a cron tick and
// of a ping, ping throughput on `wrangler dev`, and the agent's footprint. Writes
// docs/benchmarks.md. Only 127.0.0.1; every loop is bounded in count and in time.
//   npm run bench                     everything (about 6 minutes)
//   npm run bench -- --quick          smaller runs, for a smoke check
//   npm run bench -- --skip-load --skip-agent --agent-seconds 180 --out docs/benchmarks.md
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { QUOTAS } from "../src/budget.ts";
import { agentFiles, type LoopAgentResult, measureLoopAgent, measureOneShots, type OneShotResult } from "./bench/agent.ts";
import { type LoadResult, measureWranglerLoad } from "./bench/load.ts";
import { type DayResult, measurePingCpu, measureTickCpu, type PingCpu, simulateDay, type TickCpu } from "./bench/worker-sim.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    "skip-load": { type: "boolean", default: false },
    "skip-agent": { type: "boolean", default: false },
    "agent-seconds": { type: "string" },
    hosts: { type: "string" },
    out: { type: "string", default: join(root, "docs", "benchmarks.md") },
  },
});
const quick = flags.quick === true;
const agentSeconds = Number(flags["agent-seconds"] ?? (quick ? 30 : 180));
const multiHosts = Number(flags.hosts ?? (quick ? 3 : 5));
if (!Number.isInteger(agentSeconds) || agentSeconds < 10 || agentSeconds > 1800) throw new Error("--agent-seconds must be a whole number from 10 to 1800");
if (!Number.isInteger(multiHosts) || multiHosts < 2 || multiHosts > 50) throw new Error("--hosts must be a whole number from 2 to 50");

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
const DAY_SECONDS = 86_400;

// ---- KV operations over a simulated day ----

interface IntervalRow {
  intervalSeconds: number;
  plan: "free" | "paid";
  one: DayResult;
  many: DayResult;
  /** Per host per day, measured: route + the cron's share that grows with hosts. */
  perHost: { writes: number; reads: number; requests: number };
  /** Per day regardless of hosts (the cron's own state, tick record, digest). */
  fixed: { writes: number; reads: number; requests: number };
  holds: { free: number; paid: number; limitedBy: { free: string; paid: string } };
}

function hostsHeld(plan: "free" | "paid", perHost: IntervalRow["perHost"], fixed: IntervalRow["fixed"]): { hosts: number; limitedBy: string } {
  const quota = QUOTAS[plan];
  let best = { hosts: Number.POSITIVE_INFINITY, limitedBy: "" };
  for (const resource of ["writes", "reads", "requests"] as const) {
    const hosts = Math.floor((quota[resource] - fixed[resource]) / perHost[resource]);
    if (hosts < best.hosts) best = { hosts: Math.max(0, hosts), limitedBy: resource };
  }
  return best;
}

async function kvRow(plan: "free" | "paid", intervalSeconds: number): Promise<IntervalRow> {
  const hostList = (count: number) => Array.from({ length: count }, (_, index) => ({ id: `host-${index}`, intervalSeconds }));
  const one = await simulateDay({ plan, hosts: hostList(1) });
  const many = await simulateDay({ plan, hosts: hostList(multiHosts) });
  const extra = multiHosts - 1;
  const cronPerHost = {
    writes: (many.cron.writes - one.cron.writes) / extra,
    reads: (many.cron.reads - one.cron.reads) / extra,
  };
  const perHost = {
    writes: many.route.writes / multiHosts + cronPerHost.writes,
    reads: many.route.reads / multiHosts + cronPerHost.reads,
    requests: many.pings / multiHosts,
  };
  const fixed = {
    writes: one.cron.writes - cronPerHost.writes,
    reads: one.cron.reads - cronPerHost.reads,
    // Cron invocations: Cloudflare does not bill them as requests, but count them to be safe.
    requests: one.ticks,
  };
  const free = hostsHeld("free", perHost, fixed);
  const paid = hostsHeld("paid", perHost, fixed);
  log(`KV day: plan ${plan}, interval ${intervalSeconds} s: ${perHost.writes.toFixed(1)} writes/host/day, ${fixed.writes.toFixed(0)} fixed; refused pings ${one.refusedPings + many.refusedPings}`);
  return { intervalSeconds, plan, one, many, perHost, fixed, holds: { free: free.hosts, paid: paid.hosts, limitedBy: { free: free.limitedBy, paid: paid.limitedBy } } };
}

// ---- machine ----

function sh(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: "utf8" }).trim();
  } catch {
    return "(unavailable)";
  }
}

function machine(): string[] {
  const model = cpus()[0]?.model ?? "unknown CPU";
  return [
    `- CPU: ${model}, \`nproc\` = ${sh("nproc", [])}`,
    `- Memory (\`free -h\`):`,
    "",
    "```",
    sh("free", ["-h"]),
    "```",
    "",
    `- Node ${process.version} (V8 ${process.versions.v8}), ${process.platform} ${process.arch}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- wrangler ${sh(process.execPath, [join(root, "node_modules", "wrangler", "bin", "wrangler.js"), "--version"]).split("\n").at(-1) ?? "?"}`,
    `- Load average when the run started: ${sh("cat", ["/proc/loadavg"])}`,
  ];
}

// ---- formatting ----

const n0 = (value: number) => Math.round(value).toLocaleString("en-US");
const n1 = (value: number) => value.toLocaleString("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const ms = (micros: number) => `${(micros / 1000).toFixed(2)} ms`;
const ratio = (a: number, b: number) => (b === 0 ? "n/a" : `${(a / b).toFixed(a / b < 0.1 ? 3 : 2)}×`);

function render(results: {
  startedAt: Date;
  command: string;
  machineLines: string[];
  rows: IntervalRow[];
  eventful: DayResult;
  ticks: TickCpu[];
  ping: PingCpu;
  load: LoadResult | null;
  loadError: string | null;
  loop: LoopAgentResult | null;
  oneShots: OneShotResult[];
  agentError: string | null;
  wallSeconds: number;
}): string {
  const { rows } = results;
  const freeRows = rows.filter((row) => row.plan === "free");
  const defaults = freeRows.find((row) => row.intervalSeconds === 60);
  const naiveWrites = DAY_SECONDS / 60;
  const lines: string[] = [
    "# witness benchmarks",
    "",
    `Measured ${results.startedAt.toISOString().slice(0, 16)}Z with \`${results.command}\` (${Math.round(results.wallSeconds)} s). Regenerate with the same command; every figure below is written by \`scripts/bench.ts\`.`,
    "",
    "## Machine",
    "",
    ...results.machineLines,
    "",
    "Other work was running on this machine at the same time (see the load average), so wall-clock figures (throughput, latency) are pessimistic and noisy; CPU-time figures are less affected.",
    "",
    "## KV operations per host per day",
    "",
    `Counted, not computed: one simulated day (after an uncounted warm-up hour) of every host pinging through the real route (\`createApp().fetch\`) and the real cron (\`runTick\`) ticking every minute, against an in-memory KV that counts every get (per key, bulk gets included), put, delete and list. Healthy hosts (heartbeat rewritten every minute, status ok, no circuit file), 1 host and ${multiHosts} hosts per row; per-host figures are the ${multiHosts}-host route cost per host plus the cron's growth per extra host, and "fixed" is what the cron spends whatever the host count (its state and tick record). Quotas are per day; paid is the monthly inclusion / 30.`,
    "",
    "| plan | interval | pings/host/day | writes/host/day | of which route | fixed cron writes/day | reads/host/day | lists/day | predicted writes/host (check-config) | vs naive (one write per ping) | hosts the free plan holds | hosts the paid plan holds (included ops) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const row of rows) {
    const routeWrites = row.many.route.writes / multiHosts;
    lines.push(
      `| ${row.plan} | ${row.intervalSeconds} s | ${n0(row.perHost.requests)} | ${n1(row.perHost.writes)} | ${n1(routeWrites)} | ${n0(row.fixed.writes)} | ${n0(row.perHost.reads)} | ${row.one.route.lists + row.one.cron.lists + row.many.route.lists + row.many.cron.lists} | ${n0(row.one.predicted.perHostWrites)} (+${n0(row.one.predicted.cronWrites)} cron) | ${ratio(row.perHost.writes, row.perHost.requests)} of ${n0(row.perHost.requests)} | ${n0(row.holds.free)} (${row.holds.limitedBy.free}) | ${n0(row.holds.paid)} (${row.holds.limitedBy.paid}) |`,
    );
  }
  lines.push("");
  if (defaults !== undefined) {
    const total1 = defaults.one.route.writes + defaults.one.cron.writes;
    lines.push(
      `At the defaults (free plan, one host pinging every 60 s): **${n0(total1)} KV writes a day in all** (${n0(defaults.one.route.writes)} by the ping route, ${n0(defaults.one.cron.writes)} by the cron), against ${n0(naiveWrites)} for the naive one-write-per-ping design: **${ratio(total1, naiveWrites)}** of it, and ${(total1 / QUOTAS.free.writes * 100).toFixed(1)} % of the free plan's ${n0(QUOTAS.free.writes)} writes a day. Reads: ${n0(defaults.one.route.reads + defaults.one.cron.reads)} a day (${(((defaults.one.route.reads + defaults.one.cron.reads) / QUOTAS.free.reads) * 100).toFixed(1)} % of ${n0(QUOTAS.free.reads)}). check-config predicted ${n0(defaults.one.predicted.writes)} writes and ${n0(defaults.one.predicted.reads)} reads (measured / predicted: writes ${ratio(total1, defaults.one.predicted.writes)}, reads ${ratio(defaults.one.route.reads + defaults.one.cron.reads, defaults.one.predicted.reads)}); the prediction includes an allowance of 20 change writes per host per day that a healthy day does not use.`,
      "",
      `Route write reasons over the ${multiHosts}-host day at 60 s: ${JSON.stringify(defaults.many.writeReasons)} (x-witness-write header). Pings refused: ${defaults.one.refusedPings + defaults.many.refusedPings}. Lists: none (hosts come from configuration).`,
      "",
    );
  }
  const ev = results.eventful;
  lines.push(
    `An eventful day for one host at the defaults (a failing status for 10 min, a circuit trip and its manual resume an hour later, an agent restart): ${n0(ev.route.writes + ev.cron.writes)} writes (${n0(ev.route.writes)} route, ${n0(ev.cron.writes)} cron; route reasons ${JSON.stringify(ev.writeReasons)}), ${ev.telegramMessages} Telegram messages, ${n0(ev.route.reads + ev.cron.reads)} reads.`,
    "",
    "## CPU time of one cron tick",
    "",
    "`runTick` with the in-memory KV and a fake Telegram `fetch` (so this is witness's own CPU: bulk reads, zod decoding of every record, judging, one state write when due), and `planTick` alone (the pure judge over every host), steady state with every host healthy and recently pinged. `process.cpuUsage()` (user + system) around each call, after 5 warm-up ticks. The free plan allows 10 ms of CPU per invocation; a paid plan's cron may use 30 s. Node's V8 is the same engine workerd runs, so these approximate the Worker's CPU time, but they are not Cloudflare's measurement (no isolate start, different GC pressure, real KV I/O is wall time, not CPU).",
    "",
    "| hosts | runs | runTick median | runTick p95 | planTick median | planTick p95 | free plan's 10 ms |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const tick of results.ticks) {
    lines.push(`| ${tick.hosts} | ${tick.runs} | ${ms(tick.runTickMedianUs)} | ${ms(tick.runTickP95Us)} | ${ms(tick.planTickMedianUs)} | ${ms(tick.planTickP95Us)} | ${ratio(tick.runTickMedianUs, 10_000)} of it |`);
  }
  const freeHolds = defaults?.holds.free;
  if (freeHolds !== undefined) {
    lines.push(
      "",
      `The free plan's KV quota holds ${freeHolds} hosts at the defaults (above), where a tick costs well under 1 ms; a tick over 1,000 hosts exceeds the free plan's 10 ms, but that many hosts need the paid plan anyway, whose cron may use 30 s of CPU.`,
    );
  }
  lines.push(
    "",
    "## CPU time of one ping through the route",
    "",
    `${n0(results.ping.runs)} accepted pings through \`createApp().fetch\` (signature check with WebCrypto HMAC, JSON and zod parsing of the body and both files, two KV reads, the write policy; ${results.ping.writes} of them wrote), signed beforehand: **median ${ms(results.ping.medianUs)}, p95 ${ms(results.ping.p95Us)}** of CPU, ${ratio(results.ping.medianUs, 10_000)} of the free plan's 10 ms.`,
    "",
    "## Ping route on `wrangler dev --local` (127.0.0.1)",
    "",
  );
  if (results.load !== null) {
    const load = results.load;
    lines.push(
      `The real Worker under \`wrangler dev --local --ip 127.0.0.1\` (local KV, generated config and secrets in a temp dir, via test/support/local-worker.ts), loaded by a bounded loop on Node's fetch (undici, keep-alive): ${load.connections} concurrent connections, each owning one host and sending it validly signed pings in sequence order (pre-signed before the run, distinct seq, timestamps inside the window), after 20 uncounted warm-up pings per connection. Steady state: an unchanged heartbeat, so the route reads KV twice and writes nothing.`,
      "",
      "| connections | requests | errors | req/s | p50 | p99 | max | statuses |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
      `| ${load.connections} | ${n0(load.requests)} | ${load.errors} | ${n0(load.requestsPerSecond)} | ${load.p50Ms.toFixed(1)} ms | ${load.p99Ms.toFixed(1)} ms | ${load.maxMs.toFixed(1)} ms | ${JSON.stringify(load.statuses)} |`,
      "",
      "This measures wrangler's local runtime (workerd plus its local KV simulator and wrangler's proxy) on this machine, not Cloudflare's edge: it shows that the route has no pathological cost and returns no errors under concurrent signed load; the production ceiling is Cloudflare's, and an agent sends one ping a minute.",
      "",
    );
  } else {
    lines.push(`Not measured in this run${results.loadError === null ? " (--skip-load)" : `: ${results.loadError}`}.`, "");
  }
  lines.push("## The agent", "");
  if (results.loop !== null) {
    const loop = results.loop;
    lines.push(
      `The bundled Node agent (\`dist/witness-agent.mjs\`, loop mode, \`--interval ${loop.intervalSeconds}\`) pushing to a stand-in Worker on 127.0.0.1 for ${loop.seconds} s after a warm-up, while a writer rewrote heartbeat.json every 5 s: ${n0(loop.pushes)} pushes.`,
      "",
      `- Resident memory (VmRSS from /proc/<pid>/status, sampled every 5 s): **median ${n0(loop.rssMedianKiB / 1024)} MiB**, max ${n1(loop.rssMaxKiB / 1024)} MiB, first sample ${n1(loop.rssFirstKiB / 1024)} MiB, last ${n1(loop.rssLastKiB / 1024)} MiB.`,
      `- CPU per push (utime + stime from /proc/<pid>/stat over the measured pushes, 10 ms clock ticks): **${loop.cpuPerPushMs.toFixed(2)} ms**. At the default 60 s interval that is ${((loop.cpuPerPushMs / 60_000) * 100).toFixed(4)} % of one core.`,
      "",
    );
  }
  if (results.oneShots.length > 0) {
    lines.push(
      "One-shot alternatives, each run N times from one bash loop (as cron would run them once a minute); CPU is the children's user + system time from bash's `times`, divided by N; peak RSS is GNU time's %M for one run.",
      "",
      "| what | runs | accepted by the stand-in | CPU per push | peak RSS of one run | vs Node agent loop CPU/push |",
      "| --- | --- | --- | --- | --- | --- |",
    );
    for (const shot of results.oneShots) {
      lines.push(
        `| ${shot.what} | ${shot.runs} | ${shot.accepted} | ${shot.cpuPerRunMs.toFixed(1)} ms | ${Number.isNaN(shot.peakRssKiB) ? "?" : `${n1(shot.peakRssKiB / 1024)} MiB`} | ${results.loop === null ? "n/a" : ratio(shot.cpuPerRunMs, results.loop.cpuPerPushMs)} |`,
      );
    }
    lines.push("");
  }
  if (results.agentError !== null) lines.push(`Agent measurement failed: ${results.agentError}`, "");
  lines.push(
    "## Caveats",
    "",
    "- KV counts come from an in-memory KV with no propagation lag; on Cloudflare, a stale read can make the cron see a change a tick later but does not add operations. Deletes are counted with writes (none happen on a healthy day).",
    "- The simulated hosts are healthy, except in the eventful row; each real incident adds a handful of writes (route: the change and the recovery; cron: state before sending and after delivery), which check-config budgets at 20 per host per day.",
    "- \"Hosts a plan holds\" divides the quota left after the fixed cron cost by the measured per-host cost, for writes, reads and requests, and reports the tightest; it assumes witness is the only user of the account's KV quota.",
    "- CPU figures are `process.cpuUsage()` in Node (process-wide, so V8's GC threads count too), medians and p95 after warm-up; workerd's accounting differs in detail. A cold isolate start is not included.",
    "- wrangler dev throughput is bounded by this machine and by wrangler's local stack, not by witness's code; treat it as a regression baseline, not a production ceiling.",
    "- Agent CPU per push in loop mode includes its timers and the reading of both files; the one-shot figures include process start-up, which is what dominates a cron-driven curl or shell agent.",
    "- The agent ran for minutes, not days: RSS samples show its working set after warm-up, but a run this short cannot rule out a slow leak (compare the first and last samples).",
    "",
  );
  return lines.join("\n");
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const began = performance.now();
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
  const machineLines = machine();
  const scratch = mkdtempSync(join(tmpdir(), "witness-bench-"));
  try {
    log("simulating KV days (free plan at 30/60/120/300 s, paid plan at 60 s)");
    const rows: IntervalRow[] = [];
    for (const interval of quick ? [60, 300] : [30, 60, 120, 300]) rows.push(await kvRow("free", interval));
    rows.push(await kvRow("paid", 60));
    const eventful = await simulateDay({ plan: "free", hosts: [{ id: "host-0", intervalSeconds: 60 }], eventful: true });

    log("measuring tick CPU");
    const ticks: TickCpu[] = [];
    for (const hosts of [10, 200, 1000]) ticks.push(await measureTickCpu(hosts, quick ? 10 : hosts >= 1000 ? 30 : 60));
    log("measuring ping CPU");
    const ping = await measurePingCpu(quick ? 500 : 3000);

    let load: LoadResult | null = null;
    let loadError: string | null = null;
    if (flags["skip-load"] !== true) {
      log("starting wrangler dev for the load run");
      try {
        load = await measureWranglerLoad({ root, dir: scratch, connections: 10, requestsPerConnection: quick ? 50 : 300, maxSeconds: quick ? 30 : 90, log });
      } catch (error) {
        loadError = error instanceof Error ? error.message.split("\n")[0] ?? "" : String(error);
        log(`load run failed: ${loadError}`);
      }
    }

    let loop: LoopAgentResult | null = null;
    let oneShots: OneShotResult[] = [];
    let agentError: string | null = null;
    if (flags["skip-agent"] !== true) {
      try {
        const files = agentFiles(join(scratch, "agent"));
        log(`running the Node agent in loop mode for ${agentSeconds} s`);
        loop = await measureLoopAgent({ root, files, seconds: agentSeconds, intervalSeconds: 1 });
        log("running curl, the shell agent and the Node agent --once from a loop");
        oneShots = await measureOneShots({ root, files, runs: quick ? 10 : 40 });
      } catch (error) {
        agentError = error instanceof Error ? error.message : String(error);
        log(`agent measurement failed: ${agentError}`);
      }
    }

    const markdown = render({
      startedAt,
      command,
      machineLines,
      rows,
      eventful,
      ticks,
      ping,
      load,
      loadError,
      loop,
      oneShots,
      agentError,
      wallSeconds: (performance.now() - began) / 1000,
    });
    writeFileSync(flags.out, markdown);
    log(`wrote ${relative(process.cwd(), flags.out) || flags.out}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
