// The Telegram webhook's logic, run inside the monitor object: the operator answers from
// the phone. The edge has checked the secret header, the update's shape and the chat
// allowlist; here each update is handled once, its state change is written by the
// monitor (the single writer, so two acks a second apart both count), and the replies
// come back as Telegram calls for the edge to make.
import { z } from "zod";
import { type Config, type HostConfig, findHost } from "../config.ts";
import { commandDeadlineMs } from "../judge/follow-ups.ts";
import { CONDITIONS, incidentId } from "../judge/judge.ts";
import { formatSeconds, utcClock, utcMoment } from "../format.ts";
import { escapeHtml, splitLines } from "./messages.ts";
import type { MonitorCore } from "../monitor/core.ts";
import type { HistoryEvent, HostState, MonitorMeta, OutboxMessage, StoredCommand } from "../monitor/state.ts";
import { activeMaintenance } from "../judge/maintenance.ts";
import { MAINTENANCE_BUTTON_MS, pauseUnavailable } from "../judge/plan.ts";
import { clockSkewSeconds, heartbeatAgeSeconds } from "../judge/records.ts";

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

/** A Bot API call the edge makes after the monitor has recorded the update's effect. */
export interface TelegramCall {
  method: string;
  payload: Record<string, unknown>;
}

const MAX_MUTE_MS = 7 * 86_400_000;
const MAX_ACKED = 50;
/** Phone maintenance windows are kept this long after they end (the status page shows a week). */
const MAINTENANCE_KEPT_MS = 8 * 86_400_000;

export interface WebhookContext {
  config: Config;
  monitor: MonitorCore;
  now: number;
  /** Calls to make once the update's effect is recorded. */
  calls: TelegramCall[];
  links: UpdateLinks;
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

/** The chat an update came from, for the edge's allowlist check. */
export function updateChatId(update: TelegramUpdate): number | undefined {
  return update.message?.chat.id ?? update.callback_query?.message?.chat.id;
}

/** Links the edge makes for a reply (it knows the Worker's address and holds STATUS_TOKEN). */
export interface UpdateLinks {
  /** A link to the status page that signs its opener in for a day. */
  statusPage?: string;
}

/** Handles one validated update from an allowed chat, once; returns the calls to make. */
export async function handleUpdate(update: TelegramUpdate, config: Config, monitor: MonitorCore, now: number, links: UpdateLinks = {}): Promise<TelegramCall[]> {
  if (!monitor.markUpdate(update.update_id)) return [];
  const context: WebhookContext = { config, monitor, now, calls: [], links };
  if (update.message?.text !== undefined) {
    const { chat, text, from } = update.message;
    const replies = await runCommand(text, from ? who(from) : "someone", { chatId: chat.id, userId: from?.id ?? null }, context);
    for (const reply of replies) {
      context.calls.push({ method: "sendMessage", payload: { chat_id: chat.id, text: reply.text, parse_mode: "HTML", ...reply.extra } });
    }
    return context.calls;
  }
  const query = update.callback_query;
  const chatId = query?.message?.chat.id;
  if (query !== undefined && chatId !== undefined) await runButton(query, chatId, context);
  return context.calls;
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
  "/maintenance &lt;host&gt; &lt;duration&gt;: DARK and STALE are recorded, not paged, e.g. /maintenance trader-1 2h; still down at the end pages then",
  "/maintenance &lt;host&gt; off: end it now",
  "/pause &lt;host&gt; &lt;reason&gt;: ask the host's agent to pause trading (asks to confirm first)",
  "There is no remote resume: resuming is a human edit of circuit.json on the host.",
].join("\n");

interface Sender {
  chatId: number;
  userId: number | null;
}

/**
 * Who may pause trading: the users listed in telegram.allowedUserIds, or, when none are
 * listed, whoever talks to the bot in a private chat (in a group anyone could).
 */
function pauseRefusal(config: Config, sender: Sender, by: string): string | null {
  const allowed = config.telegram.allowedUserIds;
  if (allowed.length > 0) {
    if (sender.userId !== null && allowed.includes(String(sender.userId))) return null;
    return `Refused: ${escapeHtml(by)} (user id ${sender.userId ?? "?"}) may not pause trading; add the id to telegram.allowedUserIds in wrangler.toml to allow it.`;
  }
  if (sender.userId !== null && sender.chatId === sender.userId) return null;
  return `Refused: pausing from a group needs telegram.allowedUserIds in wrangler.toml (${escapeHtml(by)} is user id ${sender.userId ?? "?"}); or send /pause in a private chat with the bot.`;
}

async function runCommand(text: string, by: string, sender: Sender, context: WebhookContext): Promise<Reply[]> {
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
      return [{ text: HELP }];
    case "/status":
      if (hostArg !== undefined && host === undefined) return [unknownHost("/status [host]")];
      return statusTexts(context, host).map((text) => ({ text }));
    case "/ack": {
      if (!host) return [unknownHost("/ack <host>")];
      const kinds = await acknowledge(host, by, context);
      return [
        {
          text:
            kinds.length === 0
              ? `Nothing to acknowledge on <b>${escapeHtml(host.id)}</b>.`
              : `✔️ Acknowledged ${kinds.join(", ")} on <b>${escapeHtml(host.id)}</b> (${escapeHtml(by)}): repeats stop; the recovery will still be sent.`,
        },
      ];
    }
    case "/mute": {
      if (!host) return [unknownHost("/mute <host> <duration, e.g. 1h>")];
      const durationMs = parseDuration(args[1] ?? "");
      if (durationMs === null || durationMs > MAX_MUTE_MS) return [{ text: "usage: /mute &lt;host&gt; &lt;duration&gt;, e.g. 30m, 2h, 1d (at most 7d)" }];
      return [{ text: await mute(host, durationMs, by, context) }];
    }
    case "/unmute":
      if (!host) return [unknownHost("/unmute <host>")];
      return [{ text: await unmute(host, by, context) }];
    case "/maintenance": {
      if (!host) return [unknownHost("/maintenance <host> <duration, e.g. 2h, or off>")];
      const arg = (args[1] ?? "").toLowerCase();
      if (arg === "off") return [{ text: await endMaintenance(host, by, context) }];
      const durationMs = parseDuration(arg);
      if (durationMs === null || durationMs > MAX_MUTE_MS) {
        return [{ text: "usage: /maintenance &lt;host&gt; &lt;duration&gt;, e.g. 30m, 2h, 1d (at most 7d), or /maintenance &lt;host&gt; off" }];
      }
      return [{ text: (await startMaintenance(host, durationMs, by, context)).text }];
    }
    case "/pause": {
      if (!host) return [unknownHost("/pause <host> <reason>")];
      const reason = args.slice(1).join(" ").slice(0, 150);
      if (reason === "") return [{ text: "usage: /pause &lt;host&gt; &lt;reason&gt;, e.g. /pause trader-1 broker API down" }];
      const refusal = pauseRefusal(config, sender, by);
      if (refusal !== null) {
        await context.monitor.saveOperatorChange(context.monitor.hostState(host.id), [history(context, host.id, "pause_refused", by, `not an allowed user`)]);
        return [{ text: refusal }];
      }
      return [await askPause(host, reason, by, context)];
    }
    default:
      return [{ text: `unknown command ${escapeHtml(name.slice(0, 32))}; /help lists what I answer` }];
  }
}

