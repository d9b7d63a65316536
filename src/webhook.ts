// The Telegram webhook: the operator answers from the phone. Only the configured chats
// are obeyed; every update is validated and handled once. Writes go to the webhook's own
// keys (op:<host>, cmd:<host>, tg-update:<id>), never to what the cron or pings own.
import { z } from "zod";
import { type Config, type HostConfig, findHost } from "./config.ts";
import { commandDeadlineMs } from "./follow-ups.ts";
import { CONDITIONS, incidentId } from "./judge.ts";
import { formatSeconds, utcClock } from "./format.ts";
import { escapeHtml } from "./messages.ts";
import { clockSkewSeconds, heartbeatAgeSeconds, type PingRecord } from "./records.ts";
import type { CronState, OperatorState, StoredCommand, Store } from "./store.ts";
import type { TelegramClient } from "./telegram.ts";

export const WEBHOOK_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token";

const User = z.object({ id: z.number(), username: z.string().optional(), first_name: z.string().default("") });
const Chat = z.object({ id: z.number() });
const InlineKeyboard = z.object({
  inline_keyboard: z.array(z.array(z.object({ text: z.string(), callback_data: z.string().optional() }))),
});

export const TelegramUpdate = z.object({
  update_id: z.number().int(),
  message: z
    .object({ message_id: z.number(), chat: Chat, from: User.optional(), text: z.string().optional() })
    .optional(),
  callback_query: z
    .object({
      id: z.string(),
      from: User,
      data: z.string().optional(),
      message: z.object({ message_id: z.number(), chat: Chat, reply_markup: InlineKeyboard.optional() }).optional(),
    })
    .optional(),
});
export type TelegramUpdate = z.infer<typeof TelegramUpdate>;


const MAX_MUTE_MS = 7 * 86_400_000;
const MAX_ACKED = 50;

export interface WebhookContext {
  config: Config;
  store: Store;
  telegram: TelegramClient;
  now: number;
}

function who(user: z.infer<typeof User>): string {
  return user.username ? `@${user.username}` : user.first_name || `user ${user.id}`;
}


