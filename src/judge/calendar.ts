// Trading sessions and local wall-clock times. Luxon does the time-zone arithmetic
// (DST included); this module only knows what a session is: a trading weekday that is
// not a holiday, from open to close in the calendar's zone (close before open means the
// session runs past midnight into the next day).
import { DateTime } from "luxon";
import type { Calendar, Weekday } from "../config.ts";

const WEEKDAY_BY_LUXON: Record<number, Weekday> = { 1: "mon", 2: "tue", 3: "wed", 4: "thu", 5: "fri", 6: "sat", 7: "sun" };

function parseClock(hhmm: string): { hour: number; minute: number } {
  const [hour = 0, minute = 0] = hhmm.split(":").map(Number);
  return { hour, minute };
}

function isTradingDay(calendar: Calendar, day: DateTime): boolean {
  const weekday = WEEKDAY_BY_LUXON[day.weekday];
  return weekday !== undefined && calendar.weekdays.includes(weekday) && !calendar.holidays.includes(day.toISODate() ?? "");
}

function atClock(day: DateTime, hhmm: string): DateTime {
  const { hour, minute } = parseClock(hhmm);
  return day.set({ hour, minute, second: 0, millisecond: 0 });
}

// Time-zone arithmetic through Intl is the monitor's largest CPU cost when it judges
// many hosts at once, and its answers only change at session edges and midnights. So
// each answer is kept with the interval in which it holds, and reused inside it.
const MAX_CACHED = 512;

function remember<T>(cache: Map<string, T>, key: string, value: T): T {
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(key, value);
  return value;
}

const calendarKeys = new WeakMap<Calendar, string>();

function calendarKey(calendar: Calendar): string {
  let key = calendarKeys.get(calendar);
  if (key === undefined) {
    key = JSON.stringify([calendar.timezone, calendar.weekdays, calendar.open, calendar.close, calendar.holidays]);
    calendarKeys.set(calendar, key);
  }
  return key;
}

interface SessionSpan {
  /** The span holds for from <= now < until. */
  from: number;
  until: number;
  openedAt: number | null;
  /** The session edge at `until`, or null if none within eight days. */
  nextEdge: number | null;
}

const sessionSpans = new Map<string, SessionSpan>();

function sessionSpan(calendar: Calendar, nowMs: number): SessionSpan {
  const key = calendarKey(calendar);
  const known = sessionSpans.get(key);
  if (known !== undefined && known.from <= nowMs && nowMs < known.until) return known;
  const nextEdge = computeNextSessionBoundary(calendar, nowMs);
  return remember(sessionSpans, key, {
    from: nowMs,
    until: nextEdge ?? nowMs + 86_400_000,
    openedAt: computeSessionOpenedAt(calendar, nowMs),
    nextEdge,
  });
}

/**
 * When the session containing `nowMs` opened (Unix ms), or null outside sessions.
 * No calendar means always in session, open since the epoch.
 */
export function sessionOpenedAt(calendar: Calendar | null, nowMs: number): number | null {
  if (calendar === null) return 0;
  return sessionSpan(calendar, nowMs).openedAt;
}

function computeSessionOpenedAt(calendar: Calendar, nowMs: number): number | null {
  const now = DateTime.fromMillis(nowMs, { zone: calendar.timezone });
  const today = now.startOf("day");
  const overnight = calendar.close <= calendar.open;
  // A session that started today, or (overnight sessions) one that started yesterday.
  for (const start of overnight ? [today, today.minus({ days: 1 })] : [today]) {
    if (!isTradingDay(calendar, start)) continue;
    const open = atClock(start, calendar.open);
    const close = atClock(overnight ? start.plus({ days: 1 }) : start, calendar.close);
    if (now >= open && now < close) return open.toMillis();
  }
  return null;
}

interface LocalDaySpan {
  /** The local day: start <= now < end. */
  start: number;
  end: number;
  date: string;
  /** When the local clock reads hhmm that day. */
  at: number;
}

const localDays = new Map<string, LocalDaySpan>();

function localDaySpan(timezone: string, nowMs: number, hhmm: string): LocalDaySpan {
  const key = `${timezone}|${hhmm}`;
  const known = localDays.get(key);
  if (known !== undefined && known.start <= nowMs && nowMs < known.end) return known;
  const day = DateTime.fromMillis(nowMs, { zone: timezone }).startOf("day");
  return remember(localDays, key, {
    start: day.toMillis(),
    end: day.plus({ days: 1 }).toMillis(),
    date: day.toISODate() ?? "",
    at: atClock(day, hhmm).toMillis(),
  });
}

/** The local calendar date (YYYY-MM-DD) and whether the local time has reached `hhmm`. */
export function localDay(timezone: string, nowMs: number, hhmm: string): { date: string; reached: boolean } {
  const span = localDaySpan(timezone, nowMs, hhmm);
  return { date: span.date, reached: nowMs >= span.at };
}

/** A wall-clock rendering for messages, in the given zone: "2026-11-23 09:31 EST". */
export function formatLocal(timezone: string, ms: number): string {
  return DateTime.fromMillis(ms, { zone: timezone }).toFormat("yyyy-LL-dd HH:mm ZZZZ");
}

/**
 * The first session open or close after `nowMs` (Unix ms), within the next eight days;
 * null without a calendar (always in session) or without a trading day that soon. The
 * monitor wakes there, because the allowed heartbeat age changes there.
 */
export function nextSessionBoundary(calendar: Calendar | null, nowMs: number): number | null {
  if (calendar === null) return null;
  return sessionSpan(calendar, nowMs).nextEdge;
}

function computeNextSessionBoundary(calendar: Calendar, nowMs: number): number | null {
  const today = DateTime.fromMillis(nowMs, { zone: calendar.timezone }).startOf("day");
  const overnight = calendar.close <= calendar.open;
  let next: number | null = null;
  for (let offset = -1; offset <= 8; offset++) {
    const day = today.plus({ days: offset });
    if (!isTradingDay(calendar, day)) continue;
    const open = atClock(day, calendar.open).toMillis();
    const close = atClock(overnight ? day.plus({ days: 1 }) : day, calendar.close).toMillis();
    for (const at of [open, close]) if (at > nowMs && (next === null || at < next)) next = at;
    if (next !== null && open > nowMs) break;
  }
  return next;
}

/** The next moment after `nowMs` at which the local clock in `timezone` reads `hhmm`. */
export function nextLocalTime(timezone: string, nowMs: number, hhmm: string): number {
  let span = localDaySpan(timezone, nowMs, hhmm);
  for (let days = 0; days <= 2; days++) {
    if (span.at > nowMs) return span.at;
    span = localDaySpan(timezone, span.end, hhmm);
  }
  return nowMs + 86_400_000;
}
