// The HTTP edge inside workerd, in front of the real monitor object: what an agent, a
// curl script or an attacker gets back, and that whatever the edge refuses costs no
// Durable Object request. The monitor runs on the real clock here (the object reads
// Date.now()), so pings are timestamped now; time-driven behaviour is tested through
// monitor-harness.ts.
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MAX_BODY_BYTES, type PingBody } from "../../src/protocol.ts";
import { createApp } from "../../src/edge/routes.ts";
import { deriveHostSecret, signPing } from "../../src/edge/signature.ts";
import { filesWith, hostStatus, makePingBody, signedPingRequest, type TestEnv, testEnv } from "./helpers.ts";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** The Worker's "now" for the edge; the monitor's own clock is the real one, a moment later. */
const NOW = Date.now();

interface ErrorBody {
  ok: false;
  error: string;
  field?: string;
}

/** The hosts of the global test config (test-config.ts), which the monitor object itself reads. */
function routeEnv(): TestEnv {
  return testEnv({ hosts: [{ id: "alpha" }, { id: "beta", allowRemotePause: true }] });
}

async function send(testEnvironment: Env, request: Request, now: number = NOW): Promise<Response> {
  return await createApp({ now: () => now }).fetch(request, testEnvironment);
}

async function errorOf(response: Response): Promise<ErrorBody> {
  return (await response.json()) as ErrorBody;
}

