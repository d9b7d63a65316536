// End to end, with every real part running: the Worker's deploy build under wrangler dev
// (the monitor object with its SQLite storage and real-time alarm, local KV, all in a
// fresh temp folder), the bundled agent as child processes, real files in a temp dir,
// the Telegram stand-in on 127.0.0.1. The first Worker runs with the cron ticker off, so
// every page there comes from a ping or from the monitor's own alarm; the second cannot
// arm its alarm at all, so its page comes from cron ticks through wrangler's scheduled
// endpoint (the safety net). One host per scenario; the slow ones (dark needs 35 s of
// silence) run side by side. Each scenario asserts the exact lines its host got.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, test } from "vitest";
import { agentEnv, ensureAgentBundle, runShellAgentOnce, shellAgentMissingTools } from "../support/agent-process.ts";
import {
  cronPeriodFor,
  DEMO_AGENT_INTERVAL_SECONDS,
  DEMO_DARK_AFTER_SECONDS,
  DEMO_HOST_SETTINGS,
  type LocalStack,
  SILENCE_PAGES_DARK_SETTINGS,
  type StackHost,
  startLocalStack,
  waitUntil,
} from "../support/local-stack.ts";
import { eventLines } from "../support/phone.ts";
import { writeCircuit, writeHeartbeat } from "../support/pipeline.ts";
import type { TcpProxy } from "../support/tcp-proxy.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

const HOSTS = {
  healthy: "e2e-healthy",
  dark: "e2e-dark",
  partition: "e2e-partition",
  stale: "e2e-stale",
  failing: "e2e-failing",
  tripped: "e2e-tripped",
  corrupt: "e2e-corrupt",
  empty: "e2e-empty",
  telegram: "e2e-telegram",
  shell: "e2e-shell",
  oneShots: "e2e-one-shots",
} as const;
const CRON_HOST = "e2e-cron-dark";

const DARK_AFTER_MS = DEMO_DARK_AFTER_SECONDS * 1000;
/** The alarm is armed a batch window (1 s) past the deadline; one more second for the run and the send. */
const ALARM_PAGE_WITHIN_MS = 2000;
/** The cron-path Worker's ticker: a tick, then this pause (a tick takes well under a second). */
const CRON_TICK_EVERY_MS = 4000;
const CRON_PERIOD_MS = cronPeriodFor(CRON_TICK_EVERY_MS) * 1000;
/** Two consecutive pings confirm a failing or unreadable heartbeat (timing.confirmPings), and a slow one. */
const CONFIRMED_WITHIN_MS = 3 * DEMO_AGENT_INTERVAL_SECONDS * 1000 + 10_000;
const SCENARIO_TIMEOUT_MS = 240_000;
const DARK_LINE = new RegExp(`^🔴 (\\S+) DARK: no ping for \\d+ s \\(dark after ${DEMO_DARK_AFTER_SECONDS} s\\)$`);

let dir = "";
const tickErrors: string[] = [];

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** "105 s" or "2 min", as the Worker formats durations, in seconds (and its rounding). */
function parseDuration(text: string): { seconds: number; roundingSeconds: number } {
  const match = /^(\d+(?:\.\d+)?) (s|min|h)$/.exec(text);
  if (match === null) throw new Error(`not a duration: ${text}`);
  const value = Number(match[1]);
  if (match[2] === "s") return { seconds: value, roundingSeconds: 1 };
  if (match[2] === "min") return { seconds: value * 60, roundingSeconds: 30 };
  return { seconds: value * 3600, roundingSeconds: 180 };
}

/** What one running stack's phone shows, per host. */
function phone(get: () => LocalStack) {
  /** The lines a host got on the phone, in order, each with when its message arrived. */
  const arrivals = (hostId: string): Array<{ text: string; at: number }> => {
    const local = get();
    return local.telegram
      .calls(local.worker.secrets.TELEGRAM_BOT_TOKEN)
      .filter((call) => call.method === "sendMessage")
      .flatMap((call) => eventLines([String(call.payload.text)], hostId).map((line) => ({ text: line.text, at: call.at })));
  };
  const lines = (hostId: string): string[] => arrivals(hostId).map((line) => line.text);
  /** Waits until the host has received `count` lines, then gives all of them. */
  const waitForLines = (hostId: string, count: number, timeoutMs: number): Promise<string[]> =>
    waitUntil(`message line ${count} for ${hostId} (so far: ${JSON.stringify(lines(hostId))})`, timeoutMs, () => {
      const got = lines(hostId);
      return got.length >= count ? got : undefined;
    });
  /** The last ping the monitor accepted from a host. */
  const lastPingAt = async (hostId: string): Promise<number> => {
    const seen = (await get().worker.status()).hosts.find((entry) => entry.id === hostId)?.lastPingAt;
    if (seen === null || seen === undefined) throw new Error(`${hostId} never pinged`);
    return seen;
  };
  return { arrivals, lines, waitForLines, lastPingAt };
}

