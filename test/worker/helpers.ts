// Builders for the workerd tests: full valid defaults, overridden per test.
import { env } from "cloudflare:workers";
import { inject } from "vitest";
import type { PingBody } from "../../src/protocol.ts";
import { createApp } from "../../src/routes.ts";
import { runTick, type TickSummary } from "../../src/scheduled.ts";
import { deriveHostSecret, signPing } from "../../src/signature.ts";

export const T0 = Date.UTC(2026, 10, 24, 14, 0, 0); // a Tuesday, 09:00 in New York

let tokenCounter = 0;

export interface TestConfigInput {
  plan?: "free" | "paid";
  timing?: Record<string, number>;
  alerts?: Record<string, unknown>;
  defaults?: Record<string, unknown>;
  hosts?: Array<Record<string, unknown>>;
  telegram?: Record<string, unknown>;
}

/**
 * An Env for one test: its own bot token (so the Telegram stand-in keeps its messages
 * apart), the stand-in's address, and the given config on top of small defaults.
 */
export function testEnv(config: TestConfigInput = {}): Env & { botToken: string } {
  const botToken = `${++tokenCounter}${Date.now()}:test-${crypto.randomUUID()}`;
  return {
    ...env,
    TELEGRAM_BOT_TOKEN: botToken,
    botToken,
    WITNESS_CONFIG: {
      plan: config.plan ?? "paid",
      telegram: { chatId: "4242", baseUrl: inject("telegramUrl"), ...config.telegram },
      alerts: { repeatMinutes: 30, timezone: "UTC", digestAt: null, ...config.alerts },
      ...(config.timing ? { timing: config.timing } : {}),
      ...(config.defaults ? { defaults: config.defaults } : {}),
      hosts: config.hosts ?? [{ id: "alpha" }],
    },
  };
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
  const timestamp = String(options.timestamp ?? (typeof body === "string" ? T0 : body.sentAt));
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

/** Runs one cron tick at Worker time `now`; retries inside the tick do not really sleep. */
export function tick(testEnvironment: Env, now: number): Promise<TickSummary> {
  return runTick(testEnvironment, { now: () => now, fetch: (input, init) => fetch(input, init), sleep: async () => {} });
}

/** The texts the Telegram stand-in received for this env's bot, in order. */
export async function sentMessages(testEnvironment: Env & { botToken: string }): Promise<string[]> {
  const response = await fetch(`${inject("telegramUrl")}/__fake/calls/${encodeURIComponent(testEnvironment.botToken)}`);
  const calls = (await response.json()) as Array<{ method: string; payload: { text?: string } }>;
  return calls.filter((call) => call.method === "sendMessage").map((call) => String(call.payload.text));
}

export async function failTelegramNext(
  testEnvironment: Env & { botToken: string },
  failures: Array<{ status: number; retryAfterSeconds?: number; description?: string; delayMs?: number }>,
): Promise<void> {
  await fetch(`${inject("telegramUrl")}/__fake/fail/${encodeURIComponent(testEnvironment.botToken)}`, {
    method: "POST",
    body: JSON.stringify(failures),
  });
}

export const MINUTE = 60_000;
