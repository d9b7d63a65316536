// Builders for the workerd tests: full valid defaults, overridden per test.
import { env } from "cloudflare:workers";
import { inject } from "vitest";
import { type Config, parseConfig } from "../../src/config.ts";
import type { PingBody } from "../../src/protocol.ts";
import { type PingRecord, recordFromPing } from "../../src/judge/records.ts";
import { createApp } from "../../src/edge/routes.ts";
import { deriveHostSecret, signPing } from "../../src/edge/signature.ts";

export const T0 = Date.UTC(2026, 10, 24, 14, 0, 0); // a Tuesday, 09:00 in New York

let tokenCounter = 0;

export interface TestConfigInput {
  plan?: "free" | "paid";
  timing?: Record<string, unknown>;
  alerts?: Record<string, unknown>;
  defaults?: Record<string, unknown>;
  hosts?: Array<Record<string, unknown>>;
  telegram?: Record<string, unknown>;
}

/** The raw WITNESS_CONFIG a test runs with: small defaults under the given settings. */
export function rawTestConfig(config: TestConfigInput = {}): Record<string, unknown> {
  return {
    plan: config.plan ?? "paid",
    telegram: { chatId: "4242", baseUrl: inject("telegramUrl"), ...config.telegram },
    alerts: { repeatMinutes: 30, timezone: "UTC", digestAt: null, ...config.alerts },
    ...(config.timing ? { timing: config.timing } : {}),
    ...(config.defaults ? { defaults: config.defaults } : {}),
    hosts: config.hosts ?? [{ id: "alpha" }],
  };
}

/** The parsed Config for the same settings, for the pure judge. */
export function testConfig(config: TestConfigInput = {}): Config {
  return parseConfig(rawTestConfig(config));
}

export type TestEnv = Env & { botToken: string; monitorRequests: { count: number; failWith: string | null } };

/**
 * The monitor binding, isolated per test (its own object behind the one name the
 * Worker uses) and counted, so a test can prove a rejected request cost no Durable
 * Object request, or make the object unreachable as an exhausted quota does.
 */
