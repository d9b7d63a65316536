// `npm run bench`: what the monitor costs (DO requests, rows and KV operations per ping;
// CPU per ping, per alarm run with one host due and per cron run over every host; a simulated healthy day per host next to check-config's
// prediction) and the agent's footprint. Writes docs/benchmarks.md.
//
//   npm run bench -- --quick --skip-agent --agent-seconds 180 --out docs/benchmarks.md
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { agentFiles, type LoopAgentResult, makeTestCertificate, measureLoopAgent, measureOneShots, type OneShotResult } from "./bench/agent.ts";
import { measureStatusPage, type StatusPageCost } from "./bench/status-page.ts";
import { type AlarmRunCosts, type DayCost, measurePings, measureRuns, type PingCost, simulateHealthyDay } from "./bench/worker-sim.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    "skip-agent": { type: "boolean", default: false },
    "agent-seconds": { type: "string" },
    out: { type: "string", default: join(root, "docs", "benchmarks.md") },
  },
});
const quick = flags.quick === true;
const agentSeconds = Number(flags["agent-seconds"] ?? (quick ? 30 : 180));
if (!Number.isInteger(agentSeconds) || agentSeconds < 10 || agentSeconds > 1800) throw new Error("--agent-seconds must be a whole number from 10 to 1800");

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

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
  pings: PingCost[];
  alarm: AlarmRunCosts;
  day: DayCost;
  statusPage: StatusPageCost[];
  simulation: string | null;
  agentByNode: string | null;
  loop: LoopAgentResult | null;
  loopWithoutFlags: LoopAgentResult | null;
  /** The same two runs against an https stand-in; null when openssl is missing (httpsSkipped says so). */
  loopHttps: LoopAgentResult | null;
  loopHttpsWithoutFlags: LoopAgentResult | null;
  httpsSkipped: string | null;
  oneShots: OneShotResult[];
  agentError: string | null;
  wallSeconds: number;
}): string {
  const lines: string[] = [
    "# witness benchmarks",
    "",
    `Measured ${results.startedAt.toISOString().slice(0, 16)}Z with \`${results.command}\` (${Math.round(results.wallSeconds)} s). Regenerate with \`npm run bench\` (Node 22: \`export PATH=$PWD/.node22/node_modules/node/bin:$PATH\`); every figure below is written by \`scripts/bench.ts\`.`,
    "",
    "## Machine",
    "",
    ...results.machineLines,
    "",
    "Other work was running on this machine at the same time (see the load average), so CPU figures are pessimistic and noisy.",
    "",
    "## The monitor, per ping",
    "",
    "MonitorCore (src/monitor/core.ts) over node:sqlite (sim/sqlite.ts), healthy hosts pinging every 30 s evenly spread, straight into `acceptPing` after two warm-up rounds. Rows written are SQLite `changes` of each INSERT/UPDATE/DELETE plus one per `setAlarm` (Cloudflare bills it as a row); rows read are rows returned. KV operations are every get/put/delete the monitor made during the pings. CPU is `process.cpuUsage()` (user + system) around each `acceptPing`.",
    "",
    "| hosts | pings measured | DO requests/ping | rows written/ping (target ≤ 1.1) | of which setAlarm | rows read/ping | KV ops/ping | CPU/ping median (target ≤ 1 ms) | CPU/ping p95 |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...results.pings.map(
      (row) =>
        `| ${row.hosts} | ${n0(row.pings)} | ${row.doRequestsPerPing} | **${row.rowsWrittenPerPing.toFixed(3)}** | ${row.alarmRowsPerPing.toFixed(3)} | ${row.rowsReadPerPing.toFixed(2)} | ${row.kvOpsPerPing} | **${ms(row.cpuMedianMicros)}** | ${ms(row.cpuP95Micros)} |`,
    ),
    "",
    "With one host the alarm must move at every other ping (it sits at the dark deadline and only that host's ping can move it), so 1.5 rows a ping; with more hosts another host's ping comes before the alarm would fire, so the alarm moves rarely.",
    "",
    "## The monitor, per alarm and cron run",
    "",
    `An alarm judges only the hosts that are due; the cron (each minute) and the first run after a start judge every host. ${results.alarm.oneDue.hosts} hosts pinging every 30 s, CPU of the whole run (\`process.cpuUsage()\`), target ≤ 10 ms:`,
    "",
    "| run | hosts | hosts judged | runs measured | CPU median | CPU p95 | median vs 10 ms |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    `| \`run("alarm")\` woken by one host's dark deadline (that host judged and paged, the message sent to a stub Telegram, the snapshot published) | ${results.alarm.oneDue.hosts} | 1 | ${results.alarm.oneDue.runs} | **${ms(results.alarm.oneDue.cpuMedianMicros)}** | ${ms(results.alarm.oneDue.cpuP95Micros)} | ${ratio(results.alarm.oneDue.cpuMedianMicros, 10_000)} |`,
    `| \`run("cron")\` + \`verifyAlarm()\`, nothing to page (the steady state) | ${results.alarm.cron.hosts} | ${results.alarm.cron.hosts} | ${results.alarm.cron.runs} | **${ms(results.alarm.cron.cpuMedianMicros)}** | ${ms(results.alarm.cron.cpuP95Micros)} | ${ratio(results.alarm.cron.cpuMedianMicros, 10_000)} |`,
    "",
    "Each host's trading calendar answers from a cache kept per span (src/judge/calendar.ts), so judging a host whose session has not changed since its last judgement costs no time-zone arithmetic; before that cache a run over 200 hosts took about 100 ms. The alarm row costs more than the cron row although it judges one host, not 200: it writes the page to the outbox and the history, sends it and publishes the changed snapshot to KV; judging itself is now the small part.",
    "",
    "## A simulated healthy day, per host, next to check-config",
    "",
    `${results.day.hosts} hosts at ${results.day.intervalSeconds} s through sim/monitor.ts without faults (pings, the at-least-once alarm, the cron each minute), one day counted after an uncounted hour: ${n0(results.day.cronRuns)} cron runs, ${n0(results.day.alarmRuns)} alarm runs, ${results.day.telegramMessages} Telegram messages. Per host per day, the monitor's own share (cron, meta row, snapshot) divided among the hosts; predicted is src/budget.ts's host figure plus the same share of its monitor figure.`,
    "",
    "| per host per day | measured | predicted (check-config) | measured / predicted |",
    "| --- | --- | --- | --- |",
    ...(["doRequests", "rowsWritten", "kvWrites", "kvReads"] as const).map(
      (resource) => `| ${resource} | ${n1(results.day.measured[resource])} | ${n1(results.day.predicted[resource])} | ${ratio(results.day.measured[resource], results.day.predicted[resource])} |`,
    ),
    "",
    "The prediction allows 20 changes (pages, recoveries, acks) per host per day and an outside health check each minute; a healthy day has neither, so measured sits a little under it.",
    "",
  ];
  lines.push(
    "## The status page, rendered",
    "",
    "`renderDashboard` (src/status/page.tsx, bundled by esbuild) over the view the real MonitorCore builds for healthy hosts, with a week of history events spread over them (pages, recoveries, acks). CPU is `process.cpuUsage()` around each render after a warm-up; a Worker on the free plan has 10 ms of CPU per request, and the page's request also reads the monitor once.",
    "",
    "| hosts | events in the week | page size | CPU median | CPU p95 | median vs 10 ms |",
    "| --- | --- | --- | --- | --- | --- |",
    ...results.statusPage.map(
      (row) => `| ${row.hosts} | ${n0(row.events)} | ${n0(row.bytes / 1024)} KiB | **${row.medianMs.toFixed(2)} ms** | ${row.p95Ms.toFixed(2)} ms | ${ratio(row.medianMs, 10)} |`,
    ),
    "",
    "2,000 events is the most the page reads; a host's week is drawn as at most 24 marks (src/status/timeline.ts), so a host that flapped all week costs no more to draw than one that failed a few times.",
    "",
  );
  lines.push("## The agent", "");
  if (results.loop !== null) {
    const loop = results.loop;
    lines.push(
      `The bundled Node agent (\`dist/witness-agent.mjs\`, loop mode, \`--interval ${loop.intervalSeconds}\`) started as the systemd unit starts it (\`node ${loop.nodeFlags.join(" ")}\`, read from its ExecStart), pushing to a stand-in Worker on http://127.0.0.1 for ${loop.seconds} s after a warm-up, while a writer rewrote heartbeat.json every 5 s: ${n0(loop.pushes)} pushes.`,
      "",
      `- Resident memory (VmRSS from /proc/<pid>/status, sampled every 5 s): **median ${n1(loop.rssMedianKiB / 1024)} MiB** (${n1(loop.rssAnonMedianKiB / 1024)} MiB anonymous, ${n1(loop.rssFileMedianKiB / 1024)} MiB file-backed: the node binary's own pages), max ${n1(loop.rssMaxKiB / 1024)} MiB, first sample ${n1(loop.rssFirstKiB / 1024)} MiB, last ${n1(loop.rssLastKiB / 1024)} MiB.`,
      `- CPU per push (utime + stime from /proc/<pid>/stat over the measured pushes, 10 ms clock ticks): **${loop.cpuPerPushMs.toFixed(2)} ms**. At the default 60 s interval that is ${((loop.cpuPerPushMs / 60_000) * 100).toFixed(4)} % of one core.`,
    );
    const bare = results.loopWithoutFlags;
    if (bare !== null) {
      lines.push(
        `- The same run without node flags (${n0(bare.pushes)} pushes): median ${n1(bare.rssMedianKiB / 1024)} MiB (${n1(bare.rssAnonMedianKiB / 1024)} anonymous, ${n1(bare.rssFileMedianKiB / 1024)} file-backed), max ${n1(bare.rssMaxKiB / 1024)} MiB, first ${n1(bare.rssFirstKiB / 1024)}, last ${n1(bare.rssLastKiB / 1024)}; CPU per push ${bare.cpuPerPushMs.toFixed(2)} ms.`,
      );
    }
    lines.push("");
    const rows = [
      ["http", "the unit's", loop],
      ["http", "none", bare],
      ["https", "the unit's", results.loopHttps],
      ["https", "none", results.loopHttpsWithoutFlags],
    ] as const;
    lines.push(
      "Side by side with the same runs against a stand-in on https://127.0.0.1 (a certificate made for the run with openssl, trusted through NODE_EXTRA_CA_CERTS; the agent opens a new connection, with a full TLS handshake, for every push). The slope is the least-squares fit of VmRSS against pushes, over every sample and over the second half only (in brackets): near zero once memory has levelled off.",
      "",
      "| stand-in | node flags | pushes | VmRSS median | first / last sample | anonymous | slope, MiB per 100 pushes (second half) | CPU per push |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    const signed = (value: number) => `${value >= 0 ? "+" : ""}${value.toFixed(2)}`;
    for (const [scheme, flagsUsed, result] of rows) {
      if (result === null) continue;
      lines.push(
        `| ${scheme} | ${flagsUsed} | ${n0(result.pushes)} | **${n1(result.rssMedianKiB / 1024)} MiB** | ${n1(result.rssFirstKiB / 1024)} / ${n1(result.rssLastKiB / 1024)} MiB | ${n1(result.rssAnonMedianKiB / 1024)} MiB | ${signed(result.rssSlopeMiBPer100)} (${signed(result.rssSlopeLateMiBPer100)}) | ${result.cpuPerPushMs.toFixed(2)} ms |`,
      );
    }
    if (results.httpsSkipped !== null) lines.push("", results.httpsSkipped);
    lines.push("");
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
  if (results.agentByNode !== null) lines.push(results.agentByNode.trimEnd(), "");
  if (results.simulation !== null) lines.push(results.simulation.trimEnd(), "");
  lines.push(
    "## Caveats",
    "",
    "- node:sqlite is not the Durable Object's SQLite: rows read are rows returned, not rows scanned; CPU in workerd differs in detail and a cold start is not included.",
    "- Agent CPU per push in loop mode includes its timers and the reading of both files; the one-shot figures include process start-up, which is what dominates a cron-driven curl or shell agent.",
    "- The agent ran for minutes, not days: RSS samples show its working set after warm-up, but a run this short cannot rule out a slow leak (compare the first and last samples).",
    "- The https stand-in is on 127.0.0.1 with an RSA-2048 certificate; the real Worker is farther away and Cloudflare's certificate chain differs, so the handshake's CPU and the bytes held per connection differ somewhat on a host.",
    "",
    "## History",
    "",
    "Until the judge moved into the monitor object, this page measured the KV-only judge: KV operations per host per day by plan and interval, the cron tick's CPU, and wrangler dev throughput of the KV route. Those figures described a design that no longer exists (git history of this file has them).",
    "",
  );
  return lines.join("\n");
}

/**
 * The simulator's verdict is not measured here (`npm run simulate` and the sweep in
 * test/node/simulate.test.ts take minutes): its section is carried over from the page
 * being replaced, as written from their output.
 */
const SIMULATION_HEADING = "## The simulator's verdict";
const AGENT_BY_NODE_HEADING = "## The agent's memory by Node version";

function simulationSection(path: string): string | null {
  return preservedSection(path, SIMULATION_HEADING);
}

/** The hand-written section under `heading` of the file being replaced, kept as it is. */
function preservedSection(path: string, heading: string): string | null {
  if (!existsSync(path)) return null;
  const text = readFileSync(path, "utf8");
  const from = text.indexOf(heading);
  if (from < 0) return null;
  const next = text.indexOf("\n## ", from + heading.length);
  return text.slice(from, next < 0 ? undefined : next + 1);
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const began = performance.now();
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
  const machineLines = machine();
  const scratch = mkdtempSync(join(tmpdir(), "witness-bench-"));
  try {
    log("measuring pings at 1, 20 and 200 hosts");
    const pings: PingCost[] = [];
    for (const hosts of [1, 20, 200]) pings.push(await measurePings(hosts, 30, Math.max(quick ? 2 : 5, Math.ceil((quick ? 300 : 2000) / hosts))));
    log("measuring alarm runs (one host due) and cron runs (every host) over 200 hosts");
    const alarm = await measureRuns(200, quick ? 10 : 40);
    log("simulating a healthy day of 20 hosts at 30 s");
    const day = await simulateHealthyDay(20, 30);
    log("rendering the status page");
    const statusPage: StatusPageCost[] = [];
    for (const [hosts, events] of [[3, 50], [20, 200], [20, 2000]] as const) statusPage.push(await measureStatusPage(root, hosts, events, quick ? 20 : 100));

    let loop: LoopAgentResult | null = null;
    let loopWithoutFlags: LoopAgentResult | null = null;
    let loopHttps: LoopAgentResult | null = null;
    let loopHttpsWithoutFlags: LoopAgentResult | null = null;
    let httpsSkipped: string | null = null;
    let oneShots: OneShotResult[] = [];
    let agentError: string | null = null;
    if (flags["skip-agent"] !== true) {
      try {
        const files = agentFiles(join(scratch, "agent"));
        const tls = makeTestCertificate(join(scratch, "tls"));
        if (tls === undefined) {
          httpsSkipped = "openssl was not found, so there was no https stand-in: the agent was measured over plain http only.";
          log(httpsSkipped);
        }
        log(`running the Node agent in loop mode for ${agentSeconds} s, with the unit's node flags and without, over http${tls === undefined ? "" : " and https"}`);
        [loop, loopWithoutFlags, loopHttps, loopHttpsWithoutFlags] = await Promise.all([
          measureLoopAgent({ root, files, seconds: agentSeconds, intervalSeconds: 1 }),
          measureLoopAgent({ root, files: agentFiles(join(scratch, "agent-without-flags")), seconds: agentSeconds, intervalSeconds: 1, nodeFlags: [] }),
          tls === undefined ? null : measureLoopAgent({ root, files: agentFiles(join(scratch, "agent-https")), seconds: agentSeconds, intervalSeconds: 1, tls }),
          tls === undefined ? null : measureLoopAgent({ root, files: agentFiles(join(scratch, "agent-https-without-flags")), seconds: agentSeconds, intervalSeconds: 1, nodeFlags: [], tls }),
        ]);
        log("running curl, the shell agent and the Node agent --once from a loop");
        oneShots = await measureOneShots({ root, files, runs: quick ? 10 : 40 });
      } catch (error) {
        agentError = error instanceof Error ? error.message : String(error);
        log(`agent measurement failed: ${agentError}`);
      }
    }
    const markdown = render({ startedAt, command, machineLines, pings, alarm, day, statusPage, simulation: simulationSection(flags.out), agentByNode: preservedSection(flags.out, AGENT_BY_NODE_HEADING), loop, loopWithoutFlags, loopHttps, loopHttpsWithoutFlags, httpsSkipped, oneShots, agentError, wallSeconds: (performance.now() - began) / 1000 });
    writeFileSync(flags.out, markdown);
    log(`wrote ${relative(process.cwd(), flags.out) || flags.out}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