function history(context: WebhookContext, hostId: string, type: string, by: string, detail: string): HistoryEvent {
  return { at: context.now, hostId, type, kind: null, detail, by };
}

/** Acknowledges the host's paged, open incidents; returns their kinds (none: nothing was open). */
async function acknowledge(host: HostConfig, by: string, context: WebhookContext): Promise<string[]> {
  const state = context.monitor.hostState(host.id);
  const open = Object.entries(state.judgement.conditions).filter(([, condition]) => condition.pagedAt !== null);
  if (open.length === 0) return [];
  const ids = open.map(([kind, condition]) => incidentId(host.id, kind as (typeof CONDITIONS)[number], condition.openedAt));
  const fresh = ids.filter((id) => !state.operator.acked.some((ack) => ack.incidentId === id));
  // A second tap (or /ack after the button) writes nothing.
  if (fresh.length > 0) {
    const acked = [...state.operator.acked, ...fresh.map((id) => ({ incidentId: id, by, at: context.now }))].slice(-MAX_ACKED);
    await context.monitor.saveOperatorChange({ ...state, operator: { ...state.operator, acked } }, [
      history(context, host.id, "ack", by, open.map(([kind]) => kind).join(", ")),
    ]);
  }
  return open.map(([kind]) => kind);
}

async function mute(host: HostConfig, durationMs: number, by: string, context: WebhookContext): Promise<string> {
  const state = context.monitor.hostState(host.id);
  const mutedUntil = context.now + durationMs;
  const mutedConditions = Object.keys(state.judgement.conditions);
  await context.monitor.saveOperatorChange({ ...state, operator: { ...state.operator, mutedUntil, mutedBy: by, mutedConditions } }, [
    history(context, host.id, "mute", by, `until ${utcClock(mutedUntil)}`),
  ]);
  return `🔕 <b>${escapeHtml(host.id)}</b> muted until ${utcClock(mutedUntil)} by ${escapeHtml(by)}. The end of the mute will be announced.`;
}

