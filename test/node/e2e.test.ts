// End to end, with every real part running: the Worker's deploy build under wrangler dev
// (local KV in a fresh temp folder), the bundled agent as child processes, real files
// in a temp dir, the Telegram stand-in on 127.0.0.1, cron ticks through wrangler's
// scheduled endpoint. One Worker serves one host per scenario, and the slow scenarios
// (dark needs 45 s of silence) run side by side, so the file takes a few minutes.
// Each scenario asserts the exact lines its host got on the phone.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, test } from "vitest";
import { ensureAgentBundle, runShellAgentOnce, shellAgentMissingTools } from "../support/agent-process.ts";
import {
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
} as const;

const DARK_AFTER_MS = DEMO_HOST_SETTINGS.darkAfterSeconds * 1000;
const SCENARIO_TIMEOUT_MS = 240_000;

let dir = "";
let stack: LocalStack | undefined;
const tickErrors: string[] = [];

function running(): LocalStack {
  if (stack === undefined) throw new Error("the local stack did not start (see beforeAll)");
  return stack;
}

const host = (id: string): StackHost => running().host(id);

/** The lines a host got on the phone, in order, each with when its message arrived. */
function arrivals(hostId: string): Array<{ text: string; at: number }> {
  const local = running();
  return local.telegram
    .calls(local.worker.secrets.TELEGRAM_BOT_TOKEN)
    .filter((call) => call.method === "sendMessage")
    .flatMap((call) => eventLines([String(call.payload.text)], hostId).map((line) => ({ text: line.text, at: call.at })));
}

const lines = (hostId: string): string[] => arrivals(hostId).map((line) => line.text);

