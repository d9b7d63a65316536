// The cron tick: read every host's record, judge, queue one message for all changes,
// persist, deliver. The state is written before anything is sent, so a tick whose
// write fails sends nothing it could repeat; and when KV itself fails, the operator
// hears once that the monitor is degraded instead of "every host is dark".
import { localDay } from "./calendar.ts";
import { type Config, ConfigError } from "./config.ts";
import { type AlertEvent, judgeHost, type HostJudgement, type OperatorView } from "./judge.ts";
import { loadConfig, telegramTargetFromRaw } from "./load-config.ts";
import { escapeHtml, renderConfigError, renderDegraded, renderDegradedOver, renderTick } from "./messages.ts";
import { reviewFollowUps } from "./follow-ups.ts";
import {
  type CronState,
  emptyCronState,
  type FollowUps,
  type InlineButton,
  type OperatorState,
  type OutboxMessage,
  Store,
  type StoredCommand,
} from "./store.ts";
import { deliverOutbox, type Fetch, TelegramClient } from "./telegram.ts";

const DAY_MS = 86_400_000;
/** Undelivered pages kept at most; past this the oldest are dropped (and that is said). */
const MAX_OUTBOX = 50;
const DEGRADED_NOTICE_EVERY_MS = 3_600_000;

export interface TickDeps {
  now: () => number;
  fetch: Fetch;
  sleep: (ms: number) => Promise<void>;
}

export interface TickSummary {
  outcome: "judged" | "misconfigured" | "degraded";
  events: AlertEvent[];
  delivered: number;
  undelivered: number;
  wrote: number;
}