async function unmute(host: HostConfig, by: string, context: WebhookContext): Promise<string> {
  const state = context.monitor.hostState(host.id);
  const mutedUntil = state.operator.mutedUntil;
  if (mutedUntil === null || mutedUntil <= context.now) return `<b>${escapeHtml(host.id)}</b> is not muted.`;
  // Ending the mute now lets the monitor announce it, like an expiry.
  await context.monitor.saveOperatorChange({ ...state, operator: { ...state.operator, mutedUntil: context.now } }, [history(context, host.id, "unmute", by, "")]);
  return `🔔 <b>${escapeHtml(host.id)}</b> unmuted.`;
}

type PhoneWindow = HostState["operator"]["maintenance"][number];

/** Phone windows with any open at `now` ended then, and those ended over 8 days ago dropped. */
function endPhoneWindows(windows: readonly PhoneWindow[], now: number): PhoneWindow[] {
  return windows
    .filter((window) => now - window.until <= MAINTENANCE_KEPT_MS)
    .map((window) => (window.from <= now && window.until > now ? { ...window, until: now } : window))
    .filter((window) => window.until > window.from);
}

/** Puts the host in maintenance from now for `durationMs` (replacing a phone window already open). */
async function startMaintenance(host: HostConfig, durationMs: number, by: string, context: WebhookContext): Promise<{ text: string; until: number }> {
  const { now, config } = context;
  const state = context.monitor.hostState(host.id);
  const maintenance = [...endPhoneWindows(state.operator.maintenance, now), { from: now, until: now + durationMs, by }];
  const operator = { ...state.operator, maintenance };
  // A configured window running on past it is merged: the answer says the real end.
  const until = activeMaintenance(host, config, operator, now)?.until ?? now + durationMs;
  await context.monitor.saveOperatorChange({ ...state, operator }, [
    history(context, host.id, "maintenance", by, `until ${new Date(until).toISOString().replace(/:00\.000Z$/, "Z")}`),
  ]);
  return {
    until,
    text:
      `🛠 <b>${escapeHtml(host.id)}</b> in maintenance until ${utcMoment(until, now)} (${escapeHtml(by)}): DARK and STALE are recorded, not paged. ` +
      "If it is still down when the window ends, it pages then. /maintenance " +
      `${escapeHtml(host.id)} off ends it.`,
  };
}

async function endMaintenance(host: HostConfig, by: string, context: WebhookContext): Promise<string> {
  const { now, config } = context;
  const state = context.monitor.hostState(host.id);
  const name = `<b>${escapeHtml(host.id)}</b>`;
  const phoneOpen = state.operator.maintenance.some((window) => window.from <= now && window.until > now);
  if (!phoneOpen) {
    const configured = activeMaintenance(host, config, state.operator, now);
    return configured === null
      ? `${name} is not in maintenance.`
      : `${name} is in a maintenance window from wrangler.toml until ${utcMoment(configured.until, now)}; /maintenance off ends only windows set from the phone.`;
  }
  const operator = { ...state.operator, maintenance: endPhoneWindows(state.operator.maintenance, now) };
  await context.monitor.saveOperatorChange({ ...state, operator }, [history(context, host.id, "maintenance_end", by, "ended from the phone")]);
  const still = activeMaintenance(host, config, operator, now);
  if (still !== null) return `🛠 ${name}: the window set from the phone is over, but one from wrangler.toml lasts until ${utcMoment(still.until, now)}.`;
  return `🛠 ${name} out of maintenance (${escapeHtml(by)}): a DARK or STALE still there pages now.`;
}

/** A confirmed pause not yet answered and not expired: it must stay queued. */
function confirmedPending(stored: StoredCommand | null, state: HostState, now: number): StoredCommand | null {
  if (stored === null || stored.confirmedAt === null || stored.command.expiresAt <= now) return null;
  if (state.record?.commandResult?.id === stored.command.id) return null;
  return stored;
}