/** Waits until the host has received `count` lines, then gives all of them. */
function waitForLines(hostId: string, count: number, timeoutMs: number): Promise<string[]> {
  return waitUntil(`message line ${count} for ${hostId} (so far: ${JSON.stringify(lines(hostId))})`, timeoutMs, () => {
    const got = lines(hostId);
    return got.length >= count ? got : undefined;
  });
}

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

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "witness-e2e-"));
  // A fresh bundle of the agent as it is now, not whatever dist/ holds.
  const bundle = await ensureAgentBundle(root, join(dir, "witness-agent.mjs"));
  stack = await startLocalStack({
    root,
    dir,
    agentBundle: bundle,
    agentIntervalSeconds: 2,
    pipelineEveryMs: 2000,
    tickEveryMs: 1000,
    prebuiltWorker: true,
    hosts: Object.values(HOSTS).map((id) => ({
      id,
      dataDir: join(dir, "hosts", id),
      viaProxy: id === HOSTS.partition,
      // These two go silent: see SILENCE_PAGES_DARK_SETTINGS (DARK alone, not STALE first).
      ...(id === HOSTS.dark || id === HOSTS.partition ? { settings: SILENCE_PAGES_DARK_SETTINGS } : {}),
      agent: id !== HOSTS.shell,
    })),
    onTickError: (error) => tickErrors.push(error instanceof Error ? error.message : String(error)),
  });
  const local = stack;
  await waitUntil("every Node agent's first accepted ping", 30_000, async () => {
    const status = await local.worker.status();
    return status.hosts.every((entry) => entry.id === HOSTS.shell || entry.lastPingAt !== null) ? true : undefined;
  });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe.concurrent("one host per scenario, side by side", () => {
  test("agent killed: one DARK page after the dark threshold, then a recovery that says agent restart", async ({ expect }) => {
    await host(HOSTS.dark).stopAgent("kill");
    // The last ping the Worker stored (it refreshes an unchanged record every 30 s only).
    const lastSeenAt = (await running().worker.status()).hosts.find((entry) => entry.id === HOSTS.dark)?.lastPingAt ?? 0;

    const [page] = await waitForLines(HOSTS.dark, 1, DARK_AFTER_MS + 60_000);
    expect(page).toMatch(new RegExp(`^🔴 e2e-dark DARK: no ping for \\d+ s \\(dark after ${DEMO_HOST_SETTINGS.darkAfterSeconds} s\\)$`));
    // Not early: only after darkAfter of silence as the Worker saw it.
    expect(arrivals(HOSTS.dark)[0]?.at ?? 0).toBeGreaterThanOrEqual(lastSeenAt + DARK_AFTER_MS);

    host(HOSTS.dark).startAgent();
    const got = await waitForLines(HOSTS.dark, 2, 60_000);
    expect(got).toEqual([page, expect.stringMatching(/^✅ e2e-dark DARK over after \d+ min: pinging again: agent restart$/)]);
    await sleep(3000); // a few more ticks: still exactly these two
    expect(lines(HOSTS.dark)).toEqual(got);
  }, SCENARIO_TIMEOUT_MS);

  test("network partition between agent and Worker: one DARK page, and the recovery reports the partition and its length", async ({ expect }) => {
    const proxy: TcpProxy | null = host(HOSTS.partition).proxy;
    if (proxy === null) throw new Error("the partition host has no proxy");
    const cutAt = Date.now();
    proxy.cut("reset");

    const [page] = await waitForLines(HOSTS.partition, 1, DARK_AFTER_MS + 60_000);
    expect(page).toMatch(new RegExp(`^🔴 e2e-partition DARK: no ping for \\d+ s \\(dark after ${DEMO_HOST_SETTINGS.darkAfterSeconds} s\\)$`));
    proxy.restore();
    const restoredAt = Date.now();

    // The agent backs off (up to 30 s) while pushes fail, so the first push after the cut may wait.
    const got = await waitForLines(HOSTS.partition, 2, 90_000);
    const recovery =
      /^✅ e2e-partition DARK over after \d+ min: pinging again after a network partition: pushes failed for (\d+ s|\d+ min) \((\d+) attempts\), boot id unchanged$/;
    expect(got).toEqual([page, expect.stringMatching(recovery)]);
    const [, reported = "", attempts = "0"] = recovery.exec(got[1] ?? "") ?? [];
    const { seconds, roundingSeconds } = parseDuration(reported);
    const cutSeconds = (restoredAt - cutAt) / 1000;
    // From the first failed push (within one interval of the cut) to the first accepted
    // one (within one backoff of the restore).
    expect(seconds).toBeGreaterThanOrEqual(cutSeconds - 3 - roundingSeconds);
    expect(seconds).toBeLessThanOrEqual(cutSeconds + 32 + roundingSeconds);
    expect(Number(attempts)).toBeGreaterThanOrEqual(3);
  }, SCENARIO_TIMEOUT_MS);

  test("heartbeat goes stale in session: STALE page after the allowed age, recovery when it beats again", async ({ expect }) => {
    const stoppedAt = Date.now();
    host(HOSTS.stale).pipeline.pause();

    const [page] = await waitForLines(HOSTS.stale, 1, DEMO_HOST_SETTINGS.maxAgeInSessionSeconds * 1000 + 60_000);
    expect(page).toMatch(new RegExp(`^🔴 e2e-stale STALE: heartbeat \\d+ s old \\(limit ${DEMO_HOST_SETTINGS.maxAgeInSessionSeconds} s in session\\)$`));
    expect(arrivals(HOSTS.stale)[0]?.at ?? 0).toBeGreaterThanOrEqual(stoppedAt + DEMO_HOST_SETTINGS.maxAgeInSessionSeconds * 1000 - 3000);

    host(HOSTS.stale).pipeline.resume();
    expect(await waitForLines(HOSTS.stale, 2, 30_000)).toEqual([
      page,
      expect.stringMatching(/^✅ e2e-stale STALE over after (under a minute|\d+ min): heartbeat fresh again$/),
    ]);
  }, SCENARIO_TIMEOUT_MS);

  test("bad status: FAILING page with the pipeline's extra keys, then recovery", async ({ expect }) => {
    writeHeartbeat(host(HOSTS.failing).heartbeatPath, { status: "error", broker: "rejected 3 orders" });
    expect(await waitForLines(HOSTS.failing, 1, 30_000)).toEqual(['🔴 e2e-failing FAILING: status "error" {"broker":"rejected 3 orders"}']);

    writeHeartbeat(host(HOSTS.failing).heartbeatPath, { status: "ok" });
    expect(await waitForLines(HOSTS.failing, 2, 30_000)).toEqual([
      '🔴 e2e-failing FAILING: status "error" {"broker":"rejected 3 orders"}',
      '✅ e2e-failing FAILING over after under a minute: status "ok" again',
    ]);
  }, SCENARIO_TIMEOUT_MS);

  test("circuit tripped by the pipeline: CIRCUIT TRIPPED page with its reason and since", async ({ expect }) => {
    const since = Math.floor(Date.now() / 1000);
    writeCircuit(host(HOSTS.tripped).circuitPath, { paused: true, reason: "drawdown 4.1% > 3.0% limit", since });
    const sinceIso = new Date(since * 1000).toISOString().replace(".000Z", "Z");
    expect(await waitForLines(HOSTS.tripped, 1, 30_000)).toEqual([
      `🔴 e2e-tripped CIRCUIT TRIPPED: circuit paused: drawdown 4.1% > 3.0% limit since ${sinceIso}`,
    ]);
    await sleep(3000); // still paused: no repeat, no recovery
    expect(lines(HOSTS.tripped)).toHaveLength(1);
  }, SCENARIO_TIMEOUT_MS);

  test("corrupt heartbeat (a truncated write): page naming the state, recovery once it is valid again", async ({ expect }) => {
    writeFileSync(host(HOSTS.corrupt).heartbeatPath, '{"at": 1795389457.66, "stat');
    expect(await waitForLines(HOSTS.corrupt, 1, 30_000)).toEqual([
      '🔴 e2e-corrupt HEARTBEAT UNREADABLE: heartbeat.json corrupt: not JSON (truncated write?): {"at": 1795389457.66, "stat',
    ]);
    writeHeartbeat(host(HOSTS.corrupt).heartbeatPath);
    expect((await waitForLines(HOSTS.corrupt, 2, 30_000))[1]).toBe(
      "✅ e2e-corrupt HEARTBEAT UNREADABLE over after under a minute: heartbeat.json readable again",
    );
  }, SCENARIO_TIMEOUT_MS);

  test("empty heartbeat (0 bytes, a crash mid-write): page naming the state, recovery once it is written again", async ({ expect }) => {
    writeFileSync(host(HOSTS.empty).heartbeatPath, "");
    expect(await waitForLines(HOSTS.empty, 1, 30_000)).toEqual([
      "🔴 e2e-empty HEARTBEAT UNREADABLE: heartbeat.json empty: the file is empty (0 bytes: a crash mid-write?)",
    ]);
    writeHeartbeat(host(HOSTS.empty).heartbeatPath);
    expect((await waitForLines(HOSTS.empty, 2, 30_000))[1]).toBe(
      "✅ e2e-empty HEARTBEAT UNREADABLE over after under a minute: heartbeat.json readable again",
    );
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
    await sleep(3000); // judged by a few ticks: nothing to say about a host that just pinged fine
    expect(lines(HOSTS.shell)).toEqual([]);
  }, SCENARIO_TIMEOUT_MS);
});

