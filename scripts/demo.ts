// `npm run demo`: plays the day-one scenarios by itself in about a minute, with every
// real piece running (the Worker under wrangler dev with its monitor object and alarm,
// the bundled agent, files on disk, the Telegram stand-in), then prints the timeline and
// checks each expected message arrived. Five hosts side by side, because "dark" alone
// takes 35 s of silence to be true. The cron ticks only as the safety net.
// Exit code: 0 when every expected message arrived, 1 when one did not, 2 on a set-up error.
import { appendFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureAgentBundle } from "../test/support/agent-process.ts";
import {
  cronPeriodFor,
  DEMO_AGENT_INTERVAL_SECONDS,
  DEMO_DARK_AFTER_SECONDS,
  DEMO_HOST_SETTINGS,
  type LocalStack,
  SILENCE_PAGES_DARK_SETTINGS,
  startLocalStack,
  waitUntil,
} from "../test/support/local-stack.ts";
import { eventLines, phoneText } from "../test/support/phone.ts";
import { writeCircuit, writeHeartbeat } from "../test/support/pipeline.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = join(root, ".wrangler", "witness-demo-auto");
const color = process.stdout.isTTY && process.env.NO_COLOR === undefined;
const dim = (text: string) => (color ? `\u001b[2m${text}\u001b[22m` : text);
const green = (text: string) => (color ? `\u001b[32m${text}\u001b[39m` : text);
const red = (text: string) => (color ? `\u001b[31m${text}\u001b[39m` : text);

const HOSTS = {
  healthy: "demo-healthy",
  failing: "demo-failing",
  stale: "demo-stale",
  tripped: "demo-tripped",
  dark: "demo-dark",
} as const;

const TRIP_REASON = "daily loss limit: -2.3% < -2.0%";
/** The cron, sped up but still only the safety net: the monitor pages on pings and its alarm. */
const TICK_EVERY_MS = 15_000;
/** The alarm wakes a second past the deadline; a second more for the run and the send. */
const ALARM_SLACK_MS = 2000;

interface TimelineEntry {
  atMs: number;
  kind: "action" | "message";
  text: string;
}

const timeline: TimelineEntry[] = [];
const launchedAt = Date.now();
let t0 = Date.now();
const elapsed = (at: number) => `${((at - t0) / 1000).toFixed(1).padStart(6)} s`;

function action(text: string): void {
  const entry: TimelineEntry = { atMs: Date.now(), kind: "action", text };
  timeline.push(entry);
  console.log(`${elapsed(entry.atMs)}  ▶ ${text}`);
}

