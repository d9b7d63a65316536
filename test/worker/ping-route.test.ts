// The HTTP routes inside workerd against real (simulated) KV: what an agent, a curl
// script or an attacker gets back, and what is (or is not) left in KV afterwards.
import { reset } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { MAX_BODY_BYTES, type PingBody } from "../../src/protocol.ts";
import { PingRecord } from "../../src/records.ts";
import { createApp } from "../../src/routes.ts";
import { deriveHostSecret, signPing } from "../../src/signature.ts";
import { Store } from "../../src/store.ts";
import {
  countingKv,
  failingPutKv,
  filesWith,
  kvContents,
  makePingBody,
  MINUTE,
  signedPingRequest,
  T0,
  type TestEnv,
  testEnv,
  tick,
  useIsolatedKv,
} from "./helpers.ts";

const SECOND = 1000;

let kv: KVNamespace;

beforeEach(async () => {
  await reset();
  kv = useIsolatedKv();
});

interface ErrorBody {
  ok: false;
  error: string;
  field?: string;
}

async function send(testEnvironment: Env, request: Request, now: number = T0): Promise<Response> {
  return await createApp({ now: () => now }).fetch(request, testEnvironment);
}

async function errorOf(response: Response): Promise<ErrorBody> {
  return (await response.json()) as ErrorBody;
}

async function storedRecord(hostId = "alpha"): Promise<PingRecord | null> {
  const text = await kv.get(`ping:${hostId}`);
  return text === null ? null : PingRecord.parse(JSON.parse(text));
}

