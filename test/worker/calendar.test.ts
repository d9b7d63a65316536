// Trading sessions and local days: when a session opened (or null outside one) and the
// local date / reminder time, pinned either side of opens, closes, midnights, DST
// changes and holidays.
import { describe, expect, it } from "vitest";
import { formatLocal, localDay, sessionOpenedAt } from "../../src/judge/calendar.ts";
import type { Calendar } from "../../src/config.ts";

const SECOND = 1000;
const utc = (month: number, day: number, hour: number, minute = 0, second = 0) => Date.UTC(2026, month - 1, day, hour, minute, second);

const NYSE: Calendar = {
  timezone: "America/New_York",
  weekdays: ["mon", "tue", "wed", "thu", "fri"],
  open: "09:30",
  close: "16:00",
  holidays: ["2026-11-26", "2026-12-25"],
};

describe("sessionOpenedAt, a day session in New York", () => {
  it.each([
    ["Tue 09:29:59 EST", utc(11, 24, 14, 29, 59), null],
    ["Tue 09:30 EST", utc(11, 24, 14, 30), utc(11, 24, 14, 30)],
    ["Tue 15:59:59 EST", utc(11, 24, 20, 59, 59), utc(11, 24, 14, 30)],
    ["Tue 16:00 EST (the close is outside)", utc(11, 24, 21, 0), null],
    ["Sat 11:00 EST", utc(11, 28, 16, 0), null],
    ["Thanksgiving 11:00 EST", utc(11, 26, 16, 0), null],
    ["Christmas 11:00 EST", utc(12, 25, 16, 0), null],
    ["the day after Thanksgiving 11:00 EST", utc(11, 27, 16, 0), utc(11, 27, 14, 30)],
    // DST ends Sun 2026-11-01 (02:00 EDT -> 01:00 EST).
    ["Fri 2026-10-30 15:59 EDT", utc(10, 30, 19, 59), utc(10, 30, 13, 30)],
    ["Fri 2026-10-30 16:00 EDT", utc(10, 30, 20, 0), null],
    ["Sun 01:30 during the repeated hour", utc(11, 1, 6, 30), null],
    ["Mon 2026-11-02 13:30 UTC (09:30 by last week's offset: 08:30 EST)", utc(11, 2, 13, 30), null],
    ["Mon 2026-11-02 14:29:59 UTC (09:29:59 EST)", utc(11, 2, 14, 29, 59), null],
    ["Mon 2026-11-02 14:30 UTC (09:30 EST)", utc(11, 2, 14, 30), utc(11, 2, 14, 30)],
    // DST starts Sun 2026-03-08 (02:00 EST -> 03:00 EDT).
    ["Fri 2026-03-06 15:59 EST", utc(3, 6, 20, 59), utc(3, 6, 14, 30)],
    ["Mon 2026-03-09 13:29:59 UTC (09:29:59 EDT)", utc(3, 9, 13, 29, 59), null],
    ["Mon 2026-03-09 13:30 UTC (09:30 EDT)", utc(3, 9, 13, 30), utc(3, 9, 13, 30)],
    ["Mon 2026-03-09 14:29 UTC (10:29 EDT, 09:29 by last week's offset)", utc(3, 9, 14, 29), utc(3, 9, 13, 30)],
    ["Mon 2026-03-09 19:59 UTC (15:59 EDT)", utc(3, 9, 19, 59), utc(3, 9, 13, 30)],
    ["Mon 2026-03-09 20:00 UTC (16:00 EDT)", utc(3, 9, 20, 0), null],
  ])("%s", (_label, now, expected) => {
    expect(sessionOpenedAt(NYSE, now)).toBe(expected);
  });

  it("no calendar means always in session, open since the epoch", () => {
    expect(sessionOpenedAt(null, utc(11, 28, 3, 0))).toBe(0);
  });
});

