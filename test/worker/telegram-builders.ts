// Builders for the phone side of the workerd tests: valid Telegram updates, the webhook
// call as Telegram makes it (through the real app and the real monitor binding), the
// same updates handed straight to a MonitorHarness at a time the test sets, and what
// the Bot API stand-in received.
import { runInDurableObject } from "cloudflare:test";
import { inject } from "vitest";
import { MONITOR_NAME } from "../../src/monitor/object.ts";
import type { HostState } from "../../src/monitor/state.ts";
import type { PingOutcome } from "../../src/monitor/core.ts";
import type { PingBody } from "../../src/protocol.ts";
import { createApp } from "../../src/edge/routes.ts";
import { handleUpdate, type TelegramCall, TelegramUpdate, WEBHOOK_SECRET_HEADER } from "../../src/phone/webhook.ts";
import { makePingBody, type TestEnv } from "./helpers.ts";
import type { MonitorHarness } from "./monitor-harness.ts";

/** The operator's own chat in the test config (telegram.chatId "4242"). */
export const OWNER_CHAT = 4242;
/** The operator, talking to the bot in a private chat: Telegram gives that chat the user's id. */
export const OWNER = { id: OWNER_CHAT, is_bot: false, first_name: "Ann", username: "ann" };

let updateCounter = 10_000 + Math.floor(Math.random() * 1_000_000) * 100;

export interface KeyboardButton {
  text: string;
  callback_data?: string;
}
export interface Keyboard {
  inline_keyboard: KeyboardButton[][];
}

/** A text message update, as Telegram delivers a command typed in a chat. */
export function makeUpdate(options: { text: string; chatId?: number; updateId?: number; from?: Record<string, unknown> }): Record<string, unknown> {
  const chatId = options.chatId ?? OWNER_CHAT;
  const updateId = options.updateId ?? ++updateCounter;
  return {
    update_id: updateId,
    message: {
      message_id: updateId,
      date: 1_795_000_000,
      chat: { id: chatId, type: chatId > 0 ? "private" : "group" },
      from: options.from ?? OWNER,
      text: options.text,
      entities: options.text.startsWith("/") ? [{ offset: 0, length: options.text.split(" ")[0]?.length ?? 0, type: "bot_command" }] : [],
    },
  };
}

/** A button press (callback query) on message `messageId`, carrying the message's keyboard. */
export function makeCallback(options: {
  data: string;
  chatId?: number;
  messageId?: number;
  updateId?: number;
  keyboard?: Keyboard;
  from?: Record<string, unknown>;
}): Record<string, unknown> {
  const chatId = options.chatId ?? OWNER_CHAT;
  const updateId = options.updateId ?? ++updateCounter;
  return {
    update_id: updateId,
    callback_query: {
      id: `cb-${updateId}`,
      from: options.from ?? OWNER,
      chat_instance: "ci-1",
      data: options.data,
      message: {
        message_id: options.messageId ?? 501,
        date: 1_795_000_000,
        chat: { id: chatId, type: chatId > 0 ? "private" : "group" },
        text: "page",
        ...(options.keyboard ? { reply_markup: options.keyboard } : {}),
      },
    },
  };
}

/** A raw update as the edge's schema reads it (what the monitor is handed). */
export function parsedUpdate(update: Record<string, unknown>): TelegramUpdate {
  return TelegramUpdate.parse(update);
}

/**
 * POSTs an update to the webhook as Telegram does, through the real app: the edge
 * checks it and calls the real monitor binding (environment.MONITOR: the global test
 * config, real clock). `environment` decides the edge's config and bot token (testEnv() points the
 * edge's Telegram calls at the stand-in); `now` is the edge's clock only.
 */