function unsignedRequest(hostId: string, body: string, headers: Record<string, string>): Request {
  return new Request(`https://witness.test/v1/ping/${hostId}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

/** A ping now from an agent process of its own (so pings in one test are not rate-limited as one agent's). */
function freshPing(overrides: Partial<PingBody> = {}): PingBody {
  const sentAt = overrides.sentAt ?? NOW;
  return makePingBody({ sentAt, files: filesWith(sentAt - 5 * SECOND), agent: { version: "0.1.0", startedAt: sentAt - Math.floor(Math.random() * 1e6) - 1, bootId: "boot-1", kind: "node" }, ...overrides });
}

describe("a valid ping", () => {
  it("answers 200 with the server time and no commands, and the monitor keeps what the host reported", async () => {
    const testEnvironment = routeEnv();
    const body = freshPing({ files: filesWith(NOW - 30 * SECOND, "ok") });
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", body));
    expect(response.status).toBe(200);
    const accepted = (await response.json()) as { ok: boolean; serverTime: number; commands: unknown[] };
    expect(accepted).toMatchObject({ ok: true, commands: [] });
    expect(Math.abs(accepted.serverTime - Date.now())).toBeLessThan(10 * SECOND);
    expect(testEnvironment.monitorRequests.count).toBe(1);
    expect(await hostStatus(testEnvironment, "alpha", NOW)).toMatchObject({
      heartbeat: { state: "ok", status: "ok", at: (NOW - 30 * SECOND) / 1000 },
      circuit: { state: "missing" },
      agent: { bootId: "boot-1" },
    });
  });

  it("accepts timestamps right at the edge of the 300 s window, both ways", async () => {
    const testEnvironment = routeEnv();
    expect((await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", freshPing({ sentAt: NOW - 300 * SECOND }))))).toHaveProperty("status", 200);
    expect((await send(testEnvironment, await signedPingRequest(testEnvironment, "beta", freshPing({ sentAt: NOW + 300 * SECOND }))))).toHaveProperty("status", 200);
  });

  it("signs and verifies the raw bytes: a body with non-ASCII text is accepted as sent", async () => {
    const testEnvironment = routeEnv();
    const body = freshPing({ files: { heartbeat: { state: "ok", text: JSON.stringify({ at: NOW / 1000 - 5, status: "ok", note: "Überprüfung ✓" }) }, circuit: { state: "missing" } } });
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", body));
    expect(response.status).toBe(200);
    expect((await hostStatus(testEnvironment, "alpha", NOW)).heartbeat).toMatchObject({ extra: expect.stringContaining("Überprüfung ✓") });
  });

  it("a body that is not UTF-8 is 400, though correctly signed over its bytes", async () => {
    const testEnvironment = routeEnv();
    const bytes = new Uint8Array([0x7b, 0x22, 0x76, 0x22, 0x3a, 0xff, 0xfe, 0x7d]);
    const timestamp = String(NOW);
    const signature = await signPing(await deriveHostSecret(testEnvironment.WITNESS_MASTER_KEY, "alpha"), timestamp, bytes);
    const request = new Request("https://witness.test/v1/ping/alpha", {
      method: "POST",
      headers: { "X-Witness-Timestamp": timestamp, "X-Witness-Signature": signature },
      body: bytes,
    });
    const response = await send(testEnvironment, request);
    expect(response.status).toBe(400);
    expect((await errorOf(response)).error).toBe("body is not UTF-8 text: send the ping as UTF-8 JSON");
    expect(testEnvironment.monitorRequests.count).toBe(0);
  });
});

describe("authentication failures answer 401 naming the problem and cost no monitor request", () => {
  const cases: Array<[string, (testEnvironment: TestEnv) => Promise<Request>, RegExp, number?]> = [
    [
      "no signature",
      async () => unsignedRequest("alpha", JSON.stringify(makePingBody()), { "X-Witness-Timestamp": String(NOW) }),
      /^missing or malformed X-Witness-Signature: send 64 hex characters of HMAC-SHA256$/,
    ],
    [
      "no timestamp",
      async (e) => {
        const raw = JSON.stringify(makePingBody());
        return unsignedRequest("alpha", raw, { "X-Witness-Signature": await signPing(await deriveHostSecret(e.WITNESS_MASTER_KEY, "alpha"), String(NOW), raw) });
      },
      /^missing or malformed X-Witness-Timestamp: send Unix milliseconds$/,
    ],
    [
      "a malformed timestamp (ISO instead of Unix ms)",
      async (e) => {
        const raw = JSON.stringify(makePingBody());
        const timestamp = "2026-11-24T14:00:00Z";
        return unsignedRequest("alpha", raw, {
          "X-Witness-Timestamp": timestamp,
          "X-Witness-Signature": await signPing(await deriveHostSecret(e.WITNESS_MASTER_KEY, "alpha"), timestamp, raw),
        });
      },
      /^missing or malformed X-Witness-Timestamp/,
    ],
    [
      "a wrong signature",
      (e) => signedPingRequest(e, "alpha", makePingBody(), { secret: "not-the-host-secret" }),
      /^bad signature: check the host secret/,
    ],
    [
      "another host's secret",
      async (e) => signedPingRequest(e, "alpha", makePingBody(), { secret: await deriveHostSecret(e.WITNESS_MASTER_KEY, "beta") }),
      /^bad signature/,
    ],
    [
      "a body changed after signing",
      async (e) => {
        const signed = await signedPingRequest(e, "alpha", makePingBody());
        const headers = Object.fromEntries(signed.headers);
        return unsignedRequest("alpha", JSON.stringify(makePingBody({ seq: 99 })), headers);
      },
      /^bad signature/,
    ],
  ];

  it.each(cases)("%s", async (_label, build, message) => {
    const testEnvironment = routeEnv();
    const response = await send(testEnvironment, await build(testEnvironment));
    expect(response.status).toBe(401);
    expect((await errorOf(response)).error).toMatch(message);
    expect(testEnvironment.monitorRequests.count).toBe(0);
  });

  it("a replayed exact request is refused by the monitor, and cannot roll the host's state back", async () => {
    const testEnvironment = routeEnv();
    const agent = { version: "0.1.0", startedAt: NOW - MINUTE, bootId: "boot-1", kind: "node" as const };
    const first = makePingBody({ seq: 1, sentAt: NOW, agent, files: filesWith(NOW - 5 * SECOND, "halted") });
    expect((await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", first))).status).toBe(200);
    const replay = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", first));
    expect(replay.status).toBe(401);
    expect((await errorOf(replay)).error).toBe("replayed ping: sequence 1 is not after 1");
    expect((await hostStatus(testEnvironment, "alpha", NOW)).heartbeat).toMatchObject({ status: "halted" });
  });

  it("a --check or --once run beside the running service never locks the service out", { timeout: 20_000 }, async () => {
    const testEnvironment = routeEnv();
    const service = { version: "0.1.0", startedAt: NOW - 10 * MINUTE, bootId: "boot-1", kind: "node" as const, mode: "service" as const };
    const check = { ...service, startedAt: NOW - SECOND, mode: "check" as const };
    const once = { ...service, startedAt: NOW - 500, mode: "once" as const };
    const statuses: number[] = [];
    for (const [agent, seq, sentAt] of [
      [service, 40, NOW - 90 * SECOND],
      [check, 1, NOW - 60 * SECOND],
      [service, 41, NOW - 30 * SECOND],
      [once, 1, NOW - 20 * SECOND],
      [service, 42, NOW],
    ] as const) {
      const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", makePingBody({ seq, sentAt, agent, files: filesWith(sentAt - 5 * SECOND) })));
      statuses.push(response.status);
      // The monitor's own clock is real: give the burst guard its second.
      await new Promise((resolve) => setTimeout(resolve, 1100));
    }
    // The --once came a second after the --check: one-shot runs in a loop would spend the
    // quota, so they are held to one per half interval (the service is not affected).
    expect(statuses).toEqual([200, 200, 200, 429, 200]);
    // The one-shot runs did not displace the service's identity.
    expect((await hostStatus(testEnvironment, "alpha", NOW)).agent).toMatchObject({ startedAt: service.startedAt, mode: "service" });
  });
});

describe("a host clock outside the replay window", () => {
  it.each([
    ["301 s behind", -301, /^host clock is 301 s behind the Worker's, outside the 300 s window: its pings are refused until it is fixed \(enable NTP on the host\)$/],
    ["301 s ahead", 301, /^host clock is 301 s ahead of the Worker's, outside the 300 s window/],
    ["a day behind (a clock reset by a power loss)", -86_400, /^host clock is 86400 s behind/],
  ])("%s: 401 naming the offset and the fix, and the host is paged SKEWED, not DARK", async (_label, offsetSeconds, message) => {
    const testEnvironment = routeEnv();
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", freshPing({ sentAt: NOW + offsetSeconds * SECOND })));
    expect(response.status).toBe(401);
    const error = await errorOf(response);
    expect(error.error).toMatch(message);
    expect(error.field).toBe("X-Witness-Timestamp");
    const host = await hostStatus(testEnvironment, "alpha", NOW);
    expect(host.conditions.skewed?.detail).toMatch(/^host clock is \d+ s (ahead|behind); its pings are refused until it is fixed \(enable NTP on the host\)$/);
    expect(host.conditions.skewed?.pagedAt).not.toBeNull();
    expect(host.conditions.dark).toBeUndefined();
  });

  it("a replay of an old captured ping cannot raise a false SKEWED page", async () => {
    const testEnvironment = routeEnv();
    const agent = { version: "0.1.0", startedAt: NOW - HOUR, bootId: "boot-1", kind: "node" as const };
    // Captured a day ago: seq 5 of the agent that is still running.
    const captured = makePingBody({ seq: 5, sentAt: NOW - DAY, agent, files: filesWith(NOW - DAY - 5 * SECOND) });
    const now = Date.now();
    const current = makePingBody({ seq: 2000, sentAt: now, agent, files: filesWith(now - 5 * SECOND) });
    expect((await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", current), now)).status).toBe(200);
    const replay = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", captured), now);
    expect(replay.status).toBe(401);
    expect((await errorOf(replay)).error).toBe("replayed ping: sequence 5 is not after 2000");
    expect((await hostStatus(testEnvironment, "alpha", NOW)).conditions).toEqual({});
  });
});

describe("a misconfigured agent cannot spend the account's quota", () => {
  it("a second ping from the same agent within half its interval is 429 with Retry-After, and stores nothing", async () => {
    const testEnvironment = routeEnv();
    const agent = { version: "0.1.0", startedAt: NOW - MINUTE, bootId: "boot-1", kind: "node" as const };
    const first = makePingBody({ seq: 1, sentAt: NOW, agent, files: filesWith(NOW - 5 * SECOND, "ok") });
    expect((await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", first))).status).toBe(200);
    const second = makePingBody({ seq: 2, sentAt: NOW + 1, agent, files: filesWith(NOW, "halted") });
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", second));
    expect(response.status).toBe(429);
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(Number(response.headers.get("retry-after"))).toBeLessThanOrEqual(15);
    expect((await errorOf(response)).error).toMatch(/^pinging too fast: alpha pings every 30 s/);
    expect((await hostStatus(testEnvironment, "alpha", NOW)).heartbeat).toMatchObject({ status: "ok" });
  });
});

describe("when the monitor cannot be reached", () => {
  it("a ping answers 503 naming the exhausted quota and when it resets, never 500", async () => {
    const testEnvironment = routeEnv();
    testEnvironment.monitorRequests.failWith = "Exceeded allowed rows written in Durable Objects free tier.";
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", freshPing()));
    expect(response.status).toBe(503);
    expect((await errorOf(response)).error).toBe(
      "witness monitor unavailable, retry later: a Durable Object daily limit was reached (resets at 00:00 UTC): Exceeded allowed rows written in Durable Objects free tier.",
    );
  });
});

describe("bad input is a 4xx naming the problem, never a 500", () => {
  it("a body over the limit with a content-length is 413 before anything is read", async () => {
    const testEnvironment = routeEnv();
    const huge = "x".repeat(MAX_BODY_BYTES + 1);
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", huge));
    expect(response.status).toBe(413);
    expect((await errorOf(response)).error).toBe(`body larger than ${MAX_BODY_BYTES} bytes`);
    expect(testEnvironment.monitorRequests.count).toBe(0);
  });

  it("a chunked body (no content-length) over the limit is 413 too", async () => {
    const testEnvironment = routeEnv();
    const chunk = new TextEncoder().encode("x".repeat(4096));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > MAX_BODY_BYTES) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const request = new Request("https://witness.test/v1/ping/alpha", {
      method: "POST",
      headers: { "content-type": "application/json", "X-Witness-Timestamp": String(NOW), "X-Witness-Signature": "a".repeat(64) },
      body: stream,
    });
    expect(request.headers.get("content-length")).toBeNull();
    const response = await send(testEnvironment, request);
    expect(response.status).toBe(413);
    expect((await errorOf(response)).error).toBe(`body larger than ${MAX_BODY_BYTES} bytes`);
    expect(testEnvironment.monitorRequests.count).toBe(0);
  });

  it("a body of exactly the limit is read (and judged on its merits)", async () => {
    const testEnvironment = routeEnv();
    const body = makePingBody();
    const raw = JSON.stringify(body);
    const padded = raw + " ".repeat(MAX_BODY_BYTES - raw.length);
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", padded));
    expect(response.status).toBe(200);
  });

  it.each([
    ["not JSON", "{not json", "body is not JSON", undefined],
    ["truncated JSON", '{"v":1,"seq":', "body is not JSON", undefined],
    ["empty", "", "body is not JSON", undefined],
    ["JSON null", "null", /^invalid ping body: /, undefined],
    ["a JSON array", "[]", /^invalid ping body: /, undefined],
  ])("%s → 400", async (_label, raw, message, field) => {
    const testEnvironment = routeEnv();
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", raw));
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    if (typeof message === "string") expect(error.error).toBe(message);
    else expect(error.error).toMatch(message);
    expect(error.field).toBe(field);
    expect(testEnvironment.monitorRequests.count).toBe(0);
  });

  const valid = makePingBody();
  const wrongTypes: Array<[string, unknown, string]> = [
    ["an unknown heartbeat state", { ...valid, files: { ...valid.files, heartbeat: { state: "fine" } } }, "files.heartbeat.state"],
    ["a file reported ok without its text", { ...valid, files: { ...valid.files, circuit: { state: "ok" } } }, "files.circuit.text"],
    ["a string seq", { ...valid, seq: "1" }, "seq"],
    ["a negative seq", { ...valid, seq: -1 }, "seq"],
    ["protocol version 2", { ...valid, v: 2 }, "v"],
    ["an empty boot id", { ...valid, agent: { ...valid.agent, bootId: "" } }, "agent.bootId"],
    ["a fractional startedAt", { ...valid, agent: { ...valid.agent, startedAt: 1.5 } }, "agent.startedAt"],
    ["a file text over the cap", { ...valid, files: { ...valid.files, heartbeat: { state: "ok", text: "x".repeat(8 * 1024 + 1) } } }, "files.heartbeat.text"],
    ["no files", { ...valid, files: undefined }, "files"],
    ["outage failures 0", { ...valid, lastPushOutage: { since: NOW, failures: 0 } }, "lastPushOutage.failures"],
  ];

  it.each(wrongTypes)("%s → 400 naming %s", async (_label, body, field) => {
    const testEnvironment = routeEnv();
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", JSON.stringify(body)));
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error.field).toBe(field);
    expect(error.error).toContain(`invalid ping body at ${field}: `);
    expect(testEnvironment.monitorRequests.count).toBe(0);
  });

  it("fields this Worker does not know are ignored within protocol v1 (an agent upgraded first keeps working)", async () => {
    const testEnvironment = routeEnv();
    const newer = { ...valid, hello: 1, agent: { ...valid.agent, newField: "x" }, files: { ...valid.files, heartbeat: { ...valid.files.heartbeat, checksum: "abc" } } };
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", JSON.stringify(newer)));
    expect(response.status).toBe(200);
    expect((await hostStatus(testEnvironment, "alpha", NOW)).heartbeat).toMatchObject({ state: "ok", status: "ok" });
  });

  it("an unknown host is 404 through the deployed handler, before any signature work", async () => {
    const response = await exports.default.fetch(
      new Request("https://witness.test/v1/ping/gamma", { method: "POST", body: JSON.stringify(makePingBody()) }),
    );
    expect(response.status).toBe(404);
    expect((await errorOf(response)).error).toBe('unknown host "gamma": declare it in [vars.WITNESS_CONFIG] and redeploy');
  });

  it.each([
    ["an unknown route", "GET", "/v1/nothing-here", 404],
    ["a badly percent-encoded host id", "POST", "/v1/ping/%E0%A4%A", 404],
    ["a host id of 500 characters", "POST", `/v1/ping/${"a".repeat(500)}`, 404],
    ["GET on the ping route", "GET", "/v1/ping/alpha", 404],
  ])("%s is a 4xx", async (_label, method, path, status) => {
    const response = await exports.default.fetch(new Request(`https://witness.test${path}`, { method }));
    expect(response.status).toBe(status);
    expect((await errorOf(response)).ok).toBe(false);
  });

  it.each(([
    ["a huge exponent", '{"v":1,"seq":1e400}', 400],
    ["deep nesting", `${"[".repeat(5000)}${"]".repeat(5000)}`, 400],
    ["a NUL byte", '{"v":1,"seq":1,"\u0000":1}', 400],
    ["a number as the body", "42", 400],
    // Not valid UTF-16: the bytes on the wire are not the ones signed, so the signature fails.
    ["a lone surrogate", '{"v":1,"seq":"\ud800"}', 401],
  ] as const).map(([label, raw, status]) => [`${label} → ${status}`, raw, status] as const))("signed garbage: %s", async (_label, raw, status) => {
    const testEnvironment = routeEnv();
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", raw));
    expect(response.status).toBe(status);
    expect(testEnvironment.monitorRequests.count).toBe(0);
  });
});

