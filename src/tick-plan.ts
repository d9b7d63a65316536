// The pure half of a cron tick: from what KV holds (the cron's own state, every host's
// record, the operator's acks, mutes and commands) and `now`, the next state and the
// messages to queue. No clock, KV or fetch in here; scheduled.ts does the I/O.
import { localDay } from "./calendar.ts";
import { reviewFollowUps } from "./follow-ups.ts";
import type { Config } from "./config.ts";
import { formatSeconds } from "./format.ts";
import { type AlertEvent, type HostJudgement, judgeHost, type OperatorView } from "./judge.ts";
import { escapeHtml, renderDegradedOver, renderTick, splitLines } from "./messages.ts";
import type { PingRecord } from "./records.ts";
import {
  type CronState,
  emptyCronState,
  type FollowUps,
  type InlineButton,
  type OperatorState,
  type OutboxMessage,
  type StoredCommand,
} from "./store.ts";

const DAY_MS = 86_400_000;
/** Undelivered pages kept at most; past this the oldest are dropped (and that is said). */
const MAX_OUTBOX = 50;

export interface TickInputs {
  stored: CronState | null;
  records: ReadonlyMap<string, PingRecord | null>;
  operators: ReadonlyMap<string, OperatorState | null>;
  commands: ReadonlyMap<string, StoredCommand | null>;
}

export interface TickPlan {
  next: CronState;
  events: AlertEvent[];
  newMessages: OutboxMessage[];
  /** Whether the next state must be written even if nothing is sent. */
  mustWrite: boolean;
}

function operatorView(state: OperatorState | null | undefined): OperatorView {
  return { acked: state?.acked.map((ack) => ack.incidentId) ?? [], mutedUntil: state?.mutedUntil ?? null };
}

export function planTick(config: Config, inputs: TickInputs, now: number): TickPlan {
  const { stored, records, operators, commands } = inputs;
  const hostIds = config.hosts.map((host) => host.id);
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
  if (stored === null) notices.push(...renderWatching(config));
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

  const next: CronState = {
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
  const tickRecordDue = now - state.lastTickAt >= config.timing.tickRecordSeconds * 1000;
  const mustWrite = changed || newMessages.length > 0 || state.degradedSince !== null || state.configErrorPaged !== null || tickRecordDue;
  return { next, events, newMessages, mustWrite };
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

/** Split like a page: with many hosts the list alone passes Telegram's 4096 characters. */
function renderWatching(config: Config): string[] {
  const lines = config.hosts.map(
    (host) => `• <b>${escapeHtml(host.id)}</b>: ping every ${host.intervalSeconds} s, dark after ${formatSeconds(host.darkAfterSeconds)}`,
  );
  return splitLines(`👋 <b>witness</b> is watching ${config.hosts.length} host(s):`, lines);
}

function renderDigest(config: Config, hosts: Record<string, HostJudgement>, state: CronState, now: number): string {
  const open = config.hosts.flatMap((host) => Object.keys(hosts[host.id]?.conditions ?? {}).map((kind) => `${host.id} ${kind}`));
  const pages = state.pagesSentAt.filter((at) => now - at < DAY_MS).length;
  const status = open.length === 0 ? "all quiet" : `open: ${escapeHtml(open.join(", "))}`;
  return `☀️ <b>witness daily</b>: ${status}. ${config.hosts.length} host(s) watched, ${pages} page(s) in the last 24 h, cron running (this message proves the path to your phone works).`;
}