async function askPause(host: HostConfig, reason: string, by: string, context: WebhookContext): Promise<Reply> {
  const state = context.monitor.hostState(host.id);
  const unavailable = pauseUnavailable(host, state);
  if (unavailable !== null) {
    return {
      text: host.allowRemotePause
        ? `Remote pause cannot work for <b>${escapeHtml(host.id)}</b>: ${escapeHtml(unavailable)}. Run the Node agent with --allow-remote-pause there.`
        : `Remote pause is off for <b>${escapeHtml(host.id)}</b>: set allowRemotePause = true for it in wrangler.toml, redeploy, and run its agent with --allow-remote-pause.`,
    };
  }
  const pending = confirmedPending(state.command, state, context.now);
  if (pending !== null) {
    // A second request must not replace (and so cancel) a pause already on its way.
    return {
      text: `⏸️ A pause for <b>${escapeHtml(host.id)}</b> is already queued (command ${escapeHtml(pending.command.id)}, by ${escapeHtml(pending.command.requestedBy)}); it stays queued until the host applies it or it expires at ${utcClock(pending.command.expiresAt)}.`,
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
  await context.monitor.saveOperatorChange({ ...state, command: stored }, [history(context, host.id, "pause_requested", by, reason)]);
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
  const hostId = hostPart === "" && commandId !== "" ? hostOfCommand(commandId, context) : hostPart;
  const host = findHost(context.config, hostId);
  const by = who(query.from);
  const sender: Sender = { chatId, userId: query.from.id };
  const answer = (text: string) => {
    context.calls.push({ method: "answerCallbackQuery", payload: { callback_query_id: query.id, text } });
  };
  if (host === undefined) {
    const gone = action === "pausec" || action === "pausex";
    answer(action === "noop" ? "" : gone ? "This pause request expired; send /pause again." : "Unknown host.");
    return;
  }
  const messageId = query.message?.message_id;
  const replaceHostRow = (label: string) => {
    const rows = query.message?.reply_markup?.inline_keyboard ?? [];
    const keyboard = rows.map((row) =>
      row.some((button) => button.callback_data?.endsWith(`|${host.id}`)) ? [{ text: label, callback_data: `noop|${host.id}` }] : row,
    );
    context.calls.push({ method: "editMessageReplyMarkup", payload: { chat_id: chatId, message_id: messageId, reply_markup: { inline_keyboard: keyboard } } });
  };
  const editText = (html: string) => {
    context.calls.push({ method: "editMessageText", payload: { chat_id: chatId, message_id: messageId, text: html, parse_mode: "HTML" } });
  };

  switch (action) {
    case "ack": {
      // The page may be older than its incident's recovery: say so rather than "acked".
      if ((await acknowledge(host, by, context)).length === 0) {
        answer(`Nothing to acknowledge on ${host.id}.`);
        return;
      }
      answer(`Acknowledged ${host.id}`);
      replaceHostRow(`✔️ ${host.id} acked by ${by} at ${utcClock(context.now)}`);
      return;
    }
    case "mute": {
      await mute(host, 3_600_000, by, context);
      answer(`${host.id} muted for 1 h`);
      replaceHostRow(`🔕 ${host.id} muted by ${by} until ${utcClock(context.now + 3_600_000)}`);
      return;
    }
    case "maint": {
      const { until } = await startMaintenance(host, MAINTENANCE_BUTTON_MS, by, context);
      answer(`${host.id} in maintenance for 2 h`);
      replaceHostRow(`🛠 ${host.id} in maintenance (${by}) until ${utcMoment(until, context.now)}`);
      return;
    }
    case "pause": {
      const refusal = pauseRefusal(context.config, sender, by);
      if (refusal !== null) {
        answer("Not allowed to pause");
        context.calls.push({ method: "sendMessage", payload: { chat_id: chatId, text: refusal, parse_mode: "HTML" } });
        return;
      }
      answer("Confirm below");
      const reply = await askPause(host, `from the phone by ${by}`, by, context);
      context.calls.push({ method: "sendMessage", payload: { chat_id: chatId, text: reply.text, parse_mode: "HTML", ...reply.extra } });
      return;
    }
    case "pausec": {
      const refusal = pauseRefusal(context.config, sender, by);
      if (refusal !== null) {
        answer("Not allowed to pause");
        return;
      }
      const state = context.monitor.hostState(host.id);
      const stored = state.command;
      if (stored === null || stored.command.id !== commandId || stored.command.expiresAt <= context.now) {
        answer("This pause request expired; send /pause again.");
        editText(`⏸️ Pause request for <b>${escapeHtml(host.id)}</b> expired.`);
        return;
      }
      if (stored.confirmedAt === null) {
        // Long enough for the agent to pick it up, and for the monitor to say if it did not.
        const expiresAt = context.now + Math.max(15 * 60_000, 2 * commandDeadlineMs(host));
        await context.monitor.saveOperatorChange({ ...state, command: { ...stored, confirmedAt: context.now, command: { ...stored.command, expiresAt } } }, [
          history(context, host.id, "pause_confirmed", by, `command ${commandId}`),
        ]);
      }
      answer("Pause queued");
      editText(
        `⏸️ Pause for <b>${escapeHtml(host.id)}</b> queued by ${escapeHtml(by)} at ${utcClock(context.now)} (command ${escapeHtml(commandId)}); waiting for the host to apply it.`,
      );
      return;
    }
    case "pausex": {
      const state = context.monitor.hostState(host.id);
      const stored = state.command;
      if (stored !== null && stored.command.id === commandId && stored.confirmedAt !== null) {
        // The agent may already have it: "cancelled" could be a lie about a kill switch.
        answer("Already confirmed: the pause stays queued. Resuming is a human edit on the host.");
        return;
      }
      // Only the request this button belongs to: a newer one stays.
      if (stored !== null && stored.command.id === commandId) {
        await context.monitor.saveOperatorChange({ ...state, command: null }, [history(context, host.id, "pause_cancelled", by, `command ${commandId}`)]);
      }
      answer("Cancelled");
      editText(`Pause for <b>${escapeHtml(host.id)}</b> cancelled by ${escapeHtml(by)}.`);
      return;
    }
    default:
      answer("");
  }
}

/** The host whose queued command has this id ("" if none). */
function hostOfCommand(commandId: string, context: WebhookContext): string {
  for (const [hostId, state] of context.monitor.allHosts()) if (state.command?.command.id === commandId) return hostId;
  return "";
}

function age(seconds: number | null): string {
  return seconds === null ? "?" : formatSeconds(seconds);
}

function statusTexts(context: WebhookContext, only: HostConfig | undefined): string[] {
  const hosts = only ? [only] : context.config.hosts;
  return renderStatus(hosts, context.monitor.allHosts(), context.monitor.monitorMeta(), context.monitor.outbox(), context.now, context.config, context.links.statusPage);
}

/** /status as the phone shows it: a few short lines per host, split at Telegram's limit. */
export function renderStatus(
  hosts: readonly HostConfig[],
  states: ReadonlyMap<string, HostState>,
  meta: MonitorMeta,
  outbox: readonly OutboxMessage[],
  now: number,
  config: Pick<Config, "alerts">,
  statusPage?: string,
): string[] {
  const blocks = hosts.map((host) => {
    const state = states.get(host.id);
    const record = state?.record ?? null;
    const conditions = Object.keys(state?.judgement.conditions ?? {});
    if (record === null && conditions.length === 0) {
      const since = Math.max(state?.judgement.firstJudgedAt ?? meta.createdAt, meta.listeningSince);
      return `⏳ <b>${escapeHtml(host.id)}</b>: waiting for its first ping; pages DARK at ${utcClock(since + host.darkAfterSeconds * 1000)} if none arrives`;
    }
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
      lines.push(`  last ping ${age((now - record.receivedAt) / 1000)} ago; heartbeat ${beat}`);
      lines.push(`  circuit ${breaker}; clock skew ${clockSkewSeconds(record).toFixed(1)} s`);
    }
    const mutedUntil = state?.operator.mutedUntil ?? null;
    if (mutedUntil !== null && mutedUntil > now) lines.push(`  muted until ${utcClock(mutedUntil)}`);
    const maintenance = state === undefined ? null : activeMaintenance(host, config, state.operator, now);
    if (maintenance !== null) {
      const origin = maintenance.source === "phone" ? `set by ${escapeHtml(maintenance.by ?? "?")}` : "from wrangler.toml";
      lines.push(`  🛠 maintenance until ${utcMoment(maintenance.until, now)} (${origin}): DARK and STALE not paged`);
    }
    return lines.join("\n");
  });
  const cron = meta.lastCronAt === null ? "cron has not run yet" : `cron last ran ${age((now - meta.lastCronAt) / 1000)} ago`;
  const delivery = meta.telegram.permanentError !== null ? `; ⚠️ pages cannot be delivered: ${escapeHtml(meta.telegram.permanentError)}` : outbox.length > 0 ? `; ${outbox.length} page(s) waiting` : "";
  const link = statusPage === undefined ? [] : [`🔗 <a href="${escapeHtml(statusPage)}">Status page</a> (this link signs you in for a day)`];
  return splitLines("<b>witness status</b>", [...blocks, `${cron}${delivery}`, ...link]);
}