describe("an invalid WITNESS_CONFIG answers 503 naming the field on every route", () => {
  const badInterval = { telegram: { chatId: "4242" }, hosts: [{ id: "alpha", intervalSeconds: 5 }] };

  it.each([
    ["POST /v1/ping/alpha", "POST", "/v1/ping/alpha"],
    ["GET /v1/health", "GET", "/v1/health"],
    ["GET /v1/status", "GET", "/v1/status"],
    ["POST /telegram/webhook", "POST", "/telegram/webhook"],
    ["an unknown route", "GET", "/nope"],
  ])("%s", async (_label, method, path) => {
    const testEnvironment = testEnv({}, { rawConfig: badInterval });
    const request = new Request(`https://witness.test${path}`, {
      method,
      headers: { authorization: `Bearer ${testEnvironment.STATUS_TOKEN}` },
      ...(method === "POST" ? { body: JSON.stringify(makePingBody()) } : {}),
    });
    const response = await send(testEnvironment, request);
    expect(response.status).toBe(503);
    expect((await errorOf(response)).error).toMatch(/^witness is misconfigured: WITNESS_CONFIG\.hosts\.0\.intervalSeconds: /);
  });

  it.each([
    ["not set", undefined, "witness is misconfigured: WITNESS_CONFIG is not set: add [vars.WITNESS_CONFIG] to wrangler.toml (see README, Configuration)"],
    ["not JSON", "{plan: free", /^witness is misconfigured: WITNESS_CONFIG is not valid JSON/],
    ["without hosts", { telegram: { chatId: "4242" }, hosts: [] }, /^witness is misconfigured: WITNESS_CONFIG\.hosts: declare at least one host/],
    ["with a bad time zone", { telegram: { chatId: "4242" }, hosts: [{ id: "alpha", calendar: { timezone: "New York", open: "09:30", close: "16:00" } }] }, /hosts\.0\.calendar\.timezone: not an IANA time zone/],
    ["with darkAfter too short", { telegram: { chatId: "4242" }, hosts: [{ id: "alpha", darkAfterSeconds: 35 }] }, /hosts\.0\.darkAfterSeconds: 35 s would page a live host whose ping is a little late/],
  ])("WITNESS_CONFIG %s", async (_label, raw, message) => {
    const testEnvironment = { ...routeEnv(), WITNESS_CONFIG: raw as object };
    const response = await send(testEnvironment, new Request("https://witness.test/v1/health"));
    expect(response.status).toBe(503);
    const error = (await errorOf(response)).error;
    if (typeof message === "string") expect(error).toBe(message);
    else expect(error).toMatch(message);
  });
});