interface Outcome {
  scenario: string;
  ok: boolean;
  detail: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits for an event line of `hostId` matching `pattern`; returns its text. */
function waitForLine(stack: LocalStack, hostId: string, pattern: RegExp, timeoutMs: number): Promise<string> {
  return waitUntil(`a message for ${hostId} matching ${pattern}`, timeoutMs, () =>
    eventLines(stack.messages(), hostId).find((line) => pattern.test(line.text))?.text,
  );
}

async function scenario(name: string, play: () => Promise<string>): Promise<Outcome> {
  try {
    return { scenario: name, ok: true, detail: await play() };
  } catch (error) {
    return { scenario: name, ok: false, detail: error instanceof Error ? error.message : String(error) };
  }
}

async function play(stack: LocalStack): Promise<Outcome[]> {
  const host = (id: string) => stack.host(id);
  return Promise.all([
    scenario("healthy host stays quiet", async () => {
      // Judged at the end, once every other scenario had its say.
      await waitForLine(stack, HOSTS.dark, /agent restart/, 150_000).catch(() => undefined);
      const lines = eventLines(stack.messages(), HOSTS.healthy);
      if (lines.length > 0) throw new Error(`expected no message, got: ${lines.map((line) => line.text).join(" | ")}`);
      return "no message, as it should be";
    }),
    scenario("bad status → FAILING page, then recovery", async () => {
      await sleep(3000);
      action(`${HOSTS.failing}: the pipeline writes status "error" to heartbeat.json`);
      writeHeartbeat(host(HOSTS.failing).heartbeatPath, { status: "error", orders_rejected: 12 });
      const page = await waitForLine(stack, HOSTS.failing, /🔴 .* FAILING: status "error"/, 30_000);
      await sleep(4000);
      action(`${HOSTS.failing}: the pipeline is healthy again (status "ok")`);
      writeHeartbeat(host(HOSTS.failing).heartbeatPath, { status: "ok" });
      const recovery = await waitForLine(stack, HOSTS.failing, /✅ .* FAILING over .*status "ok" again/, 30_000);
      return `${page}\n${recovery}`;
    }),
    scenario("circuit tripped → CIRCUIT TRIPPED page with its reason", async () => {
      await sleep(8000);
      action(`${HOSTS.tripped}: the watchdog writes {"paused": true, "reason": "${TRIP_REASON}"} to circuit.json`);
      writeCircuit(host(HOSTS.tripped).circuitPath, { paused: true, reason: TRIP_REASON, since: Math.floor(Date.now() / 1000) });
      const escaped = TRIP_REASON.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      return waitForLine(stack, HOSTS.tripped, new RegExp(`🔴 .* CIRCUIT TRIPPED: circuit paused: ${escaped} since `), 30_000);
    }),
    scenario("pipeline stops → STALE page", async () => {
      action(`${HOSTS.stale}: the pipeline stops rewriting heartbeat.json (stale after ${DEMO_HOST_SETTINGS.maxAgeInSessionSeconds} s)`);
      host(HOSTS.stale).pipeline.pause();
      return waitForLine(stack, HOSTS.stale, new RegExp(`🔴 .* STALE: heartbeat \\d+ s old \\(limit ${DEMO_HOST_SETTINGS.maxAgeInSessionSeconds} s in session\\)`), 100_000);
    }),
    scenario("agent stopped → DARK page from the monitor's alarm; restarted → recovery saying agent restart", async () => {
      action(
        `${HOSTS.dark}: the agent is stopped (dark after ${DEMO_DARK_AFTER_SECONDS} s at ${DEMO_HOST_SETTINGS.intervalSeconds} s pings, ` +
          "paged by the monitor's alarm within a second or two of the deadline)",
      );
      await host(HOSTS.dark).stopAgent("stop");
      const lastPingAt = (await stack.worker.status()).hosts.find((entry) => entry.id === HOSTS.dark)?.lastPingAt ?? Date.now();
      const page = await waitForLine(stack, HOSTS.dark, /🔴 .* DARK: no ping for/, DEMO_DARK_AFTER_SECONDS * 1000 + 60_000);
      const pagedAfterMs = Date.now() - lastPingAt;
      const latency = `paged ${(pagedAfterMs / 1000).toFixed(1)} s after the last accepted ping (dark after ${DEMO_DARK_AFTER_SECONDS} s)`;
      if (pagedAfterMs > DEMO_DARK_AFTER_SECONDS * 1000 + ALARM_SLACK_MS + 1000) throw new Error(`${latency}: later than the alarm should allow`);
      action(`${HOSTS.dark}: the agent is started again`);
      host(HOSTS.dark).startAgent();
      const recovery = await waitForLine(stack, HOSTS.dark, /✅ .* DARK over after .*: pinging again: agent restart/, 30_000);
      return `${page}\n${latency}\n${recovery}`;
    }),
  ]);
}

function printTimeline(outcomes: readonly Outcome[]): void {
  console.log(`\n── timeline ${"─".repeat(60)}`);
  for (const entry of [...timeline].sort((a, b) => a.atMs - b.atMs)) {
    const [first = "", ...rest] = entry.text.split("\n");
    const mark = entry.kind === "action" ? "▶" : "📱";
    console.log(`${elapsed(entry.atMs)}  ${mark} ${first}`);
    for (const line of rest) console.log(`${" ".repeat(12)}${line}`);
  }
  console.log(`\n── expected messages ${"─".repeat(51)}`);
  for (const outcome of outcomes) {
    console.log(`${outcome.ok ? green("✔") : red("✘")} ${outcome.scenario}`);
    for (const line of outcome.detail.split("\n")) console.log(dim(`    ${line}`));
  }
}

async function main(): Promise<number> {
  console.log("witness demo: five hosts, five scenarios, every real piece running locally (about a minute).");
  let bundle: string;
  try {
    bundle = await ensureAgentBundle(root);
  } catch (error) {
    console.error(`demo: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
  rmSync(join(dir, "hosts"), { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const logPath = join(dir, "demo.log");
  rmSync(logPath, { force: true });
  const log = (source: string, line: string) => appendFileSync(logPath, `${new Date().toISOString()} [${source}] ${line}\n`);
  let stack: LocalStack;
  try {
    stack = await startLocalStack({
      root,
      dir,
      agentBundle: bundle,
      // The shortest push interval a 10 s host accepts; the slow scenarios (dark, stale)
      // are bounded by the thresholds, not by the push interval.
      agentIntervalSeconds: DEMO_AGENT_INTERVAL_SECONDS,
      pipelineEveryMs: 2000,
      tickEveryMs: TICK_EVERY_MS,
      hosts: Object.values(HOSTS).map((id) => ({
        id,
        dataDir: join(dir, "hosts", id),
        ...(id === HOSTS.dark ? { settings: SILENCE_PAGES_DARK_SETTINGS } : {}),
      })),
      onTelegram: (call) => {
        if (call.method !== "sendMessage") return;
        const text = phoneText(String(call.payload.text));
        timeline.push({ atMs: call.at, kind: "message", text });
        const [first = "", ...rest] = phoneText(String(call.payload.text), { ansi: color }).split("\n");
        console.log(`${elapsed(call.at)}  📱 ${first}`);
        for (const line of rest) console.log(`${" ".repeat(12)}${line}`);
      },
      onWorkerLog: (line) => log("worker", line),
      onAgentLine: (hostId, line) => log(hostId, line),
      onTickError: (error) => {
        const message = `tick failed: ${error instanceof Error ? error.message : String(error)}`;
        log("demo", message);
        console.error(red(`${message} (see ${logPath})`));
      },
    });
  } catch (error) {
    console.error(`demo: could not start the local stack: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }

  const stopOnSignal = () => {
    void stack.stop().then(() => process.exit(130));
  };
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);

  let outcomes: Outcome[];
  try {
    console.log(
      dim(
        `Worker on ${stack.worker.url}, Telegram stand-in on ${stack.telegram.url}; pages come from pings and the monitor's alarm, ` +
          `the cron checks every ${cronPeriodFor(TICK_EVERY_MS)} s as the safety net; waiting for every agent's first ping…`,
      ),
    );
    await waitUntil("every agent's first accepted ping", 30_000, async () => {
      const status = await stack.worker.status();
      return status.hosts.every((host) => host.lastPingAt !== null) ? true : undefined;
    });
    t0 = Date.now();
    action("every host is pinging; the scenarios start");
    outcomes = await play(stack);
  } catch (error) {
    outcomes = [{ scenario: "set-up", ok: false, detail: error instanceof Error ? error.message : String(error) }];
  } finally {
    await stack.stop();
  }
  printTimeline(outcomes);
  const failed = outcomes.filter((outcome) => !outcome.ok).length;
  const seconds = (from: number) => ((Date.now() - from) / 1000).toFixed(0);
  const took = `scenarios ${seconds(t0)} s, ${seconds(launchedAt)} s with start-up and shutdown`;
  console.log(
    failed === 0
      ? green(`\nAll ${outcomes.length} scenarios behaved as expected (${took}).`)
      : red(`\n${failed} of ${outcomes.length} scenarios did not behave as expected (${took}); details above, logs in ${join(dir, "demo.log")}.`),
  );
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