function isolatedMonitor(requests: TestEnv["monitorRequests"]): Env["MONITOR"] {
  const suffix = crypto.randomUUID();
  return new Proxy(env.MONITOR, {
    get(target, property) {
      if (property === "getByName") {
        return (name: string) => {
          requests.count++;
          const stub = target.getByName(`${name}/${suffix}`);
          if (requests.failWith === null) return stub;
          const error = requests.failWith;
          return new Proxy(stub, { get: () => () => Promise.reject(new Error(error)) });
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

let defaultKv: KVNamespace | null = null;

/**
 * Gives this test its own slice of the simulated namespace (every key behind a unique
 * prefix) and makes it testEnv's default. reset() between tests has been seen to let a
 * long test's last record leak into the next one under load; a prefix cannot leak.
 */
export function useIsolatedKv(): KVNamespace {
  defaultKv = prefixedKv(env.WITNESS_KV, `test-${crypto.randomUUID()}/`);
  return defaultKv;
}

/** The real namespace with every key behind `prefix` (list() hides the prefix again). */
export function prefixedKv(kv: KVNamespace, prefix: string): KVNamespace {
  const withPrefix = (key: unknown): unknown => (Array.isArray(key) ? key.map((name) => `${prefix}${String(name)}`) : `${prefix}${String(key)}`);
  return new Proxy(kv, {
    get(target, property) {
      const method = Reflect.get(target, property, target) as unknown;
      if (typeof method !== "function") return method;
      const call = (...args: unknown[]) => (method as (...inner: unknown[]) => unknown).apply(target, args);
      if (property === "get") {
        return async (key: string | string[], ...rest: unknown[]) => {
          const value = await call(withPrefix(key), ...rest);
          if (!Array.isArray(key)) return value;
          const byPrefixed = value as Map<string, unknown>;
          return new Map(key.map((name) => [name, byPrefixed.get(`${prefix}${name}`) ?? null]));
        };
      }
      if (property === "put" || property === "delete" || property === "getWithMetadata") {
        return (key: string, ...rest: unknown[]) => call(withPrefix(key), ...rest);
      }
      if (property === "list") {
        return async (options: KVNamespaceListOptions = {}) => {
          const result = (await call({ ...options, prefix: `${prefix}${options.prefix ?? ""}` })) as KVNamespaceListResult<unknown>;
          return { ...result, keys: result.keys.map((entry) => ({ ...entry, name: entry.name.slice(prefix.length) })) };
        };
      }
      return call;
    },
  });
}

/**
 * An Env for one test: its own bot token (so the Telegram stand-in keeps its messages
 * apart) and its own master key (so identical pings in two tests are not each other's
 * replays), the stand-in's address, and the given config on top of small defaults.
 * `rawConfig` replaces WITNESS_CONFIG outright (for invalid configurations).
 */
export function testEnv(config: TestConfigInput = {}, options: { kv?: KVNamespace; rawConfig?: unknown } = {}): TestEnv {
  const botToken = `${++tokenCounter}${Date.now()}:test-${crypto.randomUUID()}`;
  const monitorRequests = { count: 0, failWith: null };
  return {
    ...env,
    MONITOR: isolatedMonitor(monitorRequests),
    monitorRequests,
    WITNESS_KV: options.kv ?? defaultKv ?? env.WITNESS_KV,
    WITNESS_MASTER_KEY: `master-${crypto.randomUUID()}`,
    TELEGRAM_BOT_TOKEN: botToken,
    botToken,
    WITNESS_CONFIG: (options.rawConfig ?? rawTestConfig(config)) as object,
  };
}

/**
 * A ping record as the ping route would store it: received at `receivedAt`, sent by a
 * host whose clock is `skewMs` ahead, with the body's other fields overridable.
 */
export function makeRecord(
  options: { receivedAt?: number; skewMs?: number; hostId?: string; body?: Partial<PingBody> } = {},
): PingRecord {
  const receivedAt = options.receivedAt ?? T0;
  const sentAt = receivedAt + (options.skewMs ?? 0);
  const body = makePingBody({ ...options.body, sentAt });
  return recordFromPing(options.hostId ?? "alpha", body, sentAt, receivedAt);
}

/** A file report carrying raw text, as the agent sends it (any text: the Worker parses). */
export function rawFile(text: string): PingBody["files"]["heartbeat"] {
  return { state: "ok", size: text.length, mtime: T0, text };
}

export function circuitFile(content: Record<string, unknown>): PingBody["files"]["circuit"] {
  return rawFile(JSON.stringify(content));
}

/** The files of a ping whose heartbeat beat at `beatAtMs` (host clock) with `status`. */
export function filesWith(
  beatAtMs: number,
  status = "ok",
  circuit: PingBody["files"]["circuit"] = { state: "missing" },
): PingBody["files"] {
  return { heartbeat: heartbeatFile({ at: beatAtMs / 1000, status }), circuit };
}

/** Wraps a KV namespace so every put is counted (by key) before it happens. */
export function countingKv(kv: KVNamespace): { kv: KVNamespace; puts: string[] } {
  const puts: string[] = [];
  const wrapped = new Proxy(kv, {
    get(target, property) {
      if (property === "put") {
        return (key: string, ...rest: unknown[]) => {
          puts.push(key);
          return (target.put as (...args: unknown[]) => Promise<void>).call(target, key, ...rest);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { kv: wrapped, puts };
}

/** A KV namespace whose reads work and whose writes fail as an exhausted quota does. */
export function failingPutKv(kv: KVNamespace, failing: { now: boolean } = { now: true }): KVNamespace {
  return new Proxy(kv, {
    get(target, property) {
      if (property === "put") {
        return (...args: unknown[]) => {
          if (failing.now) return Promise.reject(new Error("KV PUT failed: 429 Too Many Requests"));
          return (target.put as (...args: unknown[]) => Promise<void>).apply(target, args);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Every key in the test's KV namespace with its raw value. */
export async function kvContents(kv: KVNamespace): Promise<Record<string, string | null>> {
  const contents: Record<string, string | null> = {};
  for (const { name } of (await kv.list()).keys) contents[name] = await kv.get(name);
  return contents;
}

/** One host as GET /v1/status shows it, through the real app at Worker time `now`, with the right bearer token. */
export async function hostStatus(testEnvironment: Env, hostId: string, now: number = Date.now()): Promise<HostStatusBody> {
  const app = createApp({ now: () => now });
  const response = await app.fetch(
    new Request("https://witness.test/v1/status", { headers: { authorization: `Bearer ${testEnvironment.STATUS_TOKEN}` } }),
    testEnvironment,
  );
  if (response.status !== 200) throw new Error(`/v1/status answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as { hosts: HostStatusBody[] };
  const host = body.hosts.find((candidate) => candidate.id === hostId);
  if (host === undefined) throw new Error(`no ${hostId} in /v1/status`);
  return host;
}

export interface HostStatusBody {
  id: string;
  conditions: Record<string, { openedAt: number; detail: string; pagedAt: number | null }>;
  lastPingAt: number | null;
  heartbeatAgeSeconds: number | null;
  skewSeconds: number | null;
  agent: Record<string, unknown> | null;
  heartbeat: Record<string, unknown> | null;
  circuit: Record<string, unknown> | null;
}

export function makePingBody(overrides: Partial<PingBody> & { sentAt?: number } = {}): PingBody {
  const sentAt = overrides.sentAt ?? T0;
  return {
    v: 1,
    seq: 1,
    sentAt,
    agent: { version: "0.1.0", startedAt: T0 - 3_600_000, bootId: "boot-1", kind: "node" },
    lastPushOutage: null,
    files: {
      heartbeat: heartbeatFile({ at: sentAt / 1000 - 30, status: "ok" }),
      circuit: { state: "missing" },
    },
    ...overrides,
  };
}

export function heartbeatFile(content: Record<string, unknown>): PingBody["files"]["heartbeat"] {
  const text = JSON.stringify(content);
  return { state: "ok", size: text.length, mtime: T0, text };
}

export async function signedPingRequest(
  testEnvironment: Env,
  hostId: string,
  body: PingBody | string,
  options: { timestamp?: number; secret?: string } = {},
): Promise<Request> {
  const raw = typeof body === "string" ? body : JSON.stringify(body);
  // A raw body has no sentAt of its own: it is sent now.
  const timestamp = String(options.timestamp ?? (typeof body === "string" ? Date.now() : body.sentAt));
  const secret = options.secret ?? (await deriveHostSecret(testEnvironment.WITNESS_MASTER_KEY, hostId));
  return new Request(`https://witness.test/v1/ping/${hostId}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "X-Witness-Timestamp": timestamp,
      "X-Witness-Signature": await signPing(secret, timestamp, raw),
    },
    body: raw,
  });
}

/** Sends a signed ping through the real app at Worker time `now`. */
export async function ping(
  testEnvironment: Env,
  hostId: string,
  body: PingBody,
  now: number = body.sentAt,
): Promise<Response> {
  const app = createApp({ now: () => now });
  return app.fetch(await signedPingRequest(testEnvironment, hostId, body), testEnvironment);
}

/** Every call the Telegram stand-in recorded for this env's bot, in order. */
export async function telegramCallsOf(testEnvironment: TestEnv): Promise<Array<{ method: string; payload: Record<string, unknown> }>> {
  const response = await fetch(`${inject("telegramUrl")}/__fake/calls/${encodeURIComponent(testEnvironment.botToken)}`);
  return (await response.json()) as Array<{ method: string; payload: Record<string, unknown> }>;
}

/** The texts the Telegram stand-in received for this env's bot, in order. */
export async function sentMessages(testEnvironment: TestEnv): Promise<string[]> {
  const response = await fetch(`${inject("telegramUrl")}/__fake/calls/${encodeURIComponent(testEnvironment.botToken)}`);
  const calls = (await response.json()) as Array<{ method: string; payload: { text?: string } }>;
  return calls.filter((call) => call.method === "sendMessage").map((call) => String(call.payload.text));
}

export async function failTelegramNext(
  testEnvironment: TestEnv,
  failures: Array<{ status: number; retryAfterSeconds?: number; description?: string; delayMs?: number; migrateToChatId?: number }>,
): Promise<void> {
  await fetch(`${inject("telegramUrl")}/__fake/fail/${encodeURIComponent(testEnvironment.botToken)}`, {
    method: "POST",
    body: JSON.stringify(failures),
  });
}

export const MINUTE = 60_000;