describe("GET /v1/health, read from the snapshot the monitor publishes", () => {
  async function health(testEnvironment: Env, now: number = Date.now()): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await send(testEnvironment, new Request("https://witness.test/v1/health"), now);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it("is 503 before the monitor ever published, and costs no monitor request", async () => {
    const testEnvironment = routeEnv();
    const result = await health(testEnvironment);
    expect(result).toMatchObject({ status: 503, body: { ok: false, problems: ["the monitor has not published yet (the cron has not run)"] } });
    expect(testEnvironment.monitorRequests.count).toBe(0);
  });

  it.each([
    ["fresh, right after the cron", 10 * SECOND, 200, []],
    ["at the limit (publish every 60 s on paid + 2 cron periods + 60 s of KV lag = 240 s)", 240 * SECOND, 200, []],
    ["1 s past the limit", 241 * SECOND, 503, [expect.stringMatching(/^the monitor last published 241 s ago$/), "the cron has not run recently"]],
  ])("%s", async (_label, sinceCron, status, problems) => {
    const testEnvironment = routeEnv();
    const at = Date.now();
    await testEnvironment.WITNESS_KV.put(
      "snapshot",
      JSON.stringify({ publishedAt: at, lastCronAt: at, alarmAt: null, telegram: { lastDeliveredAt: null, permanentError: null, undelivered: 0 }, hosts: [] }),
    );
    const result = await health(testEnvironment, at + sinceCron);
    expect(result.status).toBe(status);
    expect(result.body).toMatchObject({ ok: status === 200, problems, lateAfterSeconds: 240, hosts: 2 });
  });

  it("is 503 naming the reason while pages cannot be delivered", async () => {
    const testEnvironment = routeEnv();
    const at = Date.now();
    await testEnvironment.WITNESS_KV.put(
      "snapshot",
      JSON.stringify({ publishedAt: at, lastCronAt: at, alarmAt: null, telegram: { lastDeliveredAt: null, permanentError: "403 Forbidden: bot was kicked from the group chat", undelivered: 3 }, hosts: [] }),
    );
    const result = await health(testEnvironment, at + SECOND);
    expect(result).toMatchObject({ status: 503, body: { ok: false, problems: ["pages cannot be delivered: 403 Forbidden: bot was kicked from the group chat"] } });
  });

  it("answers through the deployed handler", async () => {
    const response = await exports.default.fetch("https://witness.test/v1/health");
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ ok: false, hosts: 2 });
  });
});

