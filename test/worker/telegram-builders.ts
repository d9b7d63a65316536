// Builders for the phone side of the workerd tests: valid Telegram updates, the webhook
// call as Telegram makes it, what the Bot API stand-in received, and a KV namespace of
// the test's own (the simulated KV is shared by every test in a file).
import { inject } from "vitest";
import { createApp } from "../../src/routes.ts";
import { WEBHOOK_SECRET_HEADER } from "../../src/webhook.ts";
import { makePingBody, ping, type TestEnv } from "./helpers.ts";
import type { PingBody } from "../../src/protocol.ts";

/** The operator's own chat in the test config (telegram.chatId "4242"). */
export const OWNER_CHAT = 4242;
export const OWNER = { id: 7, is_bot: false, first_name: "Ann", username: "ann" };

let updateCounter = 10_000;

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
  return {
    update_id: options.updateId ?? ++updateCounter,
    message: {
      message_id: updateCounter,
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
        chat: { id: chatId, type: "private" },
        text: "page",
        ...(options.keyboard ? { reply_markup: options.keyboard } : {}),
      },
    },
  };
}

/** POSTs an update to the webhook as Telegram does, at Worker time `now`. */
export function postUpdate(
  environment: Env,
  update: unknown,
  options: { now: number; secret?: string | null; rawBody?: string },
): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  const secret = options.secret === undefined ? environment.TELEGRAM_WEBHOOK_SECRET : options.secret;
  if (secret !== null) headers[WEBHOOK_SECRET_HEADER] = secret;
  const app = createApp({ now: () => options.now });
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

export function keyboardOf(call: ApiCall | undefined): Keyboard | undefined {
  const markup = call?.payload.reply_markup;
  return typeof markup === "object" && markup !== null && "inline_keyboard" in markup ? (markup as Keyboard) : undefined;
}

/** The callback data of every button under a message, row by row. */
export function buttonData(call: ApiCall | undefined): string[][] {
  return keyboardOf(call)?.inline_keyboard.map((row) => row.map((button) => button.callback_data ?? "")) ?? [];
}

/**
 * A view of `kv` under a prefix of its own: the test's keys cannot meet another test's
 * (cron:state above all), and list() shows only this test's keys, unprefixed.
 */
export function isolatedKv(kv: KVNamespace, prefix = `test-${crypto.randomUUID()}/`): KVNamespace {
  const strip = (name: string) => name.slice(prefix.length);
  const view = {
    get: async (key: string | string[], options?: unknown) => {
      if (Array.isArray(key)) {
        const values = (await kv.get(
          key.map((name) => prefix + name),
          options as KVNamespaceGetOptions<"text">,
        )) as Map<string, unknown>;
        return new Map(key.map((name) => [name, values.get(prefix + name) ?? null]));
      }
      return kv.get(prefix + key, options as KVNamespaceGetOptions<"text">);
    },
    put: (key: string, value: string, options?: KVNamespacePutOptions) => kv.put(prefix + key, value, options),
    delete: (key: string) => kv.delete(prefix + key),
    list: async (options: KVNamespaceListOptions = {}) => {
      const page = await kv.list({ ...options, prefix: prefix + (options.prefix ?? "") });
      return { ...page, keys: page.keys.map((key) => ({ ...key, name: strip(key.name) })) };
    },
  };
  return view as unknown as KVNamespace;
}

/** A host's agent: signed pings with a rising sequence number, at chosen Worker times. */
export function agentFor(environment: Env, hostId: string) {
  let seq = 0;
  return (at: number, overrides: Partial<PingBody> = {}): Promise<Response> =>
    ping(environment, hostId, makePingBody({ seq: ++seq, sentAt: at, ...overrides }), at);
}