describe("sessionOpenedAt, an overnight session (close before open)", () => {
  // Mon-Fri evenings 18:00 to the next morning 06:00, Tokyo-style hours in UTC.
  const overnight: Calendar = { timezone: "UTC", weekdays: ["mon", "tue", "wed", "thu", "fri"], open: "18:00", close: "06:00", holidays: ["2026-11-30"] };

  it.each([
    ["Mon 17:59:59", utc(11, 23, 17, 59, 59), null],
    ["Mon 18:00", utc(11, 23, 18, 0), utc(11, 23, 18, 0)],
    ["Mon 23:59:59", utc(11, 23, 23, 59, 59), utc(11, 23, 18, 0)],
    ["Tue 00:00 (past midnight, still Monday's session)", utc(11, 24, 0, 0), utc(11, 23, 18, 0)],
    ["Tue 05:59:59", utc(11, 24, 5, 59, 59), utc(11, 23, 18, 0)],
    ["Tue 06:00 (the close)", utc(11, 24, 6, 0), null],
    ["Sat 03:00 (Friday's session)", utc(11, 28, 3, 0), utc(11, 27, 18, 0)],
    ["Sat 18:00 (Saturday is not a trading day)", utc(11, 28, 18, 0), null],
    ["Sun 23:00", utc(11, 29, 23, 0), null],
    ["Mon 2026-11-30 20:00 (a holiday)", utc(11, 30, 20, 0), null],
    ["Tue 2026-12-01 03:00 (the holiday's session never opened)", utc(12, 1, 3, 0), null],
    ["Tue 2026-12-01 18:00", utc(12, 1, 18, 0), utc(12, 1, 18, 0)],
  ])("%s", (_label, now, expected) => {
    expect(sessionOpenedAt(overnight, now)).toBe(expected);
  });

  it("an overnight session in New York across the fall-back night lasts 13 hours", () => {
    const evenings: Calendar = { ...NYSE, weekdays: ["sat"], open: "18:00", close: "06:00", holidays: [] };
    const opened = utc(10, 31, 22, 0); // Sat 18:00 EDT
    expect(sessionOpenedAt(evenings, utc(11, 1, 10, 59))).toBe(opened); // Sun 05:59 EST
    expect(sessionOpenedAt(evenings, utc(11, 1, 11, 0))).toBeNull(); // Sun 06:00 EST
  });
});

describe("localDay", () => {
  it.each([
    ["08:59:59 EST", "America/New_York", utc(11, 24, 13, 59, 59), { date: "2026-11-24", reached: false }],
    ["09:00 EST", "America/New_York", utc(11, 24, 14, 0), { date: "2026-11-24", reached: true }],
    ["23:59 EST is still the 24th (04:59 UTC on the 25th)", "America/New_York", utc(11, 25, 4, 59), { date: "2026-11-24", reached: true }],
    ["00:00 EST is the 25th", "America/New_York", utc(11, 25, 5, 0), { date: "2026-11-25", reached: false }],
    ["Sun 2026-11-01 13:00 UTC is 08:00 EST (09:00 by Saturday's offset)", "America/New_York", utc(11, 1, 13, 0), { date: "2026-11-01", reached: false }],
    ["Sun 2026-11-01 14:00 UTC is 09:00 EST", "America/New_York", utc(11, 1, 14, 0), { date: "2026-11-01", reached: true }],
    ["Sun 2026-03-08 13:00 UTC is 09:00 EDT", "America/New_York", utc(3, 8, 13, 0), { date: "2026-03-08", reached: true }],
    ["Sun 2026-03-08 12:59 UTC is 08:59 EDT", "America/New_York", utc(3, 8, 12, 59), { date: "2026-03-08", reached: false }],
    ["UTC at 09:00", "UTC", utc(11, 24, 9, 0), { date: "2026-11-24", reached: true }],
    ["Tokyo at 08:59 is 23:59 UTC the day before", "Asia/Tokyo", utc(11, 23, 23, 59), { date: "2026-11-24", reached: false }],
  ])("%s", (_label, zone, now, expected) => {
    expect(localDay(zone, now, "09:00")).toEqual(expected);
  });

  it("formats local times with the zone's abbreviation on either side of the change", () => {
    expect(formatLocal("America/New_York", utc(10, 30, 13, 30))).toBe("2026-10-30 09:30 EDT");
    expect(formatLocal("America/New_York", utc(11, 2, 14, 30))).toBe("2026-11-02 09:30 EST");
    expect(formatLocal("America/New_York", utc(11, 2, 14, 30) - SECOND)).toBe("2026-11-02 09:29 EST");
  });
});

describe("the answers are reused inside the span in which they hold, never past it", () => {
  it("walking a week minute by minute, forwards and back, agrees with a fresh calendar every time", () => {
    const start = utc(10, 29, 0); // across the end of DST and a weekend
    const answers: Array<[number, number | null, string, boolean]> = [];
    for (let minute = 0; minute < 7 * 24 * 60; minute += 7) {
      const at = start + minute * 60 * SECOND;
      answers.push([at, sessionOpenedAt(NYSE, at), localDay("America/New_York", at, "09:00").date, localDay("America/New_York", at, "09:00").reached]);
    }
    // The same questions in reverse order, and through a calendar object never seen before.
    for (const [at, openedAt, date, reached] of [...answers].reverse()) {
      const fresh: Calendar = { ...NYSE, holidays: [...NYSE.holidays] };
      expect(sessionOpenedAt(fresh, at)).toBe(openedAt);
      expect(localDay("America/New_York", at, "09:00")).toEqual({ date, reached });
    }
    // Spot checks that the walk itself was right.
    expect(sessionOpenedAt(NYSE, utc(11, 2, 14, 30))).toBe(utc(11, 2, 14, 30)); // Mon 09:30 EST
    expect(sessionOpenedAt(NYSE, utc(10, 30, 20, 0))).toBeNull(); // Fri 16:00 EDT, closed
  });
});
