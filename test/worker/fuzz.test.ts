// Hostile input against the real ping route and cron inside workerd: property tests
// (fast-check) over random and mutated bodies, headers and signatures, then the named
// attacks one by one. What must hold is what a user or an attacker would see: never a
// 5xx, a 4xx that names the problem, no KV write without a valid signature, every
// valid ping accepted, and pages that show host text escaped.
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_BODY_BYTES, PingBody, SIGNATURE_HEADER, TIMESTAMP_HEADER } from "../../src/protocol.ts";
import { createApp } from "../../src/routes.ts";
import { deriveHostSecret, signPing } from "../../src/signature.ts";
import { makePingBody, MINUTE, ping, sentMessages, T0, type TestEnv, testEnv, tick } from "./helpers.ts";
import { makeUpdate, postUpdate, telegramCalls } from "./telegram-builders.ts";

const HOSTS = [{ id: "alpha" }, { id: "beta" }];
/** Each property runs thousands of requests: allow it more than vitest's 5 s default. */
const PROPERTY_TIMEOUT_MS = 60_000;
const WINDOW_MS = 300_000;
const encoder = new TextEncoder();

// Runs per property; the total is what the issue asks for (at least 10,000 requests).
// Valid pings cost simulated KV round trips (about 10 ms each), so they get fewer runs.
const RUNS = { randomInput: 3_800, mutatedBody: 3_000, signatures: 2_000, wellFormed: 1_000, hostileContents: 200 } as const;
const TOTAL_FUZZ_RUNS = Object.values(RUNS).reduce((sum, runs) => sum + runs, 0);

/** A KV namespace that counts every write (put and delete) before passing it on. */
function writeCountingKv(kv: KVNamespace): { kv: KVNamespace; writes: () => number } {
  let writes = 0;
  const wrapped = new Proxy(kv, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const method = (value as (...args: unknown[]) => unknown).bind(target);
      if (property === "put" || property === "delete") {
        return (...args: unknown[]) => {
          writes++;
          return method(...args);
        };
      }
      return method;
    },
  });
  return { kv: wrapped, writes: () => writes };
}

/** Cloudflare's own words when an account's daily KV write quota is spent. */
const QUOTA_ERROR = "KV put() limit exceeded for the day.";

function quotaFailingKv(kv: KVNamespace, failing: { now: boolean }): KVNamespace {
  return new Proxy(kv, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const method = (value as (...args: unknown[]) => unknown).bind(target);
      if (property === "put") {
        return (...args: unknown[]) => (failing.now ? Promise.reject(new Error(QUOTA_ERROR)) : method(...args));
      }
      return method;
    },
  });
}

interface Harness {
  env: TestEnv;
  writes: () => number;
  secrets: Record<string, string>;
  send: (request: Request) => Promise<Response>;
  now: number;
}

async function harness(): Promise<Harness> {
  const counting = writeCountingKv(env.WITNESS_KV);
  const testEnvironment = testEnv({ hosts: HOSTS }, { kv: counting.kv });
  const secrets: Record<string, string> = {};
  for (const { id } of HOSTS) secrets[id] = await deriveHostSecret(testEnvironment.WITNESS_MASTER_KEY, id);
  const state: Harness = {
    env: testEnvironment,
    writes: counting.writes,
    secrets,
    now: T0,
    send: async (request) => await app.fetch(request, testEnvironment),
  };
  // The app reads the harness's clock, so a property can move time between runs.
  const app = createApp({ now: () => state.now });
  return state;
}

function secretOf(h: Harness, hostId: string): string {
  const secret = h.secrets[hostId];
  if (secret === undefined) throw new Error(`no secret for ${hostId}`);
  return secret;
}

function pingRequest(hostPath: string, body: BodyInit | null, headers: Record<string, string>): Request {
  return new Request(`https://witness.test/v1/ping/${hostPath}`, { method: "POST", headers, body });
}

async function signedHeaders(secret: string, timestamp: string, raw: string): Promise<Record<string, string>> {
  return {
    "content-type": "application/json",
    [TIMESTAMP_HEADER]: timestamp,
    [SIGNATURE_HEADER]: await signPing(secret, timestamp, raw),
  };
}

/** What each 4xx must be about: a reader of the error learns which part of the request to fix. */
const PROBLEM_BY_STATUS: Record<number, RegExp> = {
  400: /^(body is not JSON|invalid ping body)/,
  401: /signature|timestamp|replayed|X-Witness/,
  404: /^(unknown host|no route)/,
  413: /^body larger than \d+ bytes$/,
};

interface Outcome {
  status: number;
  body: { ok: boolean; error?: unknown; field?: unknown; serverTime?: unknown; commands?: unknown };
}