describe("GET /v1/status", () => {
  it.each([
    ["no Authorization header", undefined],
    ["a wrong token", "Bearer not-the-token"],
    ["the token without Bearer's space", "Bearer"],
  ])("is 401 with %s, and costs no monitor request", async (_label, authorization) => {
    const testEnvironment = routeEnv();
    const response = await send(testEnvironment, new Request("https://witness.test/v1/status", authorization === undefined ? {} : { headers: { authorization } }));
    expect(response.status).toBe(401);
    expect((await errorOf(response)).error).toBe("send Authorization: Bearer <STATUS_TOKEN>");
    expect(testEnvironment.monitorRequests.count).toBe(0);
  });

  it("shows each host's conditions and the mirrored files, judged the moment the ping arrived", async () => {
    const testEnvironment = routeEnv();
    const body = freshPing({
      files: filesWith(NOW - 40 * SECOND, "halted", { state: "ok", text: '{"paused":true,"reason":"drawdown 5%","since":1795389457.66}' }),
    });
    expect((await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", body))).status).toBe(200);
    const host = await hostStatus(testEnvironment, "alpha", NOW);
    expect(host).toMatchObject({
      heartbeat: { state: "ok", status: "halted", at: (NOW - 40 * SECOND) / 1000 },
      circuit: { state: "ok", paused: true, reason: "drawdown 5%", since: 1795389457.66 },
    });
    // A trip pages at once; a failing status waits for a second ping (timing.confirmPings).
    expect(host.conditions.tripped).toMatchObject({ detail: "circuit paused: drawdown 5% since 2026-11-22T23:17:37.660Z" });
    expect(host.conditions.tripped?.pagedAt).not.toBeNull();
    expect(host.conditions.failing).toMatchObject({ detail: 'status "halted"', pagedAt: null });
  });
});

describe("GET /v1/events", () => {
  it("needs the token, refuses an unknown host and a bad since, and lists what happened", async () => {
    const testEnvironment = routeEnv();
    const events = (query: string, token = testEnvironment.STATUS_TOKEN) =>
      send(testEnvironment, new Request(`https://witness.test/v1/events${query}`, { headers: { authorization: `Bearer ${token}` } }));
    expect((await events("", "wrong")).status).toBe(401);
    expect((await events("?host=gamma")).status).toBe(404);
    expect(await (await events("?since=yesterday")).json()).toMatchObject({ ok: false, field: "since" });
    const paused = freshPing({ files: filesWith(NOW - 5 * SECOND, "ok", { state: "ok", text: '{"paused":true,"reason":"manual"}' }) });
    expect((await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", paused))).status).toBe(200);
    const listed = (await (await events(`?host=alpha&since=${NOW - MINUTE}`)).json()) as { events: Array<Record<string, unknown>> };
    expect(listed.events).toEqual([expect.objectContaining({ hostId: "alpha", type: "alert", kind: "tripped", detail: "circuit paused: manual" })]);
  });
});
