// Maintenance windows: when a host is expected to be down, so DARK and STALE are
// recorded but not paged. Two sources: weekly windows in the host's configuration
// (wall-clock times in a zone; luxon does the DST arithmetic, as in calendar.ts) and
// windows set from the phone (/maintenance, the page's button), kept in OperatorState.
//
// Wall-clock times that do not exist or exist twice on a DST day follow luxon, always
// setting the time from the local midnight: a time skipped by the spring-forward jump is
// moved forward by the gap (02:30 in New York on 2026-03-08 is 03:30 EDT), and a time
// repeated by the fall-back is its first occurrence (01:30 on 2026-11-01 is 01:30 EDT).
// A window lying wholly inside the skipped hour (02:30-03:00) does not happen that day.
import { DateTime } from "luxon";
import type { Config, HostConfig, MaintenanceWindow, Weekday } from "../config.ts";
import type { OperatorState } from "../monitor/state.ts";

const DAY_MS = 86_400_000;
/** How far ahead a chain of back-to-back windows is followed (windows are weekly). */
const LOOKAHEAD_MS = 8 * DAY_MS;

const WEEKDAY_BY_LUXON: Record<number, Weekday> = { 1: "mon", 2: "tue", 3: "wed", 4: "thu", 5: "fri", 6: "sat", 7: "sun" };

export type MaintenanceSource = "config" | "phone";

/** One window occurrence, Worker ms: from <= t < to. */
export interface MaintenanceSpan {
  from: number;
  to: number;
  source: MaintenanceSource;
  by?: string;
}

/** The window a host is in now; `until` is the end of every window merged with it. */
export interface ActiveMaintenance {
  until: number;
  source: MaintenanceSource;
  by?: string;
}

type ZoneConfig = Pick<Config, "alerts">;
type PhoneWindows = Pick<OperatorState, "maintenance">;

/** The zone a configured window's times are in: its own, else the host calendar's, else the operator's. */
export function windowZone(window: MaintenanceWindow, host: Pick<HostConfig, "calendar">, config: ZoneConfig): string {
  return window.timezone ?? host.calendar?.timezone ?? config.alerts.timezone;
}

function atClock(day: DateTime, hhmm: string): DateTime {
  const [hour = 0, minute = 0] = hhmm.split(":").map(Number);
  return day.set({ hour, minute, second: 0, millisecond: 0 });
}

/** Occurrences of one configured window that overlap [from, to). */
function windowOccurrences(window: MaintenanceWindow, zone: string, from: number, to: number): MaintenanceSpan[] {
  const spans: MaintenanceSpan[] = [];
  const overnight = window.to < window.from;
  // A window that started the day before `from` may still be open at `from`.
  let day = DateTime.fromMillis(from, { zone }).startOf("day").minus({ days: 1 });
  while (day.toMillis() < to) {
    const weekday = WEEKDAY_BY_LUXON[day.weekday];
    if (weekday !== undefined && window.days.includes(weekday)) {
      const start = atClock(day, window.from).toMillis();
      const end = atClock(overnight ? day.plus({ days: 1 }) : day, window.to).toMillis();
      if (end > start && end > from && start < to) spans.push({ from: start, to: end, source: "config" });
    }
    day = day.plus({ days: 1 });
  }
  return spans;
}

function computeConfigSpans(host: HostConfig, config: ZoneConfig, from: number, to: number): MaintenanceSpan[] {
  return host.maintenance.flatMap((window) => windowOccurrences(window, windowZone(window, host, config), from, to));
}

// The monitor asks on every ping and every run, and time-zone arithmetic is its largest
// CPU cost (see calendar.ts): the configured occurrences are computed once for a
// stretch of days and reused while `now` stays in its first day.
const MAX_CACHED = 512;
const cached = new Map<string, { validFrom: number; validUntil: number; spans: MaintenanceSpan[] }>();
const keys = new WeakMap<HostConfig, string>();

function configKey(host: HostConfig, config: ZoneConfig): string {
  let key = keys.get(host);
  if (key === undefined) {
    key = JSON.stringify(host.maintenance.map((window) => [window.days, window.from, window.to, windowZone(window, host, config)]));
    keys.set(host, key);
  }
  return key;
}

/** Configured occurrences overlapping [now, now + 8 days) at least. */
function configSpansAround(host: HostConfig, config: ZoneConfig, now: number): MaintenanceSpan[] {
  if (host.maintenance.length === 0) return [];
  const key = configKey(host, config);
  const known = cached.get(key);
  if (known !== undefined && known.validFrom <= now && now < known.validUntil) return known.spans;
  if (cached.size >= MAX_CACHED) cached.clear();
  const entry = { validFrom: now, validUntil: now + DAY_MS, spans: computeConfigSpans(host, config, now, now + DAY_MS + LOOKAHEAD_MS) };
  cached.set(key, entry);
  return entry.spans;
}

function phoneSpans(operator: PhoneWindows, from: number, to: number): MaintenanceSpan[] {
  return operator.maintenance
    .filter((window) => window.until > window.from && window.until > from && window.from < to)
    .map((window) => ({ from: window.from, to: window.until, source: "phone" as const, by: window.by }));
}

function byStart(a: MaintenanceSpan, b: MaintenanceSpan): number {
  return a.from - b.from || a.to - b.to;
}

/**
 * Every window occurrence, configured and phoned, that overlaps [from, to), sorted by
 * start. Not merged and not clipped, so a timeline can tell the sources apart and show
 * where each really begins and ends.
 */
export function maintenanceSpans(host: HostConfig, config: ZoneConfig, operator: PhoneWindows, from: number, to: number): MaintenanceSpan[] {
  return [...computeConfigSpans(host, config, from, to), ...phoneSpans(operator, from, to)].sort(byStart);
}

/**
 * The window the host is in at `now`, or null. Overlapping and back-to-back windows
 * merge (followed up to 8 days ahead), so `until` is when the host really leaves
 * maintenance; source and by are those of the window that ends then.
 */
export function activeMaintenance(host: HostConfig, config: ZoneConfig, operator: PhoneWindows, now: number): ActiveMaintenance | null {
  if (host.maintenance.length === 0 && operator.maintenance.length === 0) return null;
  const horizon = now + LOOKAHEAD_MS;
  const spans = [...configSpansAround(host, config, now), ...phoneSpans(operator, now, horizon)].filter((span) => span.to > now).sort(byStart);
  let current: MaintenanceSpan | null = null;
  for (const span of spans) {
    if (current === null) {
      if (span.from > now) break;
      current = span;
    } else if (span.from <= current.to) {
      if (span.to > current.to) current = span;
    } else {
      break;
    }
    if (current.to >= horizon) break;
  }
  if (current === null) return null;
  return { until: Math.min(current.to, horizon), source: current.source, ...(current.by === undefined ? {} : { by: current.by }) };
}