export const realDeps: TickDeps = {
  now: () => Date.now(),
  fetch: (input, init) => fetch(input, init),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

function operatorView(state: OperatorState | null | undefined): OperatorView {
  return { acked: state?.acked.map((ack) => ack.incidentId) ?? [], mutedUntil: state?.mutedUntil ?? null };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export async function runTick(env: Env, deps: TickDeps = realDeps): Promise<TickSummary> {
  const now = deps.now();
  const store = new Store(env.WITNESS_KV);
  let config: Config;
  try {
    config = loadConfig(env.WITNESS_CONFIG);
  } catch (error) {
    if (error instanceof ConfigError) return pageConfigError(env, store, error.message, now, deps);
    throw error;
  }
  const telegram = new TelegramClient(config.telegram.baseUrl, env.TELEGRAM_BOT_TOKEN, deps.fetch);
  const hostIds = config.hosts.map((host) => host.id);

  let stored: CronState | null;
  let records: Map<string, Awaited<ReturnType<Store["getPingRecord"]>>>;
  let operators: Map<string, OperatorState | null>;
  let commands: Map<string, StoredCommand | null>;
  try {
    [stored, records, operators, commands] = await Promise.all([
      store.getCronState(),
      store.getPingRecords(hostIds),
      store.getOperatorStates(hostIds),
      store.getCommands(hostIds),
    ]);
  } catch (error) {
    return reportDegraded(telegram, config, `read failed: ${describe(error)}`, now);
  }

  const state: CronState = stored ?? { ...emptyCronState(now), lastTickAt: 0 };
  const events: AlertEvent[] = [];
  const hosts: Record<string, HostJudgement> = {};
  const followUps: Record<string, FollowUps> = {};
  const notes: string[] = [];
  let changed = stored === null || Object.keys(state.hosts).some((id) => !hostIds.includes(id));
  for (const host of config.hosts) {
    const record = records.get(host.id) ?? null;
    const operator = operators.get(host.id) ?? null;
    const result = judgeHost({ host, config, record, previous: state.hosts[host.id], operator: operatorView(operator), now });
    hosts[host.id] = result.judgement;
    events.push(...result.events);
    changed ||= result.changed;

    const review = reviewFollowUps({
      host,
      timing: config.timing,
      previous: state.followUps[host.id],
      operator,
      command: commands.get(host.id) ?? null,
      record,
      openConditions: Object.keys(result.judgement.conditions),
      now,
    });
    followUps[host.id] = review.followUps;
    notes.push(...review.lines);
    changed ||= review.changed;
  }

  const notices: string[] = [];
  if (stored === null) notices.push(renderWatching(config));
  if (state.degradedSince !== null) notices.push(renderDegradedOver(state.degradedSince, now));
  if (state.configErrorPaged !== null) notices.push(`✅ <b>witness</b>: configuration valid again; watching ${config.hosts.length} host(s).`);
  let digestDate = state.digestDate;
  if (config.alerts.digestAt !== null) {
    const today = localDay(config.alerts.timezone, now, config.alerts.digestAt);
    if (today.reached && digestDate !== today.date) {
      // The first tick after deploy counts as today's digest: the "watching" notice proves the path.
      if (stored !== null) notices.push(renderDigest(config, hosts, state, now));
      digestDate = today.date;
      changed = true;
    }
  }

  const tickTexts = renderTick(events, notes);
  const buttons = pageButtons(events, config);
  const newMessages: OutboxMessage[] = [...notices, ...tickTexts].map((text, index, all) => ({
    id: `${now}-${index}`,
    createdAt: now,
    text,
    attempts: 0,
    // The buttons go under the last part of the tick's page.
    ...(index === all.length - 1 && tickTexts.length > 0 && buttons.length > 0 ? { buttons } : {}),
  }));
  const pagesSentAt = state.pagesSentAt.filter((at) => now - at < DAY_MS);
  if (events.some((event) => event.type !== "recovery")) pagesSentAt.push(now);

  let next: CronState = {
    ...state,
    lastTickAt: now,
    hosts,
    followUps,
    outbox: capOutbox([...state.outbox, ...newMessages], now),
    pagesSentAt,
    digestDate,
    configErrorPaged: null,
    degradedSince: null,
  };

  let wrote = 0;
  const tickRecordDue = now - state.lastTickAt >= config.timing.tickRecordSeconds * 1000;
  if (changed || newMessages.length > 0 || state.degradedSince !== null || state.configErrorPaged !== null || tickRecordDue) {
    try {
      await store.putCronState(next);
      wrote++;
    } catch (error) {
      // Nothing is sent that could not be remembered as sent: it would repeat every tick.
      return reportDegraded(telegram, config, `write failed: ${describe(error)}`, now);
    }
  }

  const delivered = await deliver(telegram, config.telegram.chatId, next, deps);
  if (delivered.changed) {
    next = delivered.state;
    try {
      await store.putCronState(next);
      wrote++;
    } catch (error) {
      console.error(`cron: delivered pages but could not record it (${describe(error)}); they may be sent again`);
    }
  }

  await pingDeadMan(config, deps);
  return {
    outcome: "judged",
    events,
    delivered: delivered.count,
    undelivered: next.outbox.length,
    wrote,
  };
}

/**
 * Acknowledge, mute and (where the host allows it) pause buttons for every host with a
 * new or repeated problem this tick. Callback data: "<action>|<hostId>", at most 64 bytes.
 */
export function pageButtons(events: readonly AlertEvent[], config: Config): InlineButton[][] {
  const hostIds = [...new Set(events.filter((event) => event.type !== "recovery").map((event) => event.hostId))];
  return hostIds.map((hostId) => {
    const host = config.hosts.find((candidate) => candidate.id === hostId);
    const row: InlineButton[] = [
      { text: `✔️ Ack ${hostId}`, data: `ack|${hostId}` },
      { text: "🔕 Mute 1 h", data: `mute|${hostId}` },
    ];
    if (host?.allowRemotePause) row.push({ text: "⏸️ Pause trading", data: `pause|${hostId}` });
    return row.filter((button) => new TextEncoder().encode(button.data).length <= 64);
  });
}

function inlineKeyboard(buttons: OutboxMessage["buttons"]): unknown {
  if (buttons === undefined || buttons.length === 0) return undefined;
  return { inline_keyboard: buttons.map((row) => row.map((button) => ({ text: button.text, callback_data: button.data }))) };
}

function capOutbox(outbox: OutboxMessage[], now: number): OutboxMessage[] {
  if (outbox.length <= MAX_OUTBOX) return outbox;
  const dropped = outbox.length - MAX_OUTBOX + 1;
  const notice: OutboxMessage = {
    id: `${now}-dropped`,
    createdAt: now,
    text: `⚠️ <b>witness</b>: ${dropped} older undelivered message(s) were dropped while Telegram was unreachable.`,
    attempts: 0,
  };
  return [notice, ...outbox.slice(dropped)];
}

async function deliver(
  telegram: TelegramClient,
  chatId: string,
  state: CronState,
  deps: TickDeps,
): Promise<{ state: CronState; changed: boolean; count: number }> {
  if (state.outbox.length === 0) return { state, changed: false, count: 0 };
  const report = await deliverOutbox(state.outbox, (message) => telegram.sendMessage(chatId, message.text, inlineKeyboard(message.buttons)), {
    maxWaitMs: 15_000,
    maxCalls: 20,
    sleep: deps.sleep,
  });
  const errorChanged = report.permanentError !== state.telegram.permanentError;
  const changed = report.delivered.length > 0 || errorChanged || report.remaining.length !== state.outbox.length;
  return {
    changed,
    count: report.delivered.length,
    state: {
      ...state,
      outbox: report.remaining,
      telegram: {
        lastDeliveredAt: report.delivered.length > 0 ? state.lastTickAt : state.telegram.lastDeliveredAt,
        permanentError: report.permanentError,
      },
    },
  };
}

async function pingDeadMan(config: Config, deps: TickDeps): Promise<void> {
  if (config.alerts.deadManUrl === null) return;
  try {
    const response = await deps.fetch(config.alerts.deadManUrl, { method: "GET", signal: AbortSignal.timeout(5000) });
    if (!response.ok) console.error(`cron: dead-man URL answered ${response.status}`);
  } catch (error) {
    console.error(`cron: dead-man URL unreachable: ${describe(error)}`);
  }
}

function renderWatching(config: Config): string {
  const lines = config.hosts.map(
    (host) => `• <b>${escapeHtml(host.id)}</b>: ping every ${host.intervalSeconds} s, dark after ${Math.round(host.darkAfterSeconds / 60)} min`,
  );
  return [`👋 <b>witness</b> is watching ${config.hosts.length} host(s):`, ...lines].join("\n");
}

function renderDigest(config: Config, hosts: Record<string, HostJudgement>, state: CronState, now: number): string {
  const open = config.hosts.flatMap((host) => Object.keys(hosts[host.id]?.conditions ?? {}).map((kind) => `${host.id} ${kind}`));
  const pages = state.pagesSentAt.filter((at) => now - at < DAY_MS).length;
  const status = open.length === 0 ? "all quiet" : `open: ${escapeHtml(open.join(", "))}`;
  return `☀️ <b>witness daily</b>: ${status}. ${config.hosts.length} host(s) watched, ${pages} page(s) in the last 24 h, cron running (this message proves the path to your phone works).`;
}

// ---- degraded and misconfigured: said once, never as "every host is dark" ----

/**
 * When KV cannot be written nothing can be remembered, so "once" is kept in memory and
 * in the edge cache (both best effort), limiting the notice to one an hour per place.
 */
let lastDegradedNoticeAt: number | null = null;
const DEGRADED_CACHE_KEY = "https://witness.invalid/degraded-notice";

async function degradedNoticeDue(now: number): Promise<boolean> {
  if (lastDegradedNoticeAt !== null && now - lastDegradedNoticeAt < DEGRADED_NOTICE_EVERY_MS) return false;
  try {
    const cached = await caches.default.match(DEGRADED_CACHE_KEY);
    const noticeAt = cached === undefined ? Number.NaN : Number(await cached.text());
    if (now - noticeAt < DEGRADED_NOTICE_EVERY_MS) {
      lastDegradedNoticeAt = noticeAt;
      return false;
    }
  } catch {
    // The cache is only a helper here.
  }
  return true;
}

async function rememberDegradedNotice(now: number): Promise<void> {
  lastDegradedNoticeAt = now;
  try {
    await caches.default.put(
      DEGRADED_CACHE_KEY,
      new Response(String(now), { headers: { "cache-control": `max-age=${DEGRADED_NOTICE_EVERY_MS / 1000}` } }),
    );
  } catch {
    // Best effort.
  }
}

async function reportDegraded(telegram: TelegramClient, config: Config, error: string, now: number): Promise<TickSummary> {
  console.error(`cron: KV degraded: ${error}`);
  let delivered = 0;
  if (await degradedNoticeDue(now)) {
    const result = await telegram.sendMessage(config.telegram.chatId, renderDegraded(error, now));
    if (result.ok) {
      delivered = 1;
      await rememberDegradedNotice(now);
    } else {
      console.error(`cron: could not send the degraded notice: ${result.error}`);
    }
  }
  return { outcome: "degraded", events: [], delivered, undelivered: 0, wrote: 0 };
}

async function pageConfigError(env: Env, store: Store, message: string, now: number, deps: TickDeps): Promise<TickSummary> {
  console.error(`cron: configuration error: ${message}`);
  const summary: TickSummary = { outcome: "misconfigured", events: [], delivered: 0, undelivered: 0, wrote: 0 };
  const target = telegramTargetFromRaw(env.WITNESS_CONFIG);
  let state: CronState | null;
  try {
    state = await store.getCronState();
  } catch {
    return summary;
  }
  if (state?.configErrorPaged === message) return summary;
  if (target !== null) {
    const telegram = new TelegramClient(target.baseUrl, env.TELEGRAM_BOT_TOKEN, deps.fetch);
    const result = await telegram.sendMessage(target.chatId, renderConfigError(message));
    if (!result.ok) {
      console.error(`cron: could not page the configuration error: ${result.error}`);
      return summary;
    }
    summary.delivered = 1;
  }
  try {
    await store.putCronState({ ...(state ?? emptyCronState(now)), configErrorPaged: message });
    summary.wrote = 1;
  } catch (error) {
    console.error(`cron: could not record the configuration error page: ${describe(error)}`);
  }
  return summary;
}