describe("after the scenarios above", () => {
  test("Telegram down for a while: the page waits in the Worker's outbox and is delivered once, when it returns", async ({ expect }) => {
    const local = running();
    const token = local.worker.secrets.TELEGRAM_BOT_TOKEN;
    local.telegram.failNext(token, Array.from({ length: 1000 }, () => ({ status: 503, description: "Service Unavailable" })));
    writeHeartbeat(host(HOSTS.telegram).heartbeatPath, { status: "halted" });

    // Several ticks try and fail; nothing reaches the phone meanwhile.
    const queued = await waitUntil("the page to fail delivery three times", 60_000, async () => {
      const status = await local.worker.status();
      return status.undelivered.find((message) => message.attempts >= 3);
    });
    expect(queued.lastError).toMatch(/^503\b/);
    expect(lines(HOSTS.telegram)).toEqual([]);

    local.telegram.reset(token); // Telegram is back
    expect(await waitForLines(HOSTS.telegram, 1, 30_000)).toEqual(['🔴 e2e-telegram FAILING: status "halted"']);
    await sleep(3000);
    expect(lines(HOSTS.telegram)).toHaveLength(1);
    expect((await local.worker.status()).undelivered).toEqual([]);
  }, SCENARIO_TIMEOUT_MS);

  test("a healthy host stayed quiet through all of it, and every tick ran", async ({ expect }) => {
    expect(lines(HOSTS.healthy)).toEqual([]);
    const status = await running().worker.status();
    const healthy = status.hosts.find((entry) => entry.id === HOSTS.healthy);
    expect(healthy?.conditions).toEqual({});
    expect(status.now - (healthy?.lastPingAt ?? 0)).toBeLessThan(30_000);
    expect(running().ticker.count).toBeGreaterThan(30);
    expect(tickErrors).toEqual([]);
  });
});