/** Reads a response and checks the contract every answer keeps, whatever the input. */
async function outcomeOf(response: Response): Promise<Outcome> {
  const text = await response.text();
  if (response.status >= 500) throw new Error(`${response.status} for hostile input: ${text.slice(0, 300)}`);
  let body: Outcome["body"];
  try {
    body = JSON.parse(text) as Outcome["body"];
  } catch {
    throw new Error(`HTTP ${response.status} answered with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  if (response.status >= 400) {
    const pattern = PROBLEM_BY_STATUS[response.status];
    if (pattern === undefined) throw new Error(`unexpected status ${response.status}: ${text.slice(0, 200)}`);
    if (body.ok !== false || typeof body.error !== "string" || body.error.trim() === "") {
      throw new Error(`${response.status} without {ok:false, error}: ${text.slice(0, 200)}`);
    }
    if (!pattern.test(body.error)) throw new Error(`${response.status} error does not name the problem: ${body.error}`);
    if (body.field !== undefined && (typeof body.field !== "string" || body.field === "")) {
      throw new Error(`field must be a non-empty string when present: ${text.slice(0, 200)}`);
    }
  } else if (response.status !== 200) {
    throw new Error(`unexpected status ${response.status}: ${text.slice(0, 200)}`);
  }
  return { status: response.status, body };
}

// ---- arbitraries ----

const hexString = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEF"), minLength: min, maxLength: max });

/** Header values a client can actually send: printable ASCII (Headers refuses CR, LF, NUL). */
const headerText = fc.string({ maxLength: 100 });

const randomTimestamp = fc.oneof(
  fc.integer({ min: T0 - WINDOW_MS, max: T0 + WINDOW_MS }).map(String),
  fc.bigInt({ min: 0n, max: 10n ** 20n }).map(String),
  fc.constantFrom("", "0", "-1", "1e12", "NaN", "Infinity", " 1795389457660", "1795389457660.5", "0x1A2B", "1 2"),
  headerText,
);

const randomSignature = fc.oneof(hexString(64, 64), hexString(0, 130), headerText, fc.constantFrom("", "sha256=" + "a".repeat(64)));

const randomHostPath = fc.oneof(
  fc.constantFrom("alpha", "beta", "ALPHA", "alpha/", "alpha%2F..", "..", "%00", "%E0%A4%A", "a".repeat(300)),
  fc.string({ maxLength: 80, unit: "binary" }).map(encodeURIComponent),
);

const randomBody: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  fc.string({ maxLength: 3000, unit: "binary" }),
  fc.uint8Array({ maxLength: 4000 }),
  fc.json({ maxDepth: 6 }),
  fc.constantFrom("", "{}", "[]", "null", "true", "{\"v\":1}", "\uFEFF{}", "{".repeat(5000)),
);

interface RandomRequest {
  hostPath: string;
  body: string | Uint8Array;
  timestamp: string | null;
  signature: string | null;
  contentType: string | null;
}

const randomRequest: fc.Arbitrary<RandomRequest> = fc.record({
  hostPath: randomHostPath,
  body: randomBody,
  timestamp: fc.option(randomTimestamp, { nil: null }),
  signature: fc.option(randomSignature, { nil: null }),
  contentType: fc.option(fc.oneof(fc.constantFrom("application/json", "text/plain", "multipart/form-data; boundary=x"), headerText), { nil: null }),
});

/** Every path to a value inside a valid ping body, for dropping and retyping fields. */
function leafPaths(value: unknown, prefix: string[] = []): string[][] {
  if (typeof value !== "object" || value === null) return [prefix];
  const paths: string[][] = prefix.length > 0 ? [prefix] : [];
  for (const [key, child] of Object.entries(value)) paths.push(...leafPaths(child, [...prefix, key]));
  return paths;
}

const RAW = "\u0000raw\u0000";
/** Values spliced in as raw JSON text (some are not JSON at all, some overflow doubles). */
const rawNumberTexts = ["1e400", "-1e400", "NaN", "Infinity", "-0", "9007199254740993", "1.0000000000000002", "0x10", "01", "1_000", "-1"];

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(-1, -0.5, 0.5, Number.MAX_SAFE_INTEGER + 2, 1e308, -1e308, 8_640_000_000_000_001, "NaN", "Infinity", "-1", "1e999", "", null, true, [], {}),
  fc.constantFrom(...rawNumberTexts).map((text) => `${RAW}${text}`),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.integer({ min: 1, max: 40_000 }).map((length) => "é".repeat(length)),
  fc.integer({ min: 100, max: 12_000 }).map((depth) => `${RAW}${"[".repeat(depth)}${"]".repeat(depth)}`),
  fc.jsonValue({ maxDepth: 4 }),
);

type Mutation =
  | { kind: "drop"; path: string[] }
  | { kind: "retype"; path: string[]; value: unknown }
  | { kind: "extraKey"; path: string[]; key: string; value: unknown }
  | { kind: "duplicateKey"; key: string; value: unknown }
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; text: string }
  | { kind: "flipByte"; at: number };

function applyMutation(base: PingBody, mutation: Mutation): string {
  const copy = structuredClone(base) as unknown as Record<string, unknown>;
  const parentOf = (path: string[]): Record<string, unknown> | null => {
    let node: unknown = copy;
    for (const key of path.slice(0, -1)) {
      if (typeof node !== "object" || node === null) return null;
      node = (node as Record<string, unknown>)[key];
    }
    return typeof node === "object" && node !== null ? (node as Record<string, unknown>) : null;
  };
  const raw = JSON.stringify(base);
  const spliceRaw = (text: string) => text.replace(/"\\u0000raw\\u0000([^"]*)"/g, (_match, inner: string) => JSON.parse(`"${inner}"`) as string);
  switch (mutation.kind) {
    case "drop": {
      const parent = parentOf(mutation.path);
      const key = mutation.path.at(-1);
      if (parent !== null && key !== undefined) delete parent[key];
      return JSON.stringify(copy);
    }
    case "retype": {
      const parent = parentOf(mutation.path);
      const key = mutation.path.at(-1);
      if (parent !== null && key !== undefined) parent[key] = mutation.value;
      return spliceRaw(JSON.stringify(copy));
    }
    case "extraKey": {
      const target = mutation.path.length === 0 ? copy : parentOf([...mutation.path, "_"]);
      if (target !== null) Object.defineProperty(target, mutation.key, { value: mutation.value, enumerable: true, configurable: true, writable: true });
      return spliceRaw(JSON.stringify(copy));
    }
    case "duplicateKey":
      // JSON.parse keeps the last of two equal keys; the signature covers both.
      return spliceRaw(`${raw.slice(0, -1)},${JSON.stringify(mutation.key)}:${JSON.stringify(mutation.value)}}`);
    case "truncate":
      return raw.slice(0, mutation.at % (raw.length + 1));
    case "insert": {
      const at = mutation.at % (raw.length + 1);
      return raw.slice(0, at) + mutation.text + raw.slice(at);
    }
    case "flipByte": {
      const at = mutation.at % raw.length;
      return raw.slice(0, at) + String.fromCharCode(raw.charCodeAt(at) ^ 0x20) + raw.slice(at + 1);
    }
  }
}

const BASE_PATHS = leafPaths(makePingBody({ lastPushOutage: { since: T0, until: T0 + 1, failures: 2, lastError: "x" } }));
const pathArb = fc.constantFrom(...BASE_PATHS);
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("drop" as const), path: pathArb }),
  fc.record({ kind: fc.constant("retype" as const), path: pathArb, value: hostileValue }),
  fc.record({ kind: fc.constant("extraKey" as const), path: fc.oneof(fc.constant([] as string[]), pathArb), key: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom("__proto__", "constructor", "v", "seq")), value: hostileValue }),
  fc.record({ kind: fc.constant("duplicateKey" as const), key: fc.constantFrom("v", "seq", "sentAt", "agent", "files", "lastPushOutage"), value: hostileValue }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: fc.oneof(fc.string({ unit: "binary", maxLength: 8 }), fc.constantFrom(",", "}", "]", "\"", "\\", "\u0000", "\uD800")) }),
  fc.record({ kind: fc.constant("flipByte" as const), at: fc.nat() }),
);

/** A header timestamp, mostly inside the replay window around the Worker's clock. */
function timestampArb(offsets = fc.integer({ min: -WINDOW_MS, max: WINDOW_MS })) {
  return fc.oneof(
    { weight: 6, arbitrary: offsets.map((offset) => ({ offset, inside: true })) },
    { weight: 1, arbitrary: fc.integer({ min: WINDOW_MS + 1, max: 10 * 365 * 86_400_000 }).map((offset) => ({ offset, inside: false })) },
    { weight: 1, arbitrary: fc.integer({ min: WINDOW_MS + 1, max: T0 }).map((offset) => ({ offset: -offset, inside: false })) },
  );
}

/** A ping body an agent could send: every field valid, the file contents anything at all. */
const fileText = fc.oneof(
  fc.record({
    at: fc.oneof(fc.double({ min: 1, max: 4e9, noNaN: true }), fc.constantFrom(1e308, 5e-324, 1)),
    status: fc.oneof(fc.constantFrom("ok", "error", "<b>x</b>", "&amp;"), fc.string({ unit: "binary", maxLength: 250 })),
    extra: fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
  }).map(({ at, status, extra }) => JSON.stringify({ ...extra, at, status })),
  fc.record({
    paused: fc.boolean(),
    reason: fc.option(fc.string({ unit: "binary", maxLength: 500 }), { nil: undefined }),
    since: fc.option(fc.oneof(fc.double({ min: 1, max: 4e9, noNaN: true }), fc.constantFrom(1e13, 1e308, 8.64e12, 8.64e12 + 1)), { nil: undefined }),
  }).map((content) => JSON.stringify(content)),
  fc.string({ unit: "binary", maxLength: 2000 }),
  fc.json({ maxDepth: 4 }),
  fc.constantFrom("", " ", "{", "{\"at\": 1", "null", "[]", "{\"paused\": \"yes\"}"),
);

const fileReport = fc.oneof(
  { weight: 4, arbitrary: fc.record({ state: fc.constant("ok" as const), size: fc.nat(), mtime: fc.nat({ max: 8_640_000_000_000 }), text: fileText }) },
  { weight: 1, arbitrary: fc.record({ state: fc.constantFrom("missing" as const, "empty" as const, "too_large" as const), size: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ state: fc.constant("unreadable" as const), error: fc.string({ unit: "binary", maxLength: 150 }) }) },
);

const wellFormedParts = fc.record({
  version: fc.string({ unit: "binary", minLength: 1, maxLength: 20 }),
  kind: fc.constantFrom("node" as const, "shell" as const),
  outage: fc.option(
    fc.record({ since: fc.nat({ max: T0 }), failures: fc.integer({ min: 1, max: 1e6 }), lastError: fc.string({ unit: "binary", maxLength: 100 }) }),
    { nil: null },
  ),
  heartbeat: fileReport,
  circuit: fileReport,
  sentAtOffset: fc.integer({ min: -86_400_000, max: 86_400_000 }),
});

function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

describe(`fuzzed pings against the real route (${TOTAL_FUZZ_RUNS} runs in all)`, () => {
  it(`random bytes, strings, hosts, headers and signatures: always a 4xx naming the problem, never a write (${RUNS.randomInput} runs)`, async () => {
    const h = await harness();
    await fc.assert(
      fc.asyncProperty(randomRequest, async (input) => {
        const headers: Record<string, string> = {};
        if (input.timestamp !== null) headers[TIMESTAMP_HEADER] = input.timestamp;
        if (input.signature !== null) headers[SIGNATURE_HEADER] = input.signature;
        if (input.contentType !== null) headers["content-type"] = input.contentType;
        const writesBefore = h.writes();
        const { status } = await outcomeOf(await h.send(pingRequest(input.hostPath, input.body, headers)));
        expect(status).toBeGreaterThanOrEqual(400);
        expect(h.writes()).toBe(writesBefore);
      }),
      { numRuns: RUNS.randomInput },
    );
  }, PROPERTY_TIMEOUT_MS);

  it(`mutated valid bodies with a valid signature: 200 only for a body that parses, else 400/401/413, never a 5xx (${RUNS.mutatedBody} runs)`, async () => {
    const h = await harness();
    let seq = 0;
    const statuses = new Map<number, number>();
    // The route remembers every validly signed request, before parsing it: the same
    // bytes and timestamp a second time are a replay, whatever the body says.
    const sent = new Set<string>();
    await fc.assert(
      fc.asyncProperty(mutationArb, timestampArb(), fc.constantFrom("alpha", "beta"), async (mutation, timestamp, hostId) => {
        seq++;
        const sentAt = T0 + timestamp.offset;
        // Over HTTP a client sends bytes; a lone surrogate in a JS string would reach the
        // route as WTF-8 in-process, so send what a real client could: well-formed UTF-8.
        const raw = new TextDecoder().decode(encoder.encode(applyMutation(makePingBody({ seq, sentAt }), mutation)));
        const stamp = String(sentAt);
        const writesBefore = h.writes();
        const { status, body } = await outcomeOf(await h.send(pingRequest(hostId, raw, await signedHeaders(secretOf(h, hostId), stamp, raw))));
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        const repeated = sent.has(`${stamp}.${raw}`);
        sent.add(`${stamp}.${raw}`);

        if (utf8Length(raw) > MAX_BODY_BYTES) {
          expect(status).toBe(413);
        } else if (!timestamp.inside) {
          expect(status).toBe(401);
          expect(body.field).toBe(TIMESTAMP_HEADER);
        } else if (repeated) {
          expect(status).toBe(401);
          expect(body.error).toMatch(/^replayed ping/);
        } else {
          let parses = false;
          try {
            parses = PingBody.safeParse(JSON.parse(raw)).success;
          } catch {
            parses = false;
          }
          if (parses) {
            // A body that parses is accepted, unless it replays a newer one already stored.
            if (status === 401) expect(body.error).toMatch(/^replayed ping/);
            else expect(status).toBe(200);
          } else {
            expect(status).toBe(400);
          }
        }
        if (status !== 200) expect(h.writes()).toBe(writesBefore);
      }),
      { numRuns: RUNS.mutatedBody },
    );
    // The mutations must reach every branch, or the property proves little.
    expect([...statuses.keys()].sort()).toEqual(expect.arrayContaining([200, 400, 401, 413]));
  }, PROPERTY_TIMEOUT_MS);

  it(`mutated signatures over a valid body: only the right signature (any hex case) is accepted (${RUNS.signatures} runs)`, async () => {
    const h = await harness();
    let seq = 0;
    const kinds = ["valid", "uppercase", "truncated", "extended", "flipped", "wrongHost", "otherTimestamp", "otherBody", "empty", "nonHex", "prefixed", "padded"] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...kinds),
        fc.integer({ min: -WINDOW_MS + 1000, max: WINDOW_MS - 1000 }),
        fc.nat({ max: 63 }),
        async (kind, offset, position) => {
          seq++;
          const sentAt = T0 + offset;
          const raw = JSON.stringify(makePingBody({ seq, sentAt }));
          const stamp = String(sentAt);
          const good = await signPing(secretOf(h, "alpha"), stamp, raw);
          const flip = (hex: string) => hex.slice(0, position) + ((Number.parseInt(hex[position] ?? "0", 16) + 1) % 16).toString(16) + hex.slice(position + 1);
          const signature: Record<(typeof kinds)[number], () => Promise<string>> = {
            valid: async () => good,
            uppercase: async () => good.toUpperCase(),
            truncated: async () => good.slice(0, position),
            extended: async () => `${good}0`,
            flipped: async () => flip(good),
            wrongHost: async () => await signPing(secretOf(h, "beta"), stamp, raw),
            otherTimestamp: async () => await signPing(secretOf(h, "alpha"), String(sentAt + 1), raw),
            otherBody: async () => await signPing(secretOf(h, "alpha"), stamp, `${raw} `),
            empty: async () => "",
            nonHex: async () => `${good.slice(0, 63)}g`,
            prefixed: async () => `sha256=${good}`,
            // Headers trim surrounding whitespace, so a padded good signature is still good.
            padded: async () => ` ${good}\t`,
          };
          const writesBefore = h.writes();
          const request = pingRequest("alpha", raw, { "content-type": "application/json", [TIMESTAMP_HEADER]: stamp, [SIGNATURE_HEADER]: await signature[kind]() });
          const { status, body } = await outcomeOf(await h.send(request));
          if (kind === "valid" || kind === "uppercase" || kind === "padded") {
            expect(status).toBe(200);
          } else {
            expect(status).toBe(401);
            expect(body.field).toBe(SIGNATURE_HEADER);
            expect(h.writes()).toBe(writesBefore);
          }
        },
      ),
      { numRuns: RUNS.signatures },
    );
  }, PROPERTY_TIMEOUT_MS);

  it(`any well-formed, validly signed ping is accepted with 200, whatever its files say (${RUNS.wellFormed} runs)`, async () => {
    const h = await harness();
    let seq = 0;
    await fc.assert(
      fc.asyncProperty(wellFormedParts, fc.integer({ min: -WINDOW_MS, max: WINDOW_MS }), fc.constantFrom("alpha", "beta"), async (parts, offset, hostId) => {
        seq++;
        const stamp = T0 + offset;
        const body: PingBody = {
          v: 1,
          seq,
          sentAt: Math.max(0, stamp + parts.sentAtOffset),
          agent: { version: parts.version, startedAt: T0 - 3_600_000, bootId: "boot-fuzz", kind: parts.kind },
          lastPushOutage: parts.outage,
          files: { heartbeat: parts.heartbeat, circuit: parts.circuit },
        };
        const raw = JSON.stringify(body);
        // The agents report a file as too_large rather than send more than the limit.
        fc.pre(utf8Length(raw) <= MAX_BODY_BYTES);
        expect(PingBody.safeParse(body).success).toBe(true);
        const { status, body: answer } = await outcomeOf(await h.send(pingRequest(hostId, raw, await signedHeaders(secretOf(h, hostId), String(stamp), raw))));
        expect(status, JSON.stringify(answer)).toBe(200);
        expect(answer).toEqual({ ok: true, serverTime: T0, commands: [] });
      }),
      { numRuns: RUNS.wellFormed },
    );
  }, PROPERTY_TIMEOUT_MS);

  it(`hostile file contents never break the cron, and every page shows host text escaped (${RUNS.hostileContents} runs)`, async () => {
    const h = await harness();
    let seq = 0;
    await fc.assert(
      fc.asyncProperty(fileReport, fileReport, async (heartbeat, circuit) => {
        seq++;
        h.now = T0 + seq * 2 * MINUTE;
        const body = makePingBody({ seq, sentAt: h.now, files: { heartbeat, circuit } });
        const raw = JSON.stringify(body);
        fc.pre(utf8Length(raw) <= MAX_BODY_BYTES);
        const { status } = await outcomeOf(await h.send(pingRequest("alpha", raw, await signedHeaders(secretOf(h, "alpha"), String(h.now), raw))));
        expect(status).toBe(200);
        const summary = await tick(h.env, h.now + 10_000);
        expect(summary.outcome).toBe("judged");
      }),
      { numRuns: RUNS.hostileContents },
    );
    const messages = await sentMessages(h.env);
    expect(messages.length).toBeGreaterThan(10);
    for (const text of messages) expectOnlyOurMarkup(text);
  }, PROPERTY_TIMEOUT_MS);
});

// ---- the named attacks ----

/** Telegram HTML the Worker itself writes; anything else that looks like markup came from a host. */
const OUR_TAGS = /<\/?(b|i|code|pre)>/g;

function expectOnlyOurMarkup(text: string): void {
  const stripped = text.replace(OUR_TAGS, "");
  expect(stripped, `raw "<" or ">" from host text in: ${text}`).not.toMatch(/[<>]/);
  expect(stripped.replace(/&(amp|lt|gt|quot);/g, ""), `bare "&" in: ${text}`).not.toContain("&");
}

async function errorOf(response: Response): Promise<{ ok: boolean; error: string; field?: string }> {
  expect(response.headers.get("content-type") ?? "").toContain("application/json");
  return (await response.json()) as { ok: boolean; error: string; field?: string };
}

describe("named attacks", () => {
  it("a replay of an accepted request is refused and writes nothing", async () => {
    const h = await harness();
    const raw = JSON.stringify(makePingBody({ seq: 7 }));
    const headers = await signedHeaders(secretOf(h, "alpha"), String(T0), raw);
    const first = await h.send(pingRequest("alpha", raw, headers));
    expect(first.status).toBe(200);
    expect(first.headers.get("x-witness-write")).toBe("first");
    const writes = h.writes();
    h.now = T0 + 30_000;
    const replay = await h.send(pingRequest("alpha", raw, headers));
    expect(replay.status).toBe(401);
    expect((await errorOf(replay)).error).toMatch(/^replayed ping/);
    expect(h.writes()).toBe(writes);
  });

  it("a replay of an older accepted ping (lower seq) is refused once a newer one is stored", async () => {
    const h = await harness();
    const old = JSON.stringify(makePingBody({ seq: 1 }));
    const oldHeaders = await signedHeaders(secretOf(h, "alpha"), String(T0), old);
    expect((await h.send(pingRequest("alpha", old, oldHeaders))).status).toBe(200);
    const newer = JSON.stringify(makePingBody({ seq: 2, sentAt: T0 + 1000 }));
    expect((await h.send(pingRequest("alpha", newer, await signedHeaders(secretOf(h, "alpha"), String(T0 + 1000), newer)))).status).toBe(200);
    const writes = h.writes();
    const replay = await h.send(pingRequest("alpha", old, oldHeaders));
    expect(replay.status).toBe(401);
    expect((await errorOf(replay)).error).toMatch(/replayed ping/);
    expect(h.writes()).toBe(writes);
  });

  it("an expired or far-future timestamp is 401 naming the header and the clock offset", async () => {
    const h = await harness();
    for (const [offset, words] of [
      [-WINDOW_MS - 1000, "behind"],
      [WINDOW_MS + 1000, "ahead of"],
      [-86_400_000, "behind"],
    ] as const) {
      const raw = JSON.stringify(makePingBody({ sentAt: T0 + offset }));
      const response = await h.send(pingRequest("alpha", raw, await signedHeaders(secretOf(h, "alpha"), String(T0 + offset), raw)));
      expect(response.status).toBe(401);
      const error = await errorOf(response);
      expect(error.field).toBe(TIMESTAMP_HEADER);
      expect(error.error).toContain(words);
    }
    expect(h.writes()).toBe(0);
  });

  it("a ping signed with another host's secret is 401 bad signature", async () => {
    const h = await harness();
    const raw = JSON.stringify(makePingBody());
    const response = await h.send(pingRequest("alpha", raw, await signedHeaders(secretOf(h, "beta"), String(T0), raw)));
    expect(response.status).toBe(401);
    expect((await errorOf(response)).error).toMatch(/^bad signature/);
    expect(h.writes()).toBe(0);
  });

  it("oversize bodies are 413, with a content-length, without one, and validly signed", async () => {
    const h = await harness();
    const huge = JSON.stringify(makePingBody({ agent: { version: "x", startedAt: T0, bootId: "b".repeat(MAX_BODY_BYTES) } }));
    const signed = await signedHeaders(secretOf(h, "alpha"), String(T0), huge);
    const withLength = await h.send(pingRequest("alpha", huge, { ...signed, "content-length": String(utf8Length(huge)) }));
    expect(withLength.status).toBe(413);
    expect((await errorOf(withLength)).error).toBe(`body larger than ${MAX_BODY_BYTES} bytes`);

    const bytes = encoder.encode(huge);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < bytes.length; at += 1000) controller.enqueue(bytes.slice(at, at + 1000));
        controller.close();
      },
    });
    const chunked = pingRequest("alpha", stream, signed);
    expect(chunked.headers.get("content-length")).toBeNull();
    const withoutLength = await h.send(chunked);
    expect(withoutLength.status).toBe(413);
    expect((await errorOf(withoutLength)).error).toBe(`body larger than ${MAX_BODY_BYTES} bytes`);
    expect(h.writes()).toBe(0);
  });

  it("JSON nested 10,000 deep is a 400 naming the shape, as the body, inside a field and inside heartbeat.json", async () => {
    const h = await harness();
    const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
    const deepObject = (depth: number) => '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
    const base = JSON.stringify(makePingBody());
    const cases: Array<{ raw: string; status: number; error: RegExp }> = [
      { raw: deep(10_000), status: 400, error: /^invalid ping body: .*object/ },
      { raw: deepObject(5_000), status: 400, error: /^invalid ping body/ },
      { raw: `${base.slice(0, -1)},"deep":${deep(10_000)}}`, status: 400, error: /^invalid ping body.*deep/ },
      { raw: `${base.slice(0, -1)},"deep":${"[".repeat(10_000)}}`, status: 400, error: /^body is not JSON$/ },
    ];
    let seq = 10;
    for (const { raw, status, error } of cases) {
      const response = await h.send(pingRequest("alpha", raw, await signedHeaders(secretOf(h, "alpha"), String(T0), raw)));
      expect(response.status, raw.slice(0, 80)).toBe(status);
      expect((await errorOf(response)).error).toMatch(error);
    }
    expect(h.writes()).toBe(0);

    // Inside heartbeat.json the nesting is capped by the 8 KiB file limit: past it is a
    // 400 at the field; just under it the ping is accepted and the heartbeat still judged.
    for (const [depth, expected] of [
      [10_000, 400],
      [4_000, 200],
    ] as const) {
      seq++;
      const text = `{"at":${T0 / 1000 - 30},"status":"ok","deep":${deep(depth)}}`;
      const body = makePingBody({ seq, files: { heartbeat: { state: "ok", text }, circuit: { state: "missing" } } });
      const response = await ping(h.env, "alpha", body, T0);
      expect(response.status).toBe(expected);
      if (expected === 400) expect(await errorOf(response)).toMatchObject({ field: "files.heartbeat.text" });
    }
    const summary = await tick(h.env, T0 + 10_000);
    expect(summary.outcome).toBe("judged");
  });

  it("HTML and Telegram markup in status, extras, circuit reason and corrupt files reach the phone escaped", async () => {
    const h = await harness();
    const hostile = '<b>bold</b> </code> &amp; <a href="https://evil.example/">click</a> <pre>';
    const heartbeatText = JSON.stringify({
      at: T0 / 1000 - 30,
      status: hostile,
      "<i>key</i>": "</b><code>",
      note: "&lt;not an entity&gt; & <tg-spoiler>x</tg-spoiler>",
    });
    const circuitText = JSON.stringify({ paused: true, reason: `watchdog says ${hostile}`, since: T0 / 1000 - 60 });
    let seq = 1;
    const send = async (files: PingBody["files"], at: number) => {
      const response = await ping(h.env, "alpha", makePingBody({ seq: seq++, sentAt: at, files }), at);
      expect(response.status).toBe(200);
    };
    await send({ heartbeat: { state: "ok", text: heartbeatText }, circuit: { state: "ok", text: circuitText } }, T0);
    for (let minute = 0; minute <= 3; minute++) await tick(h.env, T0 + minute * MINUTE + 10_000);
    // A corrupt heartbeat whose text is markup, and an unreadable one with a markup error.
    await send({ heartbeat: { state: "ok", text: '<b>half a file</b><a href="x">' }, circuit: { state: "missing" } }, T0 + 4 * MINUTE);
    for (let minute = 4; minute <= 6; minute++) await tick(h.env, T0 + minute * MINUTE + 10_000);
    await send({ heartbeat: { state: "ok", text: heartbeatText }, circuit: { state: "unreadable", error: "EACCES <b>denied</b> & </code>" } }, T0 + 7 * MINUTE);
    for (let minute = 7; minute <= 9; minute++) await tick(h.env, T0 + minute * MINUTE + 10_000);

    const messages = await sentMessages(h.env);
    const all = messages.join("\n");
    expect(all).toContain("FAILING");
    expect(all).toContain("CIRCUIT TRIPPED");
    expect(all).toContain("HEARTBEAT UNREADABLE");
    expect(all).toContain("CIRCUIT UNREADABLE");
    expect(all).toContain("&lt;b&gt;bold&lt;/b&gt; &lt;/code&gt; &amp;amp; &lt;a href=&quot;https://evil.example/&quot;&gt;click&lt;/a&gt;");
    expect(all).toContain("&lt;i&gt;key&lt;/i&gt;");
    expect(all).toContain("watchdog says &lt;b&gt;bold");
    expect(all).toContain("&lt;b&gt;half a file");
    expect(all).toContain("EACCES &lt;b&gt;denied&lt;/b&gt; &amp; &lt;/code&gt;");
    for (const text of messages) expectOnlyOurMarkup(text);
  });

  it("a circuit 'since' too large for a date still pages the trip instead of breaking the cron", async () => {
    const h = await harness();
    const circuitText = JSON.stringify({ paused: true, reason: "manual", since: 1e13 });
    const body = makePingBody({ files: { heartbeat: makePingBody().files.heartbeat, circuit: { state: "ok", text: circuitText } } });
    expect((await ping(h.env, "alpha", body)).status).toBe(200);
    for (let minute = 0; minute <= 2; minute++) expect((await tick(h.env, T0 + minute * MINUTE + 10_000)).outcome).toBe("judged");
    expect((await sentMessages(h.env)).join("\n")).toContain("CIRCUIT TRIPPED: circuit paused: manual since 10000000000000 (not a Unix time)");

    // The phone's /status command renders the same circuit: a 200 with the raw value, not a 500 Telegram would redeliver.
    const response = await postUpdate(h.env, makeUpdate({ text: "/status alpha" }), { now: T0 + 3 * MINUTE });
    expect(response.status).toBe(200);
    const replies = (await telegramCalls(h.env)).filter((call) => call.method === "sendMessage").map((call) => String(call.payload.text));
    expect(replies.at(-1)).toContain("PAUSED: manual since 10000000000000");
  });
});

describe("Workers KV out of write quota", () => {
  it("the cron says 'degraded' once over an hour of ticks and never pages a live host dark", async () => {
    const failing = { now: false };
    const testEnvironment = testEnv({ hosts: HOSTS }, { kv: quotaFailingKv(env.WITNESS_KV, failing) });
    const start = T0 + 400 * 86_400_000; // clear of other tests' times in this isolate
    let seq = 0;
    const pingBoth = async (at: number, expected: number) => {
      for (const { id } of HOSTS) {
        const response = await ping(testEnvironment, id, makePingBody({ seq: ++seq, sentAt: at }), at);
        expect(response.status).toBe(expected);
        if (expected !== 200) expect((await errorOf(response)).error).toMatch(/retry later/);
      }
    };
    await pingBoth(start, 200);
    await tick(testEnvironment, start + 10_000);
    expect(await sentMessages(testEnvironment)).toEqual([expect.stringContaining("is watching 2 host(s)")]);

    // The quota runs out: the hosts keep pinging (their writes fail), the cron keeps ticking.
    failing.now = true;
    const outcomes: string[] = [];
    for (let minute = 1; minute <= 55; minute++) {
      const at = start + minute * MINUTE;
      await pingBoth(at, 503);
      outcomes.push((await tick(testEnvironment, at + 10_000)).outcome);
    }
    let messages = await sentMessages(testEnvironment);
    const degraded = messages.filter((text) => text.includes("degraded"));
    expect(degraded).toHaveLength(1);
    expect(degraded[0]).toContain(QUOTA_ERROR);
    expect(degraded[0]).toContain('no "dark" pages will be sent');
    expect(messages.filter((text) => text.includes("DARK"))).toEqual([]);
    expect(outcomes).toContain("degraded");

    // The quota resets: pings are stored again and no host is paged dark for the gap.
    failing.now = false;
    for (let minute = 56; minute <= 62; minute++) {
      const at = start + minute * MINUTE;
      await pingBoth(at, 200);
      expect((await tick(testEnvironment, at + 10_000)).outcome).toBe("judged");
    }
    messages = await sentMessages(testEnvironment);
    expect(messages.filter((text) => text.includes("DARK"))).toEqual([]);
    expect(messages.filter((text) => text.includes("degraded"))).toHaveLength(1);
  }, PROPERTY_TIMEOUT_MS);
});