/** "90m", "1h", "1h30m", "2d", or a bare number of minutes. */
export function parseDuration(text: string): number | null {
  if (/^\d+$/.test(text)) return Number(text) > 0 ? Number(text) * 60_000 : null;
  const match = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$/.exec(text);
  if (!match || text === "") return null;
  const [, days = "0", hours = "0", minutes = "0"] = match;
  const ms = ((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60_000;
  return ms > 0 ? ms : null;
}

export function isAllowedChat(config: Config, chatId: number): boolean {
  const id = String(chatId);
  return id === config.telegram.chatId || config.telegram.allowedChatIds.includes(id);
}

/** Handles one validated update; the caller has checked the secret header and dedupe. */
export async function handleUpdate(update: TelegramUpdate, context: WebhookContext): Promise<void> {
  if (update.message?.text !== undefined) {
    const { chat, text, from } = update.message;
    if (!isAllowedChat(context.config, chat.id)) {
      console.warn(`webhook: ignored a message from chat ${chat.id}, which is not on the allowlist`);
      return;
    }
    const reply = await runCommand(text, from ? who(from) : "someone", context);
    const result = await context.telegram.call("sendMessage", { chat_id: chat.id, text: reply.text, parse_mode: "HTML", ...reply.extra });
    if (!result.ok) console.error(`webhook: reply failed: ${result.error}`);
    return;
  }
  const query = update.callback_query;
  if (query !== undefined) {
    const chatId = query.message?.chat.id;
    if (chatId === undefined || !isAllowedChat(context.config, chatId)) {
      console.warn(`webhook: ignored a button press from chat ${chatId ?? "?"}, which is not on the allowlist`);
      await context.telegram.call("answerCallbackQuery", { callback_query_id: query.id, text: "Not allowed." });
      return;
    }
    await runButton(query, chatId, context);
  }
}

interface Reply {
  text: string;
  extra?: Record<string, unknown>;
}

const HELP = [
  "<b>witness</b> answers:",
  "/status [host]: conditions, last ping, heartbeat, circuit, skew, mute",
  "/ack &lt;host&gt;: stop repeats of the host's open alerts (recoveries still arrive)",
  "/mute &lt;host&gt; &lt;duration&gt;: no pages for the host, e.g. /mute trader-1 2h",
  "/unmute &lt;host&gt;",
  "/pause &lt;host&gt; &lt;reason&gt;: ask the host's agent to pause trading (asks to confirm first)",
  "There is no remote resume: resuming is a human edit of circuit.json on the host.",
].join("\n");

async function runCommand(text: string, by: string, context: WebhookContext): Promise<Reply> {
  const [rawName = "", ...args] = text.trim().split(/\s+/);
  const name = rawName.replace(/@\w+$/, "").toLowerCase();
  const { config } = context;
  const hostArg = args[0];
  const host = hostArg === undefined ? undefined : findHost(config, hostArg);
  const unknownHost = (usage: string): Reply => ({
    text:
      hostArg === undefined
        ? `usage: ${usage}`
        : `unknown host "${escapeHtml(hostArg)}"; hosts: ${escapeHtml(config.hosts.map((h) => h.id).join(", "))}`,
  });

  switch (name) {
    case "/start":
    case "/help":
      return { text: HELP };
    case "/status":
      if (hostArg !== undefined && host === undefined) return unknownHost("/status [host]");
      return { text: await statusText(context, host) };
    case "/ack": {
      if (!host) return unknownHost("/ack <host>");
      const kinds = await acknowledge(host, by, context);
      return {
        text:
          kinds.length === 0
            ? `Nothing to acknowledge on <b>${escapeHtml(host.id)}</b>.`
            : `✔️ Acknowledged ${kinds.join(", ")} on <b>${escapeHtml(host.id)}</b> (${escapeHtml(by)}): repeats stop; the recovery will still be sent.`,
      };
    }
    case "/mute": {
      if (!host) return unknownHost("/mute <host> <duration, e.g. 1h>");
      const durationMs = parseDuration(args[1] ?? "");
      if (durationMs === null || durationMs > MAX_MUTE_MS) return { text: "usage: /mute &lt;host&gt; &lt;duration&gt;, e.g. 30m, 2h, 1d (at most 7d)" };
      return { text: await mute(host, durationMs, by, context) };
    }
    case "/unmute":
      if (!host) return unknownHost("/unmute <host>");
      return { text: await unmute(host, context) };
    case "/pause": {
      if (!host) return unknownHost("/pause <host> <reason>");
      const reason = args.slice(1).join(" ").slice(0, 150);
      if (reason === "") return { text: "usage: /pause &lt;host&gt; &lt;reason&gt;, e.g. /pause trader-1 broker API down" };
      return askPause(host, reason, by, context);
    }
    default:
      return { text: `unknown command ${escapeHtml(name.slice(0, 32))}; /help lists what I answer` };
  }
}

async function operatorState(host: HostConfig, context: WebhookContext): Promise<OperatorState> {
  return (await context.store.getOperatorState(host.id)) ?? { acked: [], mutedUntil: null };
}

/** Acknowledges the host's paged, open incidents; returns their kinds (none: nothing was open). */
async function acknowledge(host: HostConfig, by: string, context: WebhookContext): Promise<string[]> {
  const state = await context.store.getCronState();
  const open = Object.entries(state?.hosts[host.id]?.conditions ?? {}).filter(([, condition]) => condition.pagedAt !== null);
  if (open.length === 0) return [];
  const operator = await operatorState(host, context);
  const ids = open.map(([kind, condition]) => incidentId(host.id, kind as (typeof CONDITIONS)[number], condition.openedAt));
  const fresh = ids.filter((id) => !operator.acked.some((ack) => ack.incidentId === id));
  // A second tap (or /ack after the button) costs no KV write.
  if (fresh.length > 0) {
    const acked = [...operator.acked, ...fresh.map((id) => ({ incidentId: id, by, at: context.now }))].slice(-MAX_ACKED);
    await context.store.putOperatorState(host.id, { ...operator, acked });
  }
  return open.map(([kind]) => kind);
}

async function mute(host: HostConfig, durationMs: number, by: string, context: WebhookContext): Promise<string> {
  const operator = await operatorState(host, context);
  const mutedUntil = context.now + durationMs;
  await context.store.putOperatorState(host.id, { ...operator, mutedUntil, mutedBy: by });
  return `🔕 <b>${escapeHtml(host.id)}</b> muted until ${utcClock(mutedUntil)} by ${escapeHtml(by)}. The end of the mute will be announced.`;
}

async function unmute(host: HostConfig, context: WebhookContext): Promise<string> {
  const operator = await operatorState(host, context);
  if (operator.mutedUntil === null || operator.mutedUntil <= context.now) return `<b>${escapeHtml(host.id)}</b> is not muted.`;
  // Ending the mute now lets the cron announce it, like an expiry.
  await context.store.putOperatorState(host.id, { ...operator, mutedUntil: context.now });
  return `🔔 <b>${escapeHtml(host.id)}</b> unmuted.`;
}

async function askPause(host: HostConfig, reason: string, by: string, context: WebhookContext): Promise<Reply> {
  if (!host.allowRemotePause) {
    return {
      text: `Remote pause is off for <b>${escapeHtml(host.id)}</b>: set allowRemotePause = true for it in wrangler.toml, redeploy, and run its agent with --allow-remote-pause.`,
    };
  }
  const id = crypto.randomUUID().slice(0, 8);
  // Telegram refuses callback data over 64 bytes; a long host id is then found from the command id.
  const data = (action: string) => {
    const full = `${action}|${host.id}|${id}`;
    return new TextEncoder().encode(full).length <= 64 ? full : `${action}||${id}`;
  };
  const stored: StoredCommand = {
    command: { id, type: "pause", reason, requestedBy: by.slice(0, 100), expiresAt: context.now + 10 * 60_000 },
    requestedAt: context.now,
    confirmedAt: null,
  };
  await context.store.putCommand(host.id, stored);
  return {
    text: `⏸️ Pause trading on <b>${escapeHtml(host.id)}</b>?\nReason: ${escapeHtml(reason)}\nThe agent writes circuit.json paused; resuming stays a human edit on the host.`,
    extra: {
      reply_markup: {
        inline_keyboard: [
          [
            { text: "⏸️ Confirm pause", callback_data: data("pausec") },
            { text: "Cancel", callback_data: data("pausex") },
          ],
        ],
      },
    },
  };
}

async function runButton(
  query: NonNullable<TelegramUpdate["callback_query"]>,
  chatId: number,
  context: WebhookContext,
): Promise<void> {
  const [action = "", hostPart = "", commandId = ""] = (query.data ?? "").split("|");
  const hostId = hostPart === "" && commandId !== "" ? await hostOfCommand(commandId, context) : hostPart;
  const host = findHost(context.config, hostId);
  const by = who(query.from);
  const answer = (text: string) => context.telegram.call("answerCallbackQuery", { callback_query_id: query.id, text });
  if (host === undefined) {
    const gone = action === "pausec" || action === "pausex";
    await answer(action === "noop" ? "" : gone ? "This pause request expired; send /pause again." : "Unknown host.");
    return;
  }
  const messageId = query.message?.message_id;
  const replaceHostRow = async (label: string) => {
    const rows = query.message?.reply_markup?.inline_keyboard ?? [];
    const keyboard = rows.map((row) =>
      row.some((button) => button.callback_data?.endsWith(`|${host.id}`)) ? [{ text: label, callback_data: `noop|${host.id}` }] : row,
    );
    await context.telegram.call("editMessageReplyMarkup", { chat_id: chatId, message_id: messageId, reply_markup: { inline_keyboard: keyboard } });
  };
  const editText = (html: string) =>
    context.telegram.call("editMessageText", { chat_id: chatId, message_id: messageId, text: html, parse_mode: "HTML" });

  switch (action) {
    case "ack": {
      // The page may be older than its incident's recovery: say so rather than "acked".
      if ((await acknowledge(host, by, context)).length === 0) {
        await answer(`Nothing to acknowledge on ${host.id}.`);
        return;
      }
      await answer(`Acknowledged ${host.id}`);
      await replaceHostRow(`✔️ ${host.id} acked by ${by} at ${utcClock(context.now)}`);
      return;
    }
    case "mute": {
      await mute(host, 3_600_000, by, context);
      await answer(`${host.id} muted for 1 h`);
      await replaceHostRow(`🔕 ${host.id} muted by ${by} until ${utcClock(context.now + 3_600_000)}`);
      return;
    }
    case "pause": {
      await answer("Confirm below");
      const reply = await askPause(host, `from the phone by ${by}`, by, context);
      await context.telegram.call("sendMessage", { chat_id: chatId, text: reply.text, parse_mode: "HTML", ...reply.extra });
      return;
    }
    case "pausec": {
      const stored = await context.store.getCommand(host.id);
      if (stored === null || stored.command.id !== commandId || stored.command.expiresAt <= context.now) {
        await answer("This pause request expired; send /pause again.");
        await editText(`⏸️ Pause request for <b>${escapeHtml(host.id)}</b> expired.`);
        return;
      }
      if (stored.confirmedAt === null) {
        // Long enough for the agent to pick it up, and for the cron to say if it did not.
        const expiresAt = context.now + Math.max(15 * 60_000, 2 * commandDeadlineMs(host, context.config.timing));
        await context.store.putCommand(host.id, { ...stored, confirmedAt: context.now, command: { ...stored.command, expiresAt } });
      }
      await answer("Pause queued");
      await editText(
        `⏸️ Pause for <b>${escapeHtml(host.id)}</b> queued by ${escapeHtml(by)} at ${utcClock(context.now)} (command ${escapeHtml(commandId)}); waiting for the host to apply it.`,
      );
      return;
    }
    case "pausex": {
      const stored = await context.store.getCommand(host.id);
      if (stored !== null && stored.command.id === commandId && stored.confirmedAt !== null) {
        // The agent may already have it: "cancelled" could be a lie about a kill switch.
        await answer("Already confirmed: the pause stays queued. Resuming is a human edit on the host.");
        return;
      }
      if (stored !== null && stored.command.id === commandId) await context.store.deleteCommand(host.id);
      await answer("Cancelled");
      await editText(`Pause for <b>${escapeHtml(host.id)}</b> cancelled by ${escapeHtml(by)}.`);
      return;
    }
    default:
      await answer("");
  }
}

/** The host whose stored command has this id ("" if none): one bulk read. */
async function hostOfCommand(commandId: string, context: WebhookContext): Promise<string> {
  const commands = await context.store.getCommands(context.config.hosts.map((host) => host.id));
  for (const [hostId, stored] of commands) if (stored?.command.id === commandId) return hostId;
  return "";
}

function age(seconds: number | null): string {
  return seconds === null ? "?" : formatSeconds(seconds);
}

async function statusText(context: WebhookContext, only: HostConfig | undefined): Promise<string> {
  const hosts = only ? [only] : context.config.hosts;
  const ids = hosts.map((host) => host.id);
  const [state, records, operators] = await Promise.all([
    context.store.getCronState(),
    context.store.getPingRecords(ids),
    context.store.getOperatorStates(ids),
  ]);
  return renderStatus(hosts, state, records, operators, context.now);
}

/** /status as the phone shows it: a few short lines per host. */
export function renderStatus(
  hosts: readonly HostConfig[],
  state: CronState | null,
  records: ReadonlyMap<string, PingRecord | null>,
  operators: ReadonlyMap<string, OperatorState | null>,
  now: number,
): string {
  const blocks = hosts.map((host) => {
    const record = records.get(host.id) ?? null;
    const conditions = Object.keys(state?.hosts[host.id]?.conditions ?? {});
    const lines = [`${conditions.length === 0 ? "🟢" : "🔴"} <b>${escapeHtml(host.id)}</b>: ${conditions.length === 0 ? "ok" : escapeHtml(conditions.join(", "))}`];
    if (record === null) {
      lines.push("  never pinged");
    } else {
      const heartbeat = record.heartbeat;
      const beat = heartbeat.state === "ok" ? `"${escapeHtml(heartbeat.status)}", ${age(heartbeatAgeSeconds(record, now))} old` : escapeHtml(heartbeat.state);
      const circuit = record.circuit;
      const breaker =
        circuit.state === "ok"
          ? circuit.paused
            ? `PAUSED: ${escapeHtml(circuit.reason ?? "(no reason)")}${circuit.since && Number.isFinite(new Date(circuit.since * 1000).getTime()) ? ` since ${new Date(circuit.since * 1000).toISOString().slice(0, 16)}Z` : circuit.since ? ` since ${circuit.since}` : ""}`
            : "green"
          : circuit.state === "missing"
            ? "missing (green)"
            : escapeHtml(circuit.state);
      lines.push(`  last stored ping ${age((now - record.receivedAt) / 1000)} ago; heartbeat ${beat}`);
      lines.push(`  circuit ${breaker}; clock skew ${clockSkewSeconds(record).toFixed(1)} s`);
    }
    const operator = operators.get(host.id) ?? null;
    if (operator?.mutedUntil && operator.mutedUntil > now) lines.push(`  muted until ${utcClock(operator.mutedUntil)}`);
    return lines.join("\n");
  });
  const tick = state ? `cron last recorded ${age((now - state.lastTickAt) / 1000)} ago` : "cron has not run yet";
  return [...blocks, tick].join("\n");
}