export function postUpdate(
  environment: Env,
  update: unknown,
  options: { now?: number; secret?: string | null; rawBody?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  const secret = options.secret === undefined ? environment.TELEGRAM_WEBHOOK_SECRET : options.secret;
  if (secret !== null) headers[WEBHOOK_SECRET_HEADER] = secret;
  const now = options.now;
  const app = now === undefined ? createApp() : createApp({ now: () => now });
  return Promise.resolve(
    app.fetch(
      new Request("https://witness.test/telegram/webhook", {
        method: "POST",
        headers,
        body: options.rawBody ?? JSON.stringify(update),
      }),
      environment,
    ),
  );
}

/** Whether the real monitor (the one the app calls with `environment`) has recorded this update as handled. */
export async function monitorHandled(environment: Env, updateId: number): Promise<boolean> {
  return runInDurableObject(environment.MONITOR.getByName(MONITOR_NAME), async (_instance, state) => {
    const rows = state.storage.sql.exec("SELECT update_id FROM telegram_updates WHERE update_id = ?", updateId).toArray();
    return rows.length > 0;
  });
}

/** Every row of the real monitor's tables that an operator's update could write. */
export async function monitorRows(environment: Env): Promise<{ hosts: number; events: number; updates: number }> {
  return runInDurableObject(environment.MONITOR.getByName(MONITOR_NAME), async (_instance, state) => {
    const count = (table: string) => Number(state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM ${table}`).one().n);
    const exists = state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'telegram_updates'").toArray().length > 0;
    if (!exists) return { hosts: 0, events: 0, updates: 0 };
    return { hosts: count("hosts"), events: count("events"), updates: count("telegram_updates") };
  });
}

export interface ApiCall {
  method: string;
  payload: Record<string, unknown>;
}

/** Every Bot API call the stand-in recorded for this env's bot token, in order. */
export async function telegramCalls(environment: TestEnv): Promise<ApiCall[]> {
  const response = await fetch(`${inject("telegramUrl")}/__fake/calls/${encodeURIComponent(environment.botToken)}`);
  const calls = (await response.json()) as Array<ApiCall & { token: string; at: number }>;
  return calls.map(({ method, payload }) => ({ method, payload }));
}

/** The calls made since the last time this was asked, for a test that acts in steps. */
export function callWatcher(environment: TestEnv): () => Promise<ApiCall[]> {
  let seen = 0;
  return async () => {
    const calls = await telegramCalls(environment);
    const fresh = calls.slice(seen);
    seen = calls.length;
    return fresh;
  };
}

export function keyboardOf(call: ApiCall | TelegramCall | undefined): Keyboard | undefined {
  const markup = call?.payload.reply_markup;
  return typeof markup === "object" && markup !== null && "inline_keyboard" in markup ? (markup as Keyboard) : undefined;
}

/** The callback data of every button under a message, row by row. */
export function buttonData(call: ApiCall | TelegramCall | undefined): string[][] {
  return keyboardOf(call)?.inline_keyboard.map((row) => row.map((button) => button.callback_data ?? "")) ?? [];
}

/** The text of a call (a reply, an answer to a button, an edit). */
export function textOf(call: ApiCall | TelegramCall | undefined): string {
  return String(call?.payload.text ?? "");
}

/** The operator (or `from`) types `text` in the owner's chat (or `chatId`) at `now`; returns the calls the edge would make. */
export function say(
  monitor: MonitorHarness,
  text: string,
  now: number,
  options: { chatId?: number; from?: Record<string, unknown>; updateId?: number } = {},
): Promise<TelegramCall[]> {
  return monitor.update(parsedUpdate(makeUpdate({ text, ...options })), now);
}

/** Sends a command and returns the text of its one reply. */
export async function reply(monitor: MonitorHarness, text: string, now: number, options: Parameters<typeof say>[3] = {}): Promise<string> {
  const calls = await say(monitor, text, now, options);
  if (calls.length !== 1 || calls[0]?.method !== "sendMessage") throw new Error(`"${text}" got ${JSON.stringify(calls)}`);
  return textOf(calls[0]);
}

/** The operator presses a button carrying `data` at `now`; returns the calls the edge would make. */
export function press(
  monitor: MonitorHarness,
  data: string,
  now: number,
  options: { chatId?: number; from?: Record<string, unknown>; messageId?: number; keyboard?: Keyboard; updateId?: number } = {},
): Promise<TelegramCall[]> {
  return monitor.update(parsedUpdate(makeCallback({ data, ...options })), now);
}

/** A host's agent talking to a harness: pings with a rising sequence number, at chosen times. */
export function harnessAgent(monitor: MonitorHarness, hostId: string, base: Partial<PingBody> = {}) {
  let seq = 0;
  return async (at: number, overrides: Partial<PingBody> = {}): Promise<PingOutcome> => {
    const outcome = await monitor.ping(hostId, makePingBody({ ...base, seq: ++seq, sentAt: at, ...overrides }), at);
    if (outcome.status !== 200) throw new Error(`ping of ${hostId} at ${new Date(at).toISOString()} answered ${outcome.status}: ${outcome.error}`);
    return outcome;
  };
}

/** The monitor's own sendMessage calls (pages with their buttons), as the stand-in received them. */
export async function pages(monitor: MonitorHarness): Promise<ApiCall[]> {
  return (await telegramCalls(monitor.env)).filter((call) => call.method === "sendMessage");
}

/** A host's stored state, for assertions on what an update wrote. */
export function stored(monitor: MonitorHarness, hostId: string, now: number): Promise<HostState> {
  return monitor.host(hostId, now);
}

export function linesOf(messages: readonly string[]): string[] {
  return messages.flatMap((text) => text.split("\n"));
}

/**
 * Hands several updates to one monitor at once, as the Durable Object does with
 * requests that arrive back to back (it interleaves them wherever one awaits).
 */
export function concurrently(monitor: MonitorHarness, updates: ReadonlyArray<Record<string, unknown>>, now: number): Promise<TelegramCall[][]> {
  return monitor.with(now, (core) => Promise.all(updates.map((update) => handleUpdate(parsedUpdate(update), monitor.config, core, now))));
}