/** Measured page latencies past darkAfter, printed at the end for the record. */
const latencies: string[] = [];

afterAll(() => {
  if (latencies.length > 0) console.log(`dark page latency past darkAfter (${DEMO_DARK_AFTER_SECONDS} s): ${latencies.join("; ")}`);
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

describe("cron ticker off: every page comes from a ping or the monitor's alarm", () => {
  let stack: LocalStack | undefined;
  let startedAt = 0;
  const running = (): LocalStack => {
    if (stack === undefined) throw new Error("the local stack did not start (see beforeAll)");
    return stack;
  };
  const host = (id: string): StackHost => running().host(id);
  const { arrivals, lines, waitForLines, lastPingAt } = phone(running);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "witness-e2e-"));
    // A fresh bundle of the agent as it is now, not whatever dist/ holds.
    const bundle = await ensureAgentBundle(root, join(dir, "witness-agent.mjs"));
    stack = await startLocalStack({
      root,
      dir: join(dir, "alarm"),
      agentBundle: bundle,
      agentIntervalSeconds: DEMO_AGENT_INTERVAL_SECONDS,
      pipelineEveryMs: 2000,
      tickEveryMs: null,
      prebuiltWorker: true,
      hosts: Object.values(HOSTS).map((id) => ({
        id,
        dataDir: join(dir, "hosts", id),
        viaProxy: id === HOSTS.partition,
        // These two go silent: see SILENCE_PAGES_DARK_SETTINGS (DARK alone, not STALE first).
        ...(id === HOSTS.dark || id === HOSTS.partition ? { settings: SILENCE_PAGES_DARK_SETTINGS } : {}),
        // The shell agent pings once, when its scenario's turn comes (after other scenarios
        // may have run): a never-pinged host would rightly page DARK before that.
        ...(id === HOSTS.shell ? { settings: { ...DEMO_HOST_SETTINGS, darkAfterSeconds: 900 } } : {}),
        agent: id !== HOSTS.shell,
      })),
    });
    startedAt = Date.now();
    const local = stack;
    await waitUntil("every Node agent's first accepted ping", 30_000, async () => {
      const status = await local.worker.status();
      return status.hosts.every((entry) => entry.id === HOSTS.shell || entry.lastPingAt !== null) ? true : undefined;
    });
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  describe.concurrent("one host per scenario, side by side", () => {
    test("agent killed: one DARK page from the alarm within 2 s of darkAfter, then a recovery that says agent restart", async ({ expect }) => {
      await host(HOSTS.dark).stopAgent("kill");
      const lastSeenAt = await lastPingAt(HOSTS.dark);

      const [page] = await waitForLines(HOSTS.dark, 1, DARK_AFTER_MS + 30_000);
      expect(page).toMatch(DARK_LINE);
      expect(page).toContain(HOSTS.dark);
      const pagedAfterMs = (arrivals(HOSTS.dark)[0]?.at ?? 0) - lastSeenAt;
      latencies.push(`alarm path, agent killed: +${((pagedAfterMs - DARK_AFTER_MS) / 1000).toFixed(2)} s`);
      // Not early: only after darkAfter of silence as the monitor heard it; and at once.
      expect(pagedAfterMs).toBeGreaterThanOrEqual(DARK_AFTER_MS);
      expect(pagedAfterMs).toBeLessThanOrEqual(DARK_AFTER_MS + ALARM_PAGE_WITHIN_MS);

      host(HOSTS.dark).startAgent();
      const got = await waitForLines(HOSTS.dark, 2, 30_000);
      expect(got).toEqual([page, expect.stringMatching(/^✅ e2e-dark DARK over after (\d+ s|\d+ min): pinging again: agent restart$/)]);
      await sleep(2 * DEMO_AGENT_INTERVAL_SECONDS * 1000); // a few more pings: still exactly these two
      expect(lines(HOSTS.dark)).toEqual(got);
    }, SCENARIO_TIMEOUT_MS);

    test("network partition between agent and Worker: one DARK page on time, and the recovery reports the partition and its length", async ({ expect }) => {
      const proxy: TcpProxy | null = host(HOSTS.partition).proxy;
      if (proxy === null) throw new Error("the partition host has no proxy");
      const cutAt = Date.now();
      proxy.cut("reset");
      const lastSeenAt = await lastPingAt(HOSTS.partition);

      const [page] = await waitForLines(HOSTS.partition, 1, DARK_AFTER_MS + 30_000);
      expect(page).toMatch(DARK_LINE);
      expect(page).toContain(HOSTS.partition);
      const pagedAfterMs = (arrivals(HOSTS.partition)[0]?.at ?? 0) - lastSeenAt;
      latencies.push(`alarm path, partition: +${((pagedAfterMs - DARK_AFTER_MS) / 1000).toFixed(2)} s`);
      expect(pagedAfterMs).toBeGreaterThanOrEqual(DARK_AFTER_MS);
      expect(pagedAfterMs).toBeLessThanOrEqual(DARK_AFTER_MS + ALARM_PAGE_WITHIN_MS);
      proxy.restore();
      const restoredAt = Date.now();

      // The agent backs off (up to 30 s) while pushes fail, so the first push after the cut may wait.
      const got = await waitForLines(HOSTS.partition, 2, 60_000);
      const recovery =
        /^✅ e2e-partition DARK over after (?:\d+ s|\d+ min): pinging again after a network partition: pushes failed for (\d+ s|\d+ min) \((\d+) attempts\), boot id unchanged$/;
      expect(got).toEqual([page, expect.stringMatching(recovery)]);
      const [, reported = "", attempts = "0"] = recovery.exec(got[1] ?? "") ?? [];
      const { seconds, roundingSeconds } = parseDuration(reported);
      const cutSeconds = (restoredAt - cutAt) / 1000;
      // From the first failed push (within one interval of the cut) to the first accepted
      // one (within one backoff of the restore).
      expect(seconds).toBeGreaterThanOrEqual(cutSeconds - DEMO_AGENT_INTERVAL_SECONDS - 1 - roundingSeconds);
      expect(seconds).toBeLessThanOrEqual(cutSeconds + 32 + roundingSeconds);
      expect(Number(attempts)).toBeGreaterThanOrEqual(3);
    }, SCENARIO_TIMEOUT_MS);

    test("heartbeat goes stale in session: STALE page at the allowed age, recovery when it beats again", async ({ expect }) => {
      const stoppedAt = Date.now();
      host(HOSTS.stale).pipeline.pause();

      const [page] = await waitForLines(HOSTS.stale, 1, DEMO_HOST_SETTINGS.maxAgeInSessionSeconds * 1000 + 30_000);
      expect(page).toMatch(new RegExp(`^🔴 e2e-stale STALE: heartbeat \\d+ s old \\(limit ${DEMO_HOST_SETTINGS.maxAgeInSessionSeconds} s in session\\)$`));
      // The last beat was at most one pipeline period (2 s) before the pause; the alarm wakes at the limit.
      const pagedAt = arrivals(HOSTS.stale)[0]?.at ?? 0;
      expect(pagedAt).toBeGreaterThanOrEqual(stoppedAt + DEMO_HOST_SETTINGS.maxAgeInSessionSeconds * 1000 - 3000);
      expect(pagedAt).toBeLessThanOrEqual(stoppedAt + DEMO_HOST_SETTINGS.maxAgeInSessionSeconds * 1000 + ALARM_PAGE_WITHIN_MS + 1000);

      host(HOSTS.stale).pipeline.resume();
      expect(await waitForLines(HOSTS.stale, 2, 30_000)).toEqual([
        page,
        expect.stringMatching(/^✅ e2e-stale STALE over after (\d+ s|\d+ min): heartbeat fresh again$/),
      ]);
    }, SCENARIO_TIMEOUT_MS);

    test("bad status: FAILING page after two pings show it, with the pipeline's extra keys, then recovery", async ({ expect }) => {
      writeHeartbeat(host(HOSTS.failing).heartbeatPath, { status: "error", broker: "rejected 3 orders" });
      expect(await waitForLines(HOSTS.failing, 1, CONFIRMED_WITHIN_MS)).toEqual(['🔴 e2e-failing FAILING: status "error" {"broker":"rejected 3 orders"}']);

      writeHeartbeat(host(HOSTS.failing).heartbeatPath, { status: "ok" });
      expect(await waitForLines(HOSTS.failing, 2, CONFIRMED_WITHIN_MS)).toEqual([
        '🔴 e2e-failing FAILING: status "error" {"broker":"rejected 3 orders"}',
        expect.stringMatching(/^✅ e2e-failing FAILING over after \d+ s: status "ok" again$/),
      ]);
    }, SCENARIO_TIMEOUT_MS);

    test("circuit tripped by the pipeline: CIRCUIT TRIPPED page with its reason and since, from the first ping that shows it", async ({ expect }) => {
      const since = Math.floor(Date.now() / 1000);
      const writtenAt = Date.now();
      writeCircuit(host(HOSTS.tripped).circuitPath, { paused: true, reason: "drawdown 4.1% > 3.0% limit", since });
      const sinceIso = new Date(since * 1000).toISOString().replace(".000Z", "Z");
      expect(await waitForLines(HOSTS.tripped, 1, DEMO_AGENT_INTERVAL_SECONDS * 1000 + 10_000)).toEqual([
        `🔴 e2e-tripped CIRCUIT TRIPPED: circuit paused: drawdown 4.1% > 3.0% limit since ${sinceIso}`,
      ]);
      expect((arrivals(HOSTS.tripped)[0]?.at ?? 0) - writtenAt).toBeLessThanOrEqual(DEMO_AGENT_INTERVAL_SECONDS * 1000 + 5000);
      await sleep(2 * DEMO_AGENT_INTERVAL_SECONDS * 1000); // still paused: no repeat, no recovery
      expect(lines(HOSTS.tripped)).toHaveLength(1);
    }, SCENARIO_TIMEOUT_MS);

    test("corrupt heartbeat (a truncated write): page naming the state, recovery once it is valid again", async ({ expect }) => {
      writeFileSync(host(HOSTS.corrupt).heartbeatPath, '{"at": 1795389457.66, "stat');
      expect(await waitForLines(HOSTS.corrupt, 1, CONFIRMED_WITHIN_MS)).toEqual([
        '🔴 e2e-corrupt HEARTBEAT UNREADABLE: heartbeat.json corrupt: not JSON (truncated write?): {"at": 1795389457.66, "stat',
      ]);
      writeHeartbeat(host(HOSTS.corrupt).heartbeatPath);
      expect((await waitForLines(HOSTS.corrupt, 2, CONFIRMED_WITHIN_MS))[1]).toEqual(
        expect.stringMatching(/^✅ e2e-corrupt HEARTBEAT UNREADABLE over after \d+ s: heartbeat\.json readable again$/),
      );
    }, SCENARIO_TIMEOUT_MS);

    test("empty heartbeat (0 bytes, a crash mid-write): page naming the state, recovery once it is written again", async ({ expect }) => {
      writeFileSync(host(HOSTS.empty).heartbeatPath, "");
      expect(await waitForLines(HOSTS.empty, 1, CONFIRMED_WITHIN_MS)).toEqual([
        "🔴 e2e-empty HEARTBEAT UNREADABLE: heartbeat.json empty: the file is empty (0 bytes: a crash mid-write?)",
      ]);
      writeHeartbeat(host(HOSTS.empty).heartbeatPath);
      expect((await waitForLines(HOSTS.empty, 2, CONFIRMED_WITHIN_MS))[1]).toEqual(
        expect.stringMatching(/^✅ e2e-empty HEARTBEAT UNREADABLE over after \d+ s: heartbeat\.json readable again$/),
      );
    }, SCENARIO_TIMEOUT_MS);

    test("a --check and a --once run beside the running service are accepted, and the service keeps being accepted after them", async ({ expect }) => {
      const target = host(HOSTS.oneShots);
      const service = target.agent;
      if (service === null) throw new Error("the one-shots host has no service agent");
      const env = agentEnv({
        url: target.agentUrl,
        hostId: target.id,
        secretFile: target.secretFile,
        heartbeatPath: target.heartbeatPath,
        circuitPath: target.circuitPath,
      });
      const bundle = join(dir, "witness-agent.mjs");
      const oneShot = (flag: string) =>
        new Promise<{ code: number | null; output: string }>((resolve) => {
          const child = spawn(process.execPath, [bundle, flag], { env, stdio: ["ignore", "pipe", "pipe"] });
          let output = "";
          child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
          child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
          child.on("close", (code) => resolve({ code, output }));
        });
      // Each one-shot is its own agent process: its own sequence, never the service's.
      const check = await oneShot("--check");
      expect(check.code, check.output).toBe(0);
      // One-shot runs in a loop would spend the quota: the monitor takes one per half interval.
      await sleep(6000);
      const once = await oneShot("--once");
      expect(once.code, once.output).toBe(0);
      const afterOneShots = Date.now();
      // The service's next pings are still accepted: its last accepted ping moves past the one-shots.
      await waitUntil("a service ping accepted after the one-shots", 4 * DEMO_AGENT_INTERVAL_SECONDS * 1000, async () =>
        (await lastPingAt(HOSTS.oneShots)) > afterOneShots + 1000 ? true : undefined,
      );
      await sleep(2 * DEMO_AGENT_INTERVAL_SECONDS * 1000);
      expect(await lastPingAt(HOSTS.oneShots)).toBeGreaterThan(Date.now() - 2 * DEMO_AGENT_INTERVAL_SECONDS * 1000);
      expect(service.output().filter((line) => /\b40[19]\b|refused|replayed/.test(line))).toEqual([]);
      expect(lines(HOSTS.oneShots)).toEqual([]);
    }, SCENARIO_TIMEOUT_MS);

    test("the shell agent pings the same Worker and is accepted", async ({ expect, skip }) => {
      const missing = await shellAgentMissingTools();
      skip(missing.length > 0, `the shell agent needs ${missing.join(", ")}`);
      const shellHost = host(HOSTS.shell);
      const result = await runShellAgentOnce(root, {
        url: running().worker.url,
        hostId: HOSTS.shell,
        secretFile: shellHost.secretFile,
        heartbeatPath: shellHost.heartbeatPath,
        circuitPath: shellHost.circuitPath,
        stateFile: join(dir, "shell-agent.state"),
      });
      expect(result, `${result.stdout}\n${result.stderr}`).toMatchObject({ exitCode: 0 });

      const status = await running().worker.status();
      const seen = status.hosts.find((entry) => entry.id === HOSTS.shell);
      expect(seen?.agent?.kind).toBe("shell");
      expect(seen?.heartbeat?.state).toBe("ok");
      expect(seen?.circuit?.state).toBe("missing");
      expect(status.now - (seen?.lastPingAt ?? 0)).toBeLessThan(30_000);
      await sleep(3000); // judged on arrival: nothing to say about a host that just pinged fine
      expect(lines(HOSTS.shell)).toEqual([]);
    }, SCENARIO_TIMEOUT_MS);
  });

  describe("after the scenarios above", () => {
    test("Telegram down for a while: the page waits in the monitor's outbox, retried on its alarm, and is delivered once when it returns", async ({ expect }) => {
      const local = running();
      const token = local.worker.secrets.TELEGRAM_BOT_TOKEN;
      local.telegram.failNext(token, Array.from({ length: 1000 }, () => ({ status: 503, description: "Service Unavailable" })));
      writeHeartbeat(host(HOSTS.telegram).heartbeatPath, { status: "halted" });

      // Several alarm runs try and fail (backing off 4 s, 8 s, …); nothing reaches the phone meanwhile.
      const queued = await waitUntil("the page to fail delivery three times", 60_000, async () => {
        const status = await local.worker.status();
        return status.undelivered.find((message) => message.attempts >= 3);
      });
      expect(queued.lastError).toMatch(/^503\b/);
      expect(lines(HOSTS.telegram)).toEqual([]);

      local.telegram.reset(token); // Telegram is back
      expect(await waitForLines(HOSTS.telegram, 1, 45_000)).toEqual(['🔴 e2e-telegram FAILING: status "halted"']);
      await sleep(3000);
      expect(lines(HOSTS.telegram)).toHaveLength(1);
      expect((await local.worker.status()).undelivered).toEqual([]);
    }, SCENARIO_TIMEOUT_MS);

    test("a healthy host stayed quiet through all of it, and no cron ran after the first", async ({ expect }) => {
      expect(lines(HOSTS.healthy)).toEqual([]);
      const status = await running().worker.status();
      const healthy = status.hosts.find((entry) => entry.id === HOSTS.healthy);
      expect(healthy?.conditions).toEqual({});
      expect(status.now - (healthy?.lastPingAt ?? 0)).toBeLessThan(30_000);
      // Only the start-up run (startLocalStack's one tick); every page above came without the cron.
      expect(status.lastCronAt).not.toBeNull();
      expect(status.lastCronAt ?? Number.POSITIVE_INFINITY).toBeLessThan(startedAt);
      expect(status.alarmAt).not.toBeNull();
    });
  });
});

