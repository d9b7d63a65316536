// Pushing through trouble: jittered backoff on 5xx, the outage summary on the first
// success after it, Retry-After on 429, no retry on other 4xx, and the exit codes of
// --once and --check. Real agent process, real HTTP.
import { createServer } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { classifyResponse, MAX_RETRY_AFTER_MS } from "../../agent/src/push.ts";
import { accept, agentEnv, buildAgentBundle, makeHostDir, removeDir, runAgent, startAgent, StandInWorker, type HostDir } from "./agent-harness.ts";

let bundle: string;
const worker = new StandInWorker();
let host: HostDir;

beforeAll(async () => {
  bundle = await buildAgentBundle();
  await worker.start();
});
afterAll(() => worker.stop());
afterEach(async () => {
  await removeDir(host.root);
  worker.pings.length = 0;
  worker.responder = () => accept();
});

const unavailable = { status: 503, json: { ok: false, error: "service unavailable" } };

describe("through an outage", () => {
  it("backs off between retries, keeps going, and reports since/failures on the first success and until after it", { timeout: 45_000 }, async () => {
    host = await makeHostDir(worker.secret);
    worker.responder = (_ping, index) => (index < 3 ? unavailable : accept());
    const agent = startAgent(bundle, [], agentEnv(worker, host, { WITNESS_INTERVAL: "3" }));
    try {
      const pings = await worker.waitForPings(5, 30_000);
      const bodies = pings.map((ping) => ping.body);
      expect(bodies.every((body) => body !== undefined)).toBe(true);
      // seq advances by one per ping built.
      expect(bodies.map((body) => body?.seq)).toEqual([1, 2, 3, 4, 5]);
      // Never hammered, and backing off further with each failure: after failure n the
      // agent waits at least half of 1 s * 2^(n-1) (measured on the agent's own clock,
      // the signed timestamps, so server load cannot blur it).
      const signedAt = pings.map((ping) => Number(ping.headers["x-witness-timestamp"]));
      for (let i = 1; i < 4; i++) expect((signedAt[i] ?? 0) - (signedAt[i - 1] ?? 0)).toBeGreaterThanOrEqual(500 * 2 ** (i - 1));
      expect(bodies[0]?.lastPushOutage).toBeNull();
      const firstSuccess = bodies[3]?.lastPushOutage;
      expect(firstSuccess).toMatchObject({ failures: 3, lastError: "HTTP 503: service unavailable" });
      expect(firstSuccess?.until).toBeUndefined();
      expect(firstSuccess?.since).toBeGreaterThanOrEqual(bodies[0]?.sentAt ?? Infinity);
      expect(firstSuccess?.since).toBeLessThan(bodies[1]?.sentAt ?? 0);
      const afterRecovery = bodies[4]?.lastPushOutage;
      expect(afterRecovery).toMatchObject({ since: firstSuccess?.since, failures: 3 });
      expect(afterRecovery?.until).toBeGreaterThanOrEqual(bodies[3]?.sentAt ?? Infinity);
      expect(afterRecovery?.until).toBeLessThanOrEqual(bodies[4]?.sentAt ?? 0);
    } finally {
      agent.child.kill("SIGTERM");
    }
    const { stdout, stderr } = await agent.exited;
    // One line per change, not one per push.
    expect(stderr.match(/push failing/g)).toHaveLength(1);
    expect(stderr).toContain("push failing: HTTP 503: service unavailable");
    expect(stdout.match(/push recovered after 3 failures over \d+\.\d min/g)).toHaveLength(1);
    expect(stdout).not.toContain("push #");
  });

  it("honours Retry-After on 429", async () => {
    host = await makeHostDir(worker.secret);
    worker.responder = (_ping, index) =>
      index === 0 ? { status: 429, json: { ok: false, error: "slow down" }, headers: { "retry-after": "2" } } : accept();
    const result = await runAgent(bundle, ["--once"], agentEnv(worker, host, { WITNESS_INTERVAL: "10" }));
    expect(result.code).toBe(0);
    expect(worker.pings).toHaveLength(2);
    expect((worker.pings[1]?.receivedAtMs ?? 0) - (worker.pings[0]?.receivedAtMs ?? 0)).toBeGreaterThanOrEqual(1900);
  });

  it("does not retry a 400, and logs the Worker's own error", async () => {
    host = await makeHostDir(worker.secret);
    worker.responder = () => ({ status: 400, json: { ok: false, error: "heartbeat state is not allowed here", field: "files.heartbeat" } });
    const result = await runAgent(bundle, ["--once"], agentEnv(worker, host));
    expect(result.code).toBe(1);
    expect(worker.pings).toHaveLength(1);
    expect(result.stderr).toContain("HTTP 400: heartbeat state is not allowed here (field files.heartbeat)");
  });

  it("on a 401 about the timestamp, hints at the host clock", async () => {
    host = await makeHostDir(worker.secret);
    worker.responder = () => ({ status: 401, json: { ok: false, error: "timestamp outside the replay window" } });
    const result = await runAgent(bundle, ["--once"], agentEnv(worker, host));
    expect(result.code).toBe(1);
    expect(worker.pings).toHaveLength(1);
    expect(result.stderr).toMatch(/timestamp outside the replay window.*clock/);
  });

  it("on a 401 naming the timestamp field, says how far off the clock is and how to enable NTP, not the secret", async () => {
    host = await makeHostDir(worker.secret);
    // The response's Date header: the Worker's clock, 10 minutes behind this host's.
    worker.responder = () => ({
      status: 401,
      json: { ok: false, error: "outside the replay window", field: "X-Witness-Timestamp" },
      headers: { date: new Date(Date.now() - 600_000).toUTCString() },
    });
    const result = await runAgent(bundle, ["--once"], agentEnv(worker, host));
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/push failing: HTTP 401: outside the replay window \(field X-Witness-Timestamp\) \(this host's clock is \d+ s ahead of the Worker's: enable NTP, e\.g\. `sudo timedatectl set-ntp true`\)/);
    const offset = Number(/clock is (\d+) s ahead/.exec(lines[0] ?? "")?.[1]);
    expect(offset).toBeGreaterThanOrEqual(598);
    expect(offset).toBeLessThanOrEqual(602);
    expect(result.stderr).not.toContain("WITNESS_SECRET");
  });

  it("the Worker's own clock refusal is recognised; a malformed timestamp header is not taken for the clock", () => {
    const now = Date.parse("2026-11-22T23:17:37Z");
    const refusal = '{"ok":false,"error":"host clock is 612 s ahead of the Worker\'s, outside the 300 s window: its pings are refused until it is fixed (enable NTP on the host)","field":"X-Witness-Timestamp"}';
    expect(classifyResponse(401, null, refusal, now + 612_000, now, new Date(now).toUTCString())).toMatchObject({ clockRejected: { offsetMs: 612_000 } });
    const malformed = '{"ok":false,"error":"missing or malformed X-Witness-Timestamp: send Unix milliseconds","field":"X-Witness-Timestamp"}';
    expect(classifyResponse(401, null, malformed, now, now, null)).not.toHaveProperty("clockRejected");
    expect(classifyResponse(401, null, '{"ok":false,"error":"bad signature"}', now, now, null)).not.toHaveProperty("clockRejected");
  });

  it("a Retry-After of a day is obeyed for 300 s at most, and says so", async () => {
    host = await makeHostDir(worker.secret);
    worker.responder = () => ({ status: 429, json: { ok: false, error: "slow down" }, headers: { "retry-after": "86400" } });
    const agent = startAgent(bundle, [], agentEnv(worker, host, { WITNESS_INTERVAL: "2" }));
    try {
      await worker.waitForPings(1);
      await new Promise((resolve) => setTimeout(resolve, 1500));
    } finally {
      agent.child.kill("SIGTERM");
    }
    const { stderr } = await agent.exited;
    expect(stderr).toContain("push failing: HTTP 429: slow down (the Worker asked to wait 86400 s; waiting 300 s, the most the agent waits)");
    // And it does hold back (for the capped time): no second push within the interval.
    expect(worker.pings).toHaveLength(1);
  });

  it("Retry-After, as seconds or as an HTTP date, is capped at MAX_RETRY_AFTER_MS", () => {
    const now = Date.parse("2026-11-22T23:17:37Z");
    expect(MAX_RETRY_AFTER_MS).toBe(300_000);
    const tomorrow = new Date(now + 86_400_000).toUTCString();
    for (const header of ["86400", tomorrow]) {
      const outcome = classifyResponse(429, header, '{"ok":false,"error":"slow down"}', now, now);
      expect(outcome).toMatchObject({ kind: "failed", retryAfterMs: 300_000, retryAfterAskedMs: 86_400_000 });
    }
    expect(classifyResponse(503, "7", "", now, now)).toMatchObject({ retryAfterMs: 7000 });
    expect(classifyResponse(503, "7", "", now, now)).not.toHaveProperty("retryAfterAskedMs");
  });

  it("--once exits 1 when nothing answers, after retrying within the interval", async () => {
    host = await makeHostDir(worker.secret);
    const port = await freePort();
    const result = await runAgent(bundle, ["--once"], agentEnv(worker, host, { WITNESS_URL: `http://127.0.0.1:${port}`, WITNESS_INTERVAL: "2" }));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/push failing: network error: ECONNREFUSED/);
    expect(result.durationMs).toBeLessThan(5000);
  });
});

