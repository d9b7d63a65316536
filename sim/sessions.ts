// Trading sessions for the simulator's ground truth, computed independently of
// src/judge/calendar.ts (Intl offsets instead of luxon), so a calendar bug in the product
// shows up as a missed or false "stale" page rather than agreeing with itself.
// Day sessions only (close after open), which is what the simulated hosts use.

export interface SessionCalendar {
  timezone: string;
  weekdays: readonly string[];
  open: string;
  close: string;
  holidays: readonly string[];
}

const DAY_MS = 86_400_000;
const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;

/** The zone's offset from UTC at `utcMs`, in ms (local wall time minus UTC). */
function offsetMs(zone: string, utcMs: number): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(utcMs));
  const field = (type: string) => Number(parts.find((part) => part.type === type)?.value ?? "0");
  const wall = Date.UTC(field("year"), field("month") - 1, field("day"), field("hour"), field("minute"), field("second"));
  return wall - Math.floor(utcMs / 1000) * 1000;
}

/** The UTC instant of a local wall-clock time in the zone (no session sits in a DST gap). */
function zonedToUtc(zone: string, year: number, month: number, day: number, hhmm: string): number {
  const [hour = 0, minute = 0] = hhmm.split(":").map(Number);
  const wall = Date.UTC(year, month, day, hour, minute);
  let utc = wall - offsetMs(zone, wall);
  utc = wall - offsetMs(zone, utc);
  return utc;
}

/** Every session [open, close) in UTC ms that overlaps [from, until). */
export function sessionsBetween(calendar: SessionCalendar, from: number, until: number): Array<{ open: number; close: number }> {
  const sessions: Array<{ open: number; close: number }> = [];
  for (let dayStart = Math.floor(from / DAY_MS) * DAY_MS - DAY_MS; dayStart < until + DAY_MS; dayStart += DAY_MS) {
    const date = new Date(dayStart);
    const year = date.getUTCFullYear();
    const month = date.getUTCMonth();
    const day = date.getUTCDate();
    const iso = date.toISOString().slice(0, 10);
    const weekday = WEEKDAYS[date.getUTCDay()] ?? "sun";
    if (!calendar.weekdays.includes(weekday) || calendar.holidays.includes(iso)) continue;
    const open = zonedToUtc(calendar.timezone, year, month, day, calendar.open);
    const close = zonedToUtc(calendar.timezone, year, month, day, calendar.close);
    if (close > from && open < until) sessions.push({ open, close });
  }
  return sessions;
}