function unsignedRequest(hostId: string, body: string, headers: Record<string, string>): Request {
  return new Request(`https://witness.test/v1/ping/${hostId}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

describe("a valid ping", () => {
  it("answers 200 with the server time and no commands, and stores what the host reported", async () => {
    const testEnvironment = testEnv();
    const body = makePingBody({ files: filesWith(T0 - 30 * SECOND, "ok") });
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", body), T0 + 150);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, serverTime: T0 + 150, commands: [] });
    expect(response.headers.get("x-witness-write")).toBe("first");
    expect(await storedRecord()).toMatchObject({
      hostId: "alpha",
      receivedAt: T0 + 150,
      sentAt: T0,
      seq: 1,
      agent: { bootId: "boot-1" },
      heartbeat: { state: "ok", status: "ok", at: (T0 - 30 * SECOND) / 1000 },
      circuit: { state: "missing" },
    });
  });

  it("accepts timestamps right at the edge of the 300 s window, both ways", async () => {
    const testEnvironment = testEnv();
    const behind = makePingBody({ seq: 1, sentAt: T0 - 300 * SECOND });
    expect((await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", behind), T0)).status).toBe(200);
    const ahead = makePingBody({ seq: 2, sentAt: T0 + 10 * SECOND + 300 * SECOND });
    expect((await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", ahead), T0 + 10 * SECOND)).status).toBe(200);
  });

  it("hands a confirmed remote pause to a host that allows it, and to no other", async () => {
    const testEnvironment = testEnv({ hosts: [{ id: "alpha" }, { id: "beta", allowRemotePause: true }] });
    const command = { id: "cmd-1", type: "pause" as const, reason: "from the phone", requestedBy: "@op", expiresAt: T0 + 10 * MINUTE };
    const store = new Store(kv);
    await store.putCommand("beta", { command, requestedAt: T0 - MINUTE, confirmedAt: T0 - 30 * SECOND });
    await store.putCommand("alpha", { command, requestedAt: T0 - MINUTE, confirmedAt: T0 - 30 * SECOND });
    const toBeta = await send(testEnvironment, await signedPingRequest(testEnvironment, "beta", makePingBody()));
    expect(await toBeta.json()).toEqual({ ok: true, serverTime: T0, commands: [command] });
    const toAlpha = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", makePingBody()));
    expect(await toAlpha.json()).toEqual({ ok: true, serverTime: T0, commands: [] });
  });
});

describe("authentication failures answer 401 naming the problem and leave KV untouched", () => {
  const twoHosts = { hosts: [{ id: "alpha" }, { id: "beta" }] };

  const cases: Array<[string, (testEnvironment: TestEnv) => Promise<Request>, RegExp, number?]> = [
    [
      "no signature",
      async () => unsignedRequest("alpha", JSON.stringify(makePingBody()), { "X-Witness-Timestamp": String(T0) }),
      /^missing or malformed X-Witness-Signature: send 64 hex characters of HMAC-SHA256$/,
    ],
    [
      "no timestamp",
      async (e) => {
        const raw = JSON.stringify(makePingBody());
        return unsignedRequest("alpha", raw, { "X-Witness-Signature": await signPing(await deriveHostSecret(e.WITNESS_MASTER_KEY, "alpha"), String(T0), raw) });
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
    [
      "a timestamp 301 s behind",
      (e) => signedPingRequest(e, "alpha", makePingBody({ sentAt: T0 - 301 * SECOND })),
      /^timestamp outside the 300 s window: the host clock is 301 s behind the Worker's \(fix NTP on the host\)$/,
    ],
    [
      "a timestamp 301 s ahead",
      (e) => signedPingRequest(e, "alpha", makePingBody({ sentAt: T0 + 301 * SECOND })),
      /^timestamp outside the 300 s window: the host clock is 301 s ahead of the Worker's/,
    ],
    [
      "a timestamp a day old (a captured request replayed later)",
      (e) => signedPingRequest(e, "alpha", makePingBody({ sentAt: T0 - 86_400 * SECOND })),
      /^timestamp outside the 300 s window/,
    ],
  ];

  it.each(cases)("%s", async (_label, build, message) => {
    const testEnvironment = testEnv(twoHosts);
    const response = await send(testEnvironment, await build(testEnvironment), T0);
    expect(response.status).toBe(401);
    expect((await errorOf(response)).error).toMatch(message);
    expect(await kvContents(kv)).toEqual({});
  });

  it("a replayed exact request is refused, and cannot roll the stored record back", async () => {
    const testEnvironment = testEnv();
    const first = makePingBody({ seq: 1, sentAt: T0 });
    expect((await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", first), T0)).status).toBe(200);
    const halted = makePingBody({ seq: 2, sentAt: T0 + MINUTE, files: filesWith(T0 + 50 * SECOND, "halted") });
    expect((await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", halted), T0 + MINUTE)).headers.get("x-witness-write")).toBe("changed");
    const before = await kvContents(kv);

    const replay = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", first), T0 + 70 * SECOND);
    expect(replay.status).toBe(401);
    expect((await errorOf(replay)).error).toBe("replayed ping: this exact signed request was already accepted");
    expect(await kvContents(kv)).toEqual(before);
    expect((await storedRecord())?.heartbeat).toMatchObject({ status: "halted" });
  });

  it("a replayed sequence number under a fresh timestamp is refused, and KV keeps the newer record", async () => {
    const testEnvironment = testEnv();
    const halted = makePingBody({ seq: 7, sentAt: T0, files: filesWith(T0 - 10 * SECOND, "halted") });
    expect((await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", halted), T0)).status).toBe(200);
    const before = await kvContents(kv);

    const old = makePingBody({ seq: 7, sentAt: T0 + 20 * SECOND, files: filesWith(T0, "ok") });
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", old), T0 + 20 * SECOND);
    expect(response.status).toBe(401);
    expect((await errorOf(response)).error).toBe("replayed ping: sequence 7 is not after 7");
    expect(await kvContents(kv)).toEqual(before);
  });
});

describe("bad input is a 4xx naming the problem, never a 500", () => {
  it("a body over the limit with a content-length is 413 before anything is read", async () => {
    const testEnvironment = testEnv();
    const huge = "x".repeat(MAX_BODY_BYTES + 1);
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", huge));
    expect(response.status).toBe(413);
    expect((await errorOf(response)).error).toBe(`body larger than ${MAX_BODY_BYTES} bytes`);
    expect(await kvContents(kv)).toEqual({});
  });

  it("a chunked body (no content-length) over the limit is 413 too", async () => {
    const testEnvironment = testEnv();
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
      headers: { "content-type": "application/json", "X-Witness-Timestamp": String(T0), "X-Witness-Signature": "a".repeat(64) },
      body: stream,
    });
    expect(request.headers.get("content-length")).toBeNull();
    const response = await send(testEnvironment, request);
    expect(response.status).toBe(413);
    expect((await errorOf(response)).error).toBe(`body larger than ${MAX_BODY_BYTES} bytes`);
    expect(await kvContents(kv)).toEqual({});
  });

  it("a body of exactly the limit is read (and judged on its merits)", async () => {
    const testEnvironment = testEnv();
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
    const testEnvironment = testEnv();
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", raw));
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    if (typeof message === "string") expect(error.error).toBe(message);
    else expect(error.error).toMatch(message);
    expect(error.field).toBe(field);
    expect(await kvContents(kv)).toEqual({});
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
    ["outage failures 0", { ...valid, lastPushOutage: { since: T0, failures: 0 } }, "lastPushOutage.failures"],
  ];

  it.each(wrongTypes)("%s → 400 naming %s", async (_label, body, field) => {
    const testEnvironment = testEnv();
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", JSON.stringify(body)));
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error.field).toBe(field);
    expect(error.error).toContain(`invalid ping body at ${field}: `);
    expect(await kvContents(kv)).toEqual({});
  });

  it("an unexpected top-level key is 400 and its name is in the message", async () => {
    const testEnvironment = testEnv();
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", JSON.stringify({ ...valid, hello: 1 })));
    expect(response.status).toBe(400);
    expect((await errorOf(response)).error).toMatch(/^invalid ping body: .*"hello"/);
  });

  it("an unknown host is 404 through the deployed handler, before any signature work", async () => {
    const response = await exports.default.fetch(
      new Request("https://witness.test/v1/ping/gamma", { method: "POST", body: JSON.stringify(makePingBody()) }),
    );
    expect(response.status).toBe(404);
    expect((await errorOf(response)).error).toBe('unknown host "gamma": declare it in [vars.WITNESS_CONFIG] and redeploy');
    expect(await kvContents(env.WITNESS_KV)).toEqual({});
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

  it.each([
    ["a huge exponent", '{"v":1,"seq":1e400}', 400],
    ["deep nesting", `${"[".repeat(5000)}${"]".repeat(5000)}`, 400],
    ["a NUL byte", '{"v":1,"seq":1,"\u0000":1}', 400],
    ["a number as the body", "42", 400],
    // Not valid UTF-16: the bytes on the wire are not the ones signed, so the signature fails.
    ["a lone surrogate", '{"v":1,"seq":"\ud800"}', 401],
  ])("signed garbage (%s) is a %i", async (_label, raw, status) => {
    const testEnvironment = testEnv();
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", raw));
    expect(response.status).toBe(status);
    expect(await kvContents(kv)).toEqual({});
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
    ["with darkAfter too short", { telegram: { chatId: "4242" }, hosts: [{ id: "alpha", darkAfterSeconds: 120 }] }, /hosts\.0\.darkAfterSeconds: 120 s would page a live host/],
  ])("WITNESS_CONFIG %s", async (_label, raw, message) => {
    const testEnvironment = { ...testEnv(), WITNESS_CONFIG: raw as object };
    const response = await send(testEnvironment, new Request("https://witness.test/v1/health"));
    expect(response.status).toBe(503);
    const error = (await errorOf(response)).error;
    if (typeof message === "string") expect(error).toBe(message);
    else expect(error).toMatch(message);
  });
});

describe("when KV fails", () => {
  it("a ping that must be written answers 503 saying to retry, never 500", async () => {
    const testEnvironment = testEnv({}, { kv: failingPutKv(kv) });
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", makePingBody()));
    expect(response.status).toBe(503);
    expect((await errorOf(response)).error).toBe("witness could not store this ping, retry later (KV PUT failed: 429 Too Many Requests)");
    expect(await kvContents(kv)).toEqual({});
  });
});

describe("KV write budgeting on the ping route", () => {
  /** Pings every minute at the free plan's defaults (refresh 600 s); returns the x-witness-write of each. */
  async function pingEveryMinute(
    testEnvironment: TestEnv,
    minutes: number,
    bodyAt: (minute: number, at: number) => Partial<PingBody>,
  ): Promise<string[]> {
    const reasons: string[] = [];
    for (let minute = 0; minute < minutes; minute++) {
      const at = T0 + minute * MINUTE;
      const body = makePingBody({ seq: minute + 1, sentAt: at, ...bodyAt(minute, at) });
      const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", body), at);
      expect(response.status).toBe(200);
      reasons.push(response.headers.get("x-witness-write") ?? "(no header)");
    }
    return reasons;
  }

  it("an advancing heartbeat alone writes once per refresh interval", async () => {
    const counting = countingKv(kv);
    const testEnvironment = testEnv({ plan: "free" }, { kv: counting.kv });
    const reasons = await pingEveryMinute(testEnvironment, 21, (_minute, at) => ({ files: filesWith(at - 20 * SECOND) }));
    expect(reasons).toEqual(["first", ...Array<string>(9).fill("none"), "refresh", ...Array<string>(9).fill("none"), "refresh"]);
    expect(counting.puts).toEqual(["ping:alpha", "ping:alpha", "ping:alpha"]);
    expect((await storedRecord())?.receivedAt).toBe(T0 + 20 * MINUTE);
  });

  it("a status change writes at once, and so does the change back", async () => {
    const testEnvironment = testEnv({ plan: "free" });
    const reasons = await pingEveryMinute(testEnvironment, 5, (minute, at) => ({ files: filesWith(at - 20 * SECOND, minute === 2 ? "halted" : "ok") }));
    expect(reasons).toEqual(["first", "none", "changed", "changed", "none"]);
  });

  it.each([
    ["a paused circuit", (at: number): Partial<PingBody> => ({ files: filesWith(at, "ok", { state: "ok", text: '{"paused":true,"reason":"manual"}' }) })],
    ["a corrupt heartbeat", (): Partial<PingBody> => ({ files: { heartbeat: { state: "ok", text: '{"at":' }, circuit: { state: "missing" } } })],
    ["a reboot", (at: number): Partial<PingBody> => ({ agent: { version: "0.1.0", startedAt: at - 5 * SECOND, bootId: "boot-2" }, seq: 1, files: filesWith(at) })],
    ["a clock past the skew limit", (at: number): Partial<PingBody> => ({ files: filesWith(at) }), 6 * SECOND],
  ] as const)("%s writes at once", async (_label, change, skewMs = 0) => {
    const testEnvironment = testEnv({ plan: "free" });
    await pingEveryMinute(testEnvironment, 2, (_minute, at) => ({ files: filesWith(at - 20 * SECOND) }));
    const at = T0 + 2 * MINUTE;
    const body = makePingBody({ seq: 3, sentAt: at + skewMs, ...change(at) });
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", body), at);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-witness-write")).toBe("changed");
    expect((await storedRecord())?.receivedAt).toBe(at);
  });

  it("a clock hovering at the skew limit (latency jitter) does not spend a write per ping", async () => {
    const testEnvironment = testEnv({ plan: "free" });
    // 4.9 s and 5.1 s ahead in turn: the limit is 5 s.
    const reasons: string[] = [];
    for (let minute = 0; minute < 60; minute++) {
      const at = T0 + minute * MINUTE;
      const sentAt = at + (minute % 2 === 0 ? 4_900 : 5_100);
      const body = makePingBody({ seq: minute + 1, sentAt, files: filesWith(sentAt - 20 * SECOND) });
      const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", body), at);
      reasons.push(response.headers.get("x-witness-write") ?? "(no header)");
    }
    const writes = reasons.filter((reason) => reason !== "none");
    // The first write, the first crossing, and the refreshes: not one per crossing.
    expect(writes.length).toBeLessThanOrEqual(2 + 60 / 10);
    // Back well inside the limit (under 4 s) is a change worth a write at once.
    const fixedAt = T0 + 60 * MINUTE;
    const fixed = makePingBody({ seq: 61, sentAt: fixedAt + 200, files: filesWith(fixedAt - 20 * SECOND) });
    const response = await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", fixed), fixedAt);
    expect(response.headers.get("x-witness-write")).toBe("changed");
  });

  it("the heartbeat horizon writes before the stored heartbeat could look stale to the judge", async () => {
    const testEnvironment = testEnv({ plan: "free" });
    // A pipeline that beats every 10 minutes: stored with a heartbeat already 500 s old.
    const beats = (minute: number) => (minute === 0 ? T0 - 500 * SECOND : T0 + 50 * SECOND);
    const reasons = await pingEveryMinute(testEnvironment, 5, (minute) => ({ files: filesWith(beats(minute)) }));
    // Stored age at minute m is 500 + 60 m; notice is interval + KV lag + cron = 180 s; max age 900.
    expect(reasons).toEqual(["first", "none", "none", "none", "heartbeat-horizon"]);
    const stored = await storedRecord();
    expect(stored?.heartbeat).toMatchObject({ state: "ok", at: (T0 + 50 * SECOND) / 1000 });
    // At the write the judge's view was 740 s old: still under 900, with 160 s to spare.
    expect(T0 + 4 * MINUTE - (T0 - 500 * SECOND)).toBe(740 * SECOND);
  });

  it("a heartbeat that does not advance spends no write: the stored one is the truth", async () => {
    const testEnvironment = testEnv({ plan: "free" });
    const reasons = await pingEveryMinute(testEnvironment, 8, () => ({ files: filesWith(T0 - 500 * SECOND) }));
    expect(reasons).toEqual(["first", ...Array<string>(7).fill("none")]);
  });
});

describe("GET /v1/health", () => {
  async function health(testEnvironment: Env, now: number): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await send(testEnvironment, new Request("https://witness.test/v1/health"), now);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it("is 503 and late before the cron ever ran", async () => {
    const result = await health(testEnv(), T0);
    expect(result).toMatchObject({ status: 503, body: { ok: false, late: true, lastTickAt: null } });
  });

  it.each([
    ["fresh, right after a tick", 10 * SECOND, 200, false],
    ["fresh, at the limit (tick record 60 s + 2 cron periods + KV lag = 240 s)", 240 * SECOND, 200, false],
    ["late, 1 s past the limit", 241 * SECOND, 503, true],
  ])("%s", async (_label, sinceTick, status, late) => {
    const testEnvironment = testEnv();
    await tick(testEnvironment, T0);
    const result = await health(testEnvironment, T0 + sinceTick);
    expect(result.status).toBe(status);
    expect(result.body).toMatchObject({ ok: !late, late, lastTickAt: T0, secondsSinceTick: sinceTick / 1000, lateAfterSeconds: 240, hosts: 1 });
  });

  it("answers through the deployed handler on the real clock", async () => {
    const response = await exports.default.fetch("https://witness.test/v1/health");
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ ok: false, late: true, lastTickAt: null, hosts: 2 });
  });
});

describe("GET /v1/status", () => {
  it.each([
    ["no Authorization header", undefined],
    ["a wrong token", "Bearer not-the-token"],
    ["the token without Bearer's space", "Bearer"],
  ])("is 401 with %s", async (_label, authorization) => {
    const testEnvironment = testEnv();
    const response = await send(
      testEnvironment,
      new Request("https://witness.test/v1/status", authorization === undefined ? {} : { headers: { authorization } }),
    );
    expect(response.status).toBe(401);
    expect((await errorOf(response)).error).toBe("send Authorization: Bearer <STATUS_TOKEN>");
  });

  it("shows each host's conditions and the mirrored files with the bearer token", async () => {
    const testEnvironment = testEnv();
    const body = makePingBody({
      sentAt: T0 + 2 * SECOND,
      files: filesWith(T0 - 40 * SECOND, "halted", { state: "ok", text: '{"paused":true,"reason":"drawdown 5%","since":1795389457.66}' }),
    });
    expect((await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", body), T0)).status).toBe(200);
    await tick(testEnvironment, T0 + 10 * SECOND);

    const response = await send(
      testEnvironment,
      new Request("https://witness.test/v1/status", { headers: { authorization: `Bearer ${testEnvironment.STATUS_TOKEN}` } }),
      T0 + 20 * SECOND,
    );
    expect(response.status).toBe(200);
    const status = (await response.json()) as Record<string, unknown> & { hosts: Array<Record<string, unknown>> };
    expect(status).toMatchObject({ ok: true, lastTickAt: T0 + 10 * SECOND, undelivered: [] });
    expect(status.hosts).toEqual([
      expect.objectContaining({
        id: "alpha",
        lastPingAt: T0,
        secondsSincePing: 20,
        heartbeatAgeSeconds: 62,
        skewSeconds: 2,
        agent: expect.objectContaining({ bootId: "boot-1" }),
        heartbeat: expect.objectContaining({ state: "ok", status: "halted", at: (T0 - 40 * SECOND) / 1000 }),
        circuit: expect.objectContaining({ state: "ok", paused: true, reason: "drawdown 5%", since: 1795389457.66 }),
        conditions: {
          failing: expect.objectContaining({ detail: 'status "halted"', openedAt: T0 + 10 * SECOND, pagedAt: T0 + 10 * SECOND }),
          tripped: expect.objectContaining({ detail: "circuit paused: drawdown 5% since 2026-11-22T23:17:37.660Z" }),
        },
      }),
    ]);
  });

  it("still shows the last mirror of a host that has gone dark", async () => {
    const testEnvironment = testEnv();
    await send(testEnvironment, await signedPingRequest(testEnvironment, "alpha", makePingBody()), T0);
    for (let minute = 1; minute <= 6; minute++) await tick(testEnvironment, T0 + minute * MINUTE);
    const response = await send(
      testEnvironment,
      new Request("https://witness.test/v1/status", { headers: { authorization: `Bearer ${testEnvironment.STATUS_TOKEN}` } }),
      T0 + 6 * MINUTE,
    );
    const status = (await response.json()) as { hosts: Array<Record<string, unknown>> };
    expect(status.hosts[0]).toMatchObject({
      lastPingAt: T0,
      secondsSincePing: 360,
      heartbeat: { state: "ok", status: "ok" },
      conditions: { dark: { detail: "no ping for 6 min (dark after 4 min)" } },
    });
  });
});