describe("the agent's mode, as the Worker sees it", () => {
  const sentMode = (index: number) => (JSON.parse(worker.pings[index]?.rawBody ?? "{}") as { agent?: { mode?: unknown } }).agent?.mode;

  it("service in its loop, once with --once, check with --check; and the body stays valid v1", async () => {
    host = await makeHostDir(worker.secret);
    expect((await runAgent(bundle, ["--once"], agentEnv(worker, host))).code).toBe(0);
    expect((await runAgent(bundle, ["--check"], agentEnv(worker, host))).code).toBe(0);
    const agent = startAgent(bundle, [], agentEnv(worker, host, { WITNESS_INTERVAL: "1" }));
    try {
      await worker.waitForPings(3);
    } finally {
      agent.child.kill("SIGTERM");
      await agent.exited;
    }
    expect([sentMode(0), sentMode(1), sentMode(2)]).toEqual(["once", "check", "service"]);
    // The stand-in validates with the shared schema: every body was v1, and the agent's own check did not complain.
    expect(worker.pings.every((ping) => ping.body !== undefined)).toBe(true);
    expect(worker.pings[2]?.body?.agent).toMatchObject({ kind: "node", mode: "service" });
  });
});

describe("--once and --check", () => {
  it("--once exits 0 when the Worker accepts", async () => {
    host = await makeHostDir(worker.secret);
    const result = await runAgent(bundle, ["--once"], agentEnv(worker, host));
    expect(result.code).toBe(0);
    expect(worker.pings).toHaveLength(1);
  });

  it("--check prints the ping that was sent and the verdict, exit 0", async () => {
    host = await makeHostDir(worker.secret);
    const result = await runAgent(bundle, ["--check"], agentEnv(worker, host));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("config ok: host trader-1");
    expect(result.stdout).toContain('"heartbeat": {\n      "state": "ok"');
    expect(result.stdout).toContain("Worker verdict: accepted");
    expect(result.stdout).not.toContain(worker.secret);
    // What was printed is what was sent.
    const printed = /ping sent[^\n]*\n([\s\S]*?)\nWorker verdict/.exec(result.stdout)?.[1];
    expect(JSON.parse(printed ?? "null")).toEqual(worker.pings[0]?.body);
  });

  it("--check exits 1 with the Worker's verdict for an unknown host, without retrying", async () => {
    host = await makeHostDir(worker.secret);
    const result = await runAgent(bundle, ["--check"], agentEnv(worker, host, { WITNESS_HOST: "not-configured" }));
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("Worker verdict: NOT accepted: HTTP 404: unknown host");
    expect(worker.pings).toHaveLength(1);
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