describe("alarms lost: the cron alone pages, within darkAfter and one cron period", () => {
  let stack: LocalStack | undefined;
  const running = (): LocalStack => {
    if (stack === undefined) throw new Error("the local stack did not start (see beforeAll)");
    return stack;
  };
  const { arrivals, lines, waitForLines, lastPingAt } = phone(running);
  const workerLog: string[] = [];

  beforeAll(async () => {
    if (dir === "") dir = mkdtempSync(join(tmpdir(), "witness-e2e-"));
    const bundle = await ensureAgentBundle(root, join(dir, "witness-agent.mjs"));
    stack = await startLocalStack({
      root,
      dir: join(dir, "cron"),
      agentBundle: bundle,
      agentIntervalSeconds: DEMO_AGENT_INTERVAL_SECONDS,
      pipelineEveryMs: 2000,
      tickEveryMs: CRON_TICK_EVERY_MS,
      alarms: false,
      prebuiltWorker: true,
      hosts: [{ id: CRON_HOST, dataDir: join(dir, "hosts", CRON_HOST), settings: SILENCE_PAGES_DARK_SETTINGS }],
      onTickError: (error) => tickErrors.push(error instanceof Error ? error.message : String(error)),
      onWorkerLog: (line) => workerLog.push(line),
    });
    const local = stack;
    await waitUntil("the agent's first accepted ping", 30_000, async () => ((await local.worker.status()).hosts[0]?.lastPingAt ?? null) !== null || undefined);
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  test("agent killed, no alarm can fire: the cron's tick pages DARK, once, and repairs the alarm in vain each time", async ({ expect }) => {
    const local = running();
    await local.host(CRON_HOST).stopAgent("kill");
    const lastSeenAt = await lastPingAt(CRON_HOST);

    const [page] = await waitForLines(CRON_HOST, 1, DARK_AFTER_MS + 30_000);
    expect(page).toMatch(DARK_LINE);
    const pagedAfterMs = (arrivals(CRON_HOST)[0]?.at ?? 0) - lastSeenAt;
    latencies.push(`cron path (a tick every ${CRON_PERIOD_MS / 1000} s at most): +${((pagedAfterMs - DARK_AFTER_MS) / 1000).toFixed(2)} s`);
    expect(pagedAfterMs).toBeGreaterThanOrEqual(DARK_AFTER_MS);
    expect(pagedAfterMs).toBeLessThanOrEqual(DARK_AFTER_MS + CRON_PERIOD_MS + 1000);

    await sleep(2 * CRON_PERIOD_MS); // more ticks: the page is not repeated
    expect(lines(CRON_HOST)).toEqual([page]);
    const log = workerLog;
    // The cron found the alarm missing and re-armed it; the monitor's alarm never ran.
    expect(log.some((line) => /^cron: checked: .*alarm repaired/.test(line))).toBe(true);
    expect(log.filter((line) => line.startsWith("monitor alarm:"))).toEqual([]);
    expect(local.ticker.count).toBeGreaterThan(DARK_AFTER_MS / CRON_PERIOD_MS);
    expect(tickErrors).toEqual([]);
  }, SCENARIO_TIMEOUT_MS);
});
