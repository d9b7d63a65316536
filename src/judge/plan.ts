// The pure half of a monitor run: from every host's state, the monitor's own state and
// `now`, the next states, the alert events and the messages to queue. No clock, storage
// or fetch in here; the monitor object (monitor/core.ts) does the I/O around it.
import { localDay } from "./calendar.ts";
import type { Config, HostConfig } from "../config.ts";
import { reviewFollowUps } from "./follow-ups.ts";
import { formatSeconds } from "../format.ts";
import { type AlertEvent, isProblem, judgeHost, type OperatorView } from "./judge.ts";
import { activeMaintenance } from "./maintenance.ts";
import { escapeHtml, renderTick, splitLines } from "../phone/messages.ts";
import type { HostState, InlineButton, MonitorMeta, OperatorState } from "../monitor/state.ts";

const DAY_MS = 86_400_000;

export interface PlannedMessage {
  text: string;
  buttons?: InlineButton[][];
}

export interface HostPlan {
  state: HostState;
  events: AlertEvent[];
  notes: string[];
  /** Whether the state differs in a way worth a write. */
  changed: boolean;
}

export function operatorView(state: OperatorState): OperatorView {
  return { acked: state.acked.map((ack) => ack.incidentId), mutedUntil: state.mutedUntil };
}

/** Judges one host and reviews the operator's follow-ups for it. */
export function planHost(
  config: Config,
  host: HostConfig,
  previous: HostState,
  observed: "ping" | "time",
  listeningSince: number,
  now: number,
): HostPlan {
  const result = judgeHost({
    host,
    config,
    record: previous.record,
    previous: previous.judgement,
    operator: operatorView(previous.operator),
    observed,
    listeningSince,
    clockRefusal: previous.clockRefusal,
    maintenance: activeMaintenance(host, config, previous.operator, now),
    now,
  });
  const review = reviewFollowUps({
    host,
    timing: config.timing,
    previous: previous.followUps,
    operator: previous.operator,
    command: previous.command,
    record: previous.record,
    openConditions: Object.keys(result.judgement.conditions),
    now,
  });
  return {
    state: { ...previous, judgement: result.judgement, followUps: review.followUps },
    events: result.events,
    notes: review.lines,
    changed: result.changed || review.changed,
  };
}

/** One run's changes as messages: the buttons go under the last part of the page. */
export function planMessages(
  config: Config,
  events: readonly AlertEvent[],
  notes: readonly string[],
  hosts: ReadonlyMap<string, HostState>,
): PlannedMessage[] {
  const texts = renderTick(events, notes);
  const buttons = pageButtons(events, config, hosts);
  return texts.map((text, index) => (index === texts.length - 1 && buttons.length > 0 ? { text, buttons } : { text }));
}

/** How long the page's maintenance button puts a host in maintenance. */
export const MAINTENANCE_BUTTON_MS = 2 * 3_600_000;

/**
 * Acknowledge, mute and (where the host and its agent allow it) pause buttons for every
 * host with a new or repeated problem, and a maintenance button for a host paged DARK
 * (a host being worked on is the usual reason). Callback data: "<action>|<hostId>", at
 * most 64 bytes.
 */
export function pageButtons(events: readonly AlertEvent[], config: Config, hosts: ReadonlyMap<string, HostState>): InlineButton[][] {
  const problems = events.filter(isProblem);
  const hostIds = [...new Set(problems.map((event) => event.hostId))];
  return hostIds.map((hostId) => {
    const host = config.hosts.find((candidate) => candidate.id === hostId);
    const row: InlineButton[] = [
      { text: `✔️ Ack ${hostId}`, data: `ack|${hostId}` },
      { text: "🔕 Mute 1 h", data: `mute|${hostId}` },
    ];
    if (host !== undefined && canPause(host, hosts.get(hostId) ?? null)) row.push({ text: "⏸️ Pause trading", data: `pause|${hostId}` });
    if (problems.some((event) => event.hostId === hostId && event.kind === "dark")) row.push({ text: "🛠 Maintenance 2 h", data: `maint|${hostId}` });
    return row.filter((button) => new TextEncoder().encode(button.data).length <= 64);
  });
}

/** Why a pause cannot work for this host, or null when it can. */
export function pauseUnavailable(host: HostConfig, state: HostState | null): string | null {
  if (!host.allowRemotePause) return "remote pause is off for it (allowRemotePause = false in wrangler.toml)";
  if (state?.record?.agent.kind === "shell") return "its agent is the shell agent, which cannot write circuit.json";
  return null;
}

export function canPause(host: HostConfig, state: HostState | null): boolean {
  return pauseUnavailable(host, state) === null;
}

/** Notices that belong to the monitor rather than to a host: the daily digest, the first run. */
export function planNotices(
  config: Config,
  hosts: ReadonlyMap<string, HostState>,
  meta: MonitorMeta,
  firstRun: boolean,
  now: number,
): { texts: string[]; digestDate: string | null } {
  const texts: string[] = [];
  if (firstRun) texts.push(...renderWatching(config));
  if (meta.configErrorPaged !== null) texts.push(`✅ <b>witness</b>: configuration valid again; watching ${config.hosts.length} host(s).`);
  let digestDate = meta.digestDate;
  if (config.alerts.digestAt !== null) {
    const today = localDay(config.alerts.timezone, now, config.alerts.digestAt);
    if (today.reached && digestDate !== today.date) {
      // The first run after deploy counts as today's digest: the "watching" notice proves the path.
      if (!firstRun) texts.push(renderDigest(config, hosts, meta, now));
      digestDate = today.date;
    }
  }
  return { texts, digestDate };
}

/** Split like a page: with many hosts the list alone passes Telegram's 4096 characters. */
function renderWatching(config: Config): string[] {
  const lines = config.hosts.map(
    (host) => `• <b>${escapeHtml(host.id)}</b>: ping every ${host.intervalSeconds} s, dark after ${formatSeconds(host.darkAfterSeconds)}`,
  );
  return splitLines(`👋 <b>witness</b> is watching ${config.hosts.length} host(s):`, lines);
}

function renderDigest(config: Config, hosts: ReadonlyMap<string, HostState>, meta: MonitorMeta, now: number): string {
  const open = config.hosts.flatMap((host) => Object.keys(hosts.get(host.id)?.judgement.conditions ?? {}).map((kind) => `${host.id} ${kind}`));
  const pages = meta.pagesSentAt.filter((at) => now - at < DAY_MS).length;
  const status = open.length === 0 ? "all quiet" : `open: ${escapeHtml(open.join(", "))}`;
  const cronLate = meta.lastCronAt === null || now - meta.lastCronAt > 3 * config.timing.cronPeriodSeconds * 1000;
  const cron = cronLate
    ? `⚠️ the cron (the safety net) has not run ${meta.lastCronAt === null ? "yet" : `since ${new Date(meta.lastCronAt).toISOString().slice(0, 16)}Z`}: check the Worker's triggers`
    : "monitor and cron running";
  return `☀️ <b>witness daily</b>: ${status}. ${config.hosts.length} host(s) watched, ${pages} page(s) in the last 24 h, ${cron} (this message proves the path to your phone works).`;
}
