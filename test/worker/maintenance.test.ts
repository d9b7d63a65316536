// Maintenance windows: when a host is in one (pinned 1 ms either side of every edge,
// across midnight, DST days in New York and London, merged windows, phone and config
// together), what the judge does with DARK and STALE inside one and at its end, and
// when the monitor must wake for it.
import { describe, expect, it } from "vitest";
import { type Config, ConfigError, type HostConfig, parseConfig } from "../../src/config.ts";
import { type HostJudgement, incidentId, judgeHost, type OperatorView } from "../../src/judge/judge.ts";
import { activeMaintenance, maintenanceSpans } from "../../src/judge/maintenance.ts";
import type { PingRecord } from "../../src/judge/records.ts";
import { hostDueAt } from "../../src/judge/schedule.ts";
import type { OperatorState } from "../../src/monitor/state.ts";
import { eventLine } from "../../src/phone/messages.ts";
import { filesWith, makeRecord, MINUTE, rawTestConfig, T0, type TestConfigInput, testConfig } from "./helpers.ts";

const SECOND = 1000;
const HOUR = 60 * MINUTE;
const at = (iso: string) => Date.parse(iso);

const NEW_YORK_CALENDAR = { timezone: "America/New_York", open: "09:30", close: "16:00" };
const WEEKEND_NIGHTS = { days: ["sat", "sun"], from: "22:00", to: "02:00" };

function hostOf(input: TestConfigInput): { config: Config; host: HostConfig } {
  const config = testConfig(input);
  const host = config.hosts[0];
  if (host === undefined) throw new Error("test config has no host");
  return { config, host };
}

const NO_PHONE: Pick<OperatorState, "maintenance"> = { maintenance: [] };

/** The end of the window the host is in at `iso`, as an ISO string, or null. */
function untilAt(input: TestConfigInput, iso: string, operator = NO_PHONE): string | null {
  const { config, host } = hostOf(input);
  const active = activeMaintenance(host, config, operator, at(iso));
  return active === null ? null : new Date(active.until).toISOString();
}

/** `iso` moved by `ms`, as an ISO string. */
const shift = (iso: string, ms: number) => new Date(at(iso) + ms).toISOString();

describe("weekly windows from the config, 1 ms either side of each edge", () => {
  // Saturday and Sunday nights 22:00-02:00 New York time (the host calendar's zone).
  const newYork: TestConfigInput = { hosts: [{ id: "alpha", calendar: NEW_YORK_CALENDAR, maintenance: [WEEKEND_NIGHTS] }] };

  it.each([
    // An ordinary weekend (EST, UTC-5): Sat 2026-11-28 22:00 EST = 03:00Z, to Sun 02:00 EST = 07:00Z.
    ["Fri 22:00 EST: not a window day", "2026-11-28T03:00:00.000Z", null],
    ["1 ms before Sat 22:00 EST", shift("2026-11-29T03:00:00.000Z", -1), null],
    ["Sat 22:00 EST", "2026-11-29T03:00:00.000Z", "2026-11-29T07:00:00.000Z"],
    ["Sat 23:59 EST (across midnight)", "2026-11-29T04:59:00.000Z", "2026-11-29T07:00:00.000Z"],
    ["Sun 00:00 EST, a window day itself", "2026-11-29T05:00:00.000Z", "2026-11-29T07:00:00.000Z"],
    ["1 ms before Sun 02:00 EST", shift("2026-11-29T07:00:00.000Z", -1), "2026-11-29T07:00:00.000Z"],
    ["Sun 02:00 EST: the end is outside", "2026-11-29T07:00:00.000Z", null],
    ["Sun 21:59:59.999 EST", shift("2026-11-30T03:00:00.000Z", -1), null],
    ["Sun 22:00 EST", "2026-11-30T03:00:00.000Z", "2026-11-30T07:00:00.000Z"],
    ["Mon 01:59:59.999 EST: Sunday's window runs into Monday", shift("2026-11-30T07:00:00.000Z", -1), "2026-11-30T07:00:00.000Z"],
    ["Mon 02:00 EST", "2026-11-30T07:00:00.000Z", null],
    ["Mon 22:00 EST", "2026-12-01T03:00:00.000Z", null],
  ])("%s", (_label, iso, expected) => {
    expect(untilAt(newYork, iso)).toBe(expected);
  });

  it.each([
    // Spring forward Sun 2026-03-08 02:00 EST -> 03:00 EDT. Sat 22:00 EST = 03:00Z; Sunday's
    // 02:00 does not exist, and luxon moves it forward by the gap: 03:00 EDT = 07:00Z.
    ["1 ms before Sat 2026-03-07 22:00 EST", shift("2026-03-08T03:00:00.000Z", -1), null],
    ["Sat 22:00 EST", "2026-03-08T03:00:00.000Z", "2026-03-08T07:00:00.000Z"],
    ["1 ms before the skipped 02:00 (= 03:00 EDT)", shift("2026-03-08T07:00:00.000Z", -1), "2026-03-08T07:00:00.000Z"],
    ["03:00 EDT, the first moment after the gap", "2026-03-08T07:00:00.000Z", null],
    // Sunday night is in EDT (UTC-4): 22:00 EDT = 02:00Z Monday, to 02:00 EDT = 06:00Z.
    ["1 ms before Sun 22:00 EDT", shift("2026-03-09T02:00:00.000Z", -1), null],
    ["Sun 22:00 EDT", "2026-03-09T02:00:00.000Z", "2026-03-09T06:00:00.000Z"],
    ["1 ms before Mon 02:00 EDT", shift("2026-03-09T06:00:00.000Z", -1), "2026-03-09T06:00:00.000Z"],
    ["Mon 02:00 EDT", "2026-03-09T06:00:00.000Z", null],
  ])("New York, spring forward 2026-03-08: %s", (_label, iso, expected) => {
    expect(untilAt(newYork, iso)).toBe(expected);
  });

  it.each([
    // Fall back Sun 2026-11-01 02:00 EDT -> 01:00 EST: Sat 22:00 EDT = 02:00Z, to Sun 02:00 EST =
    // 07:00Z, a window of five hours by the clock on the wall's four.
    ["1 ms before Sat 2026-10-31 22:00 EDT", shift("2026-11-01T02:00:00.000Z", -1), null],
    ["Sat 22:00 EDT", "2026-11-01T02:00:00.000Z", "2026-11-01T07:00:00.000Z"],
    ["the first 01:30 (EDT)", "2026-11-01T05:30:00.000Z", "2026-11-01T07:00:00.000Z"],
    ["the second 01:30 (EST)", "2026-11-01T06:30:00.000Z", "2026-11-01T07:00:00.000Z"],
    ["1 ms before 02:00 EST", shift("2026-11-01T07:00:00.000Z", -1), "2026-11-01T07:00:00.000Z"],
    ["02:00 EST", "2026-11-01T07:00:00.000Z", null],
  ])("New York, fall back 2026-11-01: %s", (_label, iso, expected) => {
    expect(untilAt(newYork, iso)).toBe(expected);
  });

  // Edges at a time that does not exist or exists twice.
  const sundayAt = (from: string, to: string): TestConfigInput => ({
    hosts: [{ id: "alpha", maintenance: [{ days: ["sun"], from, to, timezone: "America/New_York" }] }],
  });
  it.each([
    // 02:30 on 2026-03-08 does not exist: the window opens at 03:30 EDT (07:30Z).
    ["spring: from the skipped 02:30, 1 ms before 03:30 EDT", sundayAt("02:30", "04:00"), shift("2026-03-08T07:30:00.000Z", -1), null],
    ["spring: from the skipped 02:30, at 03:30 EDT", sundayAt("02:30", "04:00"), "2026-03-08T07:30:00.000Z", "2026-03-08T08:00:00.000Z"],
    // Both ends skipped: shifted alike, the window keeps its length (03:15-03:45 EDT).
    ["spring: 02:15-02:45, both skipped, at 03:15 EDT", sundayAt("02:15", "02:45"), "2026-03-08T07:15:00.000Z", "2026-03-08T07:45:00.000Z"],
    // 02:30-03:00 would run from 03:30 to 03:00 EDT: it does not happen that day.
    ["spring: 02:30-03:00, only in the skipped hour, does not happen", sundayAt("02:30", "03:00"), "2026-03-08T07:00:00.000Z", null],
    ["spring: 02:30-03:00, the next Sunday as usual", sundayAt("02:30", "03:00"), "2026-03-15T06:30:00.000Z", "2026-03-15T07:00:00.000Z"],
    // 01:30 on 2026-11-01 happens twice: an edge there is always the first one (EDT, 05:30Z).
    ["fall: from the repeated 01:30, 1 ms before the first", sundayAt("01:30", "03:00"), shift("2026-11-01T05:30:00.000Z", -1), null],
    ["fall: from the repeated 01:30, at the first", sundayAt("01:30", "03:00"), "2026-11-01T05:30:00.000Z", "2026-11-01T08:00:00.000Z"],
    ["fall: to the repeated 01:30, 1 ms before the first", sundayAt("00:30", "01:30"), shift("2026-11-01T05:30:00.000Z", -1), "2026-11-01T05:30:00.000Z"],
    ["fall: to the repeated 01:30, at the first", sundayAt("00:30", "01:30"), "2026-11-01T05:30:00.000Z", null],
    ["fall: to the repeated 01:30, at the second", sundayAt("00:30", "01:30"), "2026-11-01T06:30:00.000Z", null],
  ])("%s", (_label, input, iso, expected) => {
    expect(untilAt(input, iso)).toBe(expected);
  });

  // No calendar and no zone of its own: alerts.timezone. London leaves BST on 2026-10-25
  // and enters it on 2026-03-29.
  const london: TestConfigInput = { alerts: { timezone: "Europe/London" }, hosts: [{ id: "alpha", maintenance: [{ days: ["sun"], from: "00:30", to: "03:00" }] }] };
  it.each([
    ["summer: 1 ms before Sun 00:30 BST", shift("2026-07-04T23:30:00.000Z", -1), null],
    ["summer: Sun 00:30 BST", "2026-07-04T23:30:00.000Z", "2026-07-05T02:00:00.000Z"],
    ["summer: 1 ms before 03:00 BST", shift("2026-07-05T02:00:00.000Z", -1), "2026-07-05T02:00:00.000Z"],
    ["summer: 03:00 BST", "2026-07-05T02:00:00.000Z", null],
    ["winter: Sun 00:30 GMT", "2026-12-06T00:30:00.000Z", "2026-12-06T03:00:00.000Z"],
    ["winter: 1 ms before 00:30 GMT", shift("2026-12-06T00:30:00.000Z", -1), null],
    // Spring forward 01:00 GMT -> 02:00 BST: 00:30 GMT to 03:00 BST is 1.5 h.
    ["spring forward: Sun 00:30 GMT", "2026-03-29T00:30:00.000Z", "2026-03-29T02:00:00.000Z"],
    ["spring forward: 1 ms before 03:00 BST", shift("2026-03-29T02:00:00.000Z", -1), "2026-03-29T02:00:00.000Z"],
    // Fall back 02:00 BST -> 01:00 GMT: 00:30 BST (23:30Z) to 03:00 GMT is 3.5 h.
    ["fall back: Sun 00:30 BST", "2026-10-24T23:30:00.000Z", "2026-10-25T03:00:00.000Z"],
    ["fall back: 1 ms before 03:00 GMT", shift("2026-10-25T03:00:00.000Z", -1), "2026-10-25T03:00:00.000Z"],
    ["fall back: 03:00 GMT", "2026-10-25T03:00:00.000Z", null],
  ])("Europe/London from alerts.timezone, %s", (_label, iso, expected) => {
    expect(untilAt(london, iso)).toBe(expected);
  });

  it("a window's own timezone wins over the calendar's", () => {
    const own: TestConfigInput = { hosts: [{ id: "alpha", calendar: NEW_YORK_CALENDAR, maintenance: [{ ...WEEKEND_NIGHTS, timezone: "UTC" }] }] };
    expect(untilAt(own, shift("2026-11-28T22:00:00.000Z", -1))).toBeNull();
    expect(untilAt(own, "2026-11-28T22:00:00.000Z")).toBe("2026-11-29T02:00:00.000Z");
  });
});

describe("windows merge, so the end is when the host really leaves maintenance", () => {
  it("back-to-back configured windows are one: Sat 20:00-22:00 then 22:00-02:00 UTC", () => {
    const input: TestConfigInput = {
      hosts: [{ id: "alpha", maintenance: [{ days: ["sat"], from: "20:00", to: "22:00", timezone: "UTC" }, { days: ["sat"], from: "22:00", to: "02:00", timezone: "UTC" }] }],
    };
    expect(untilAt(input, shift("2026-11-28T20:00:00.000Z", -1))).toBeNull();
    expect(untilAt(input, "2026-11-28T20:00:00.000Z")).toBe("2026-11-29T02:00:00.000Z");
    expect(untilAt(input, shift("2026-11-28T22:00:00.000Z", -1))).toBe("2026-11-29T02:00:00.000Z");
    expect(untilAt(input, shift("2026-11-29T02:00:00.000Z", -1))).toBe("2026-11-29T02:00:00.000Z");
    expect(untilAt(input, "2026-11-29T02:00:00.000Z")).toBeNull();
  });

  const utcNights: TestConfigInput = { hosts: [{ id: "alpha", maintenance: [{ days: ["sat"], from: "22:00", to: "02:00", timezone: "UTC" }] }] };

  it("a phone window overlapping a configured one carries it on, and says who set it", () => {
    const phone = { maintenance: [{ from: at("2026-11-29T01:00:00.000Z"), until: at("2026-11-29T05:00:00.000Z"), by: "@ann" }] };
    const { config, host } = hostOf(utcNights);
    expect(activeMaintenance(host, config, phone, at("2026-11-28T23:00:00.000Z"))).toEqual({ until: at("2026-11-29T05:00:00.000Z"), source: "phone", by: "@ann" });
    expect(activeMaintenance(host, config, phone, at("2026-11-29T03:00:00.000Z"))).toEqual({ until: at("2026-11-29T05:00:00.000Z"), source: "phone", by: "@ann" });
    expect(activeMaintenance(host, config, phone, at("2026-11-29T05:00:00.000Z") - 1)).not.toBeNull();
    expect(activeMaintenance(host, config, phone, at("2026-11-29T05:00:00.000Z"))).toBeNull();
  });

  it("a phone window ending inside a configured one: the configured end counts", () => {
    const phone = { maintenance: [{ from: at("2026-11-28T21:00:00.000Z"), until: at("2026-11-28T23:00:00.000Z"), by: "@ann" }] };
    const { config, host } = hostOf(utcNights);
    expect(activeMaintenance(host, config, phone, at("2026-11-28T21:00:00.000Z") - 1)).toBeNull();
    expect(activeMaintenance(host, config, phone, at("2026-11-28T21:00:00.000Z"))).toEqual({ until: at("2026-11-29T02:00:00.000Z"), source: "config" });
  });

  it("a phone window alone: from its start to its end, 1 ms either side", () => {
    const phone = { maintenance: [{ from: T0, until: T0 + 2 * HOUR, by: "@ann" }] };
    expect(untilAt({}, new Date(T0 - 1).toISOString(), phone)).toBeNull();
    expect(untilAt({}, new Date(T0).toISOString(), phone)).toBe(new Date(T0 + 2 * HOUR).toISOString());
    expect(untilAt({}, new Date(T0 + 2 * HOUR - 1).toISOString(), phone)).toBe(new Date(T0 + 2 * HOUR).toISOString());
    expect(untilAt({}, new Date(T0 + 2 * HOUR).toISOString(), phone)).toBeNull();
  });

  it("maintenanceSpans lists configured and phone windows of a range, sorted, each whole", () => {
    const { config, host } = hostOf({ hosts: [{ id: "alpha", calendar: NEW_YORK_CALENDAR, maintenance: [WEEKEND_NIGHTS] }] });
    const phone = { maintenance: [{ from: at("2026-11-25T15:00:00.000Z"), until: at("2026-11-25T17:00:00.000Z"), by: "@ann" }] };
    // A week from Sun 2026-11-29 05:00Z: the window open then is listed whole.
    const spans = maintenanceSpans(host, config, phone, at("2026-11-25T00:00:00.000Z"), at("2026-11-29T05:00:00.000Z"));
    expect(spans).toEqual([
      { from: at("2026-11-25T15:00:00.000Z"), to: at("2026-11-25T17:00:00.000Z"), source: "phone", by: "@ann" },
      { from: at("2026-11-29T03:00:00.000Z"), to: at("2026-11-29T07:00:00.000Z"), source: "config" },
    ]);
    const week = maintenanceSpans(host, config, NO_PHONE, at("2026-11-23T00:00:00.000Z"), at("2026-11-30T00:00:00.000Z"));
    // Sunday night's window (Sun 22:00 EST = Mon 03:00Z) opens the week; Saturday night's closes it.
    expect(week.map((span) => [new Date(span.from).toISOString(), new Date(span.to).toISOString()])).toEqual([
      ["2026-11-23T03:00:00.000Z", "2026-11-23T07:00:00.000Z"],
      ["2026-11-29T03:00:00.000Z", "2026-11-29T07:00:00.000Z"],
    ]);
  });
});

describe("the configuration of windows", () => {
  const parseError = (input: TestConfigInput): string => {
    try {
      parseConfig(rawTestConfig(input));
    } catch (error) {
      if (error instanceof ConfigError) return error.message;
      throw error;
    }
    return "no error";
  };

  it("defaults to none, and defaults can carry windows for every host", () => {
    expect(hostOf({}).host.maintenance).toEqual([]);
    const config = testConfig({ defaults: { maintenance: [WEEKEND_NIGHTS] }, hosts: [{ id: "alpha" }, { id: "beta" }] });
    expect(config.hosts.map((host) => host.maintenance)).toEqual([[WEEKEND_NIGHTS], [WEEKEND_NIGHTS]]);
  });

  it.each([
    ["a bad day", { days: ["saturday"], from: "22:00", to: "02:00" }, 'WITNESS_CONFIG.hosts.0.maintenance.0.days.0: use day names "mon", "tue", "wed", "thu", "fri", "sat" or "sun"'],
    ["no day", { days: [], from: "22:00", to: "02:00" }, 'WITNESS_CONFIG.hosts.0.maintenance.0.days: name at least one day, e.g. days = ["sat"]'],
    ["from equal to to", { days: ["sat"], from: "22:00", to: "22:00" }, "WITNESS_CONFIG.hosts.0.maintenance.0.to: equals from, so the window would be empty; set to later than from, or earlier to end the next day"],
    ["a bad time", { days: ["sat"], from: "22h", to: "02:00" }, 'WITNESS_CONFIG.hosts.0.maintenance.0.from: use 24-hour HH:MM, e.g. "09:30"'],
    ["a bad zone", { days: ["sat"], from: "22:00", to: "02:00", timezone: "America/NewYork" }, 'WITNESS_CONFIG.hosts.0.maintenance.0.timezone: not an IANA time zone; use a name like "America/New_York" or "UTC"'],
    ["an unknown key", { days: ["sat"], from: "22:00", until: "02:00", to: "03:00" }, 'WITNESS_CONFIG.hosts.0.maintenance.0: Unrecognized key: "until"'],
  ])("refuses %s, naming the field", (_label, window, message) => {
    expect(parseError({ hosts: [{ id: "alpha", maintenance: [window] }] })).toBe(message);
  });
});

/**
 * The judge tick after tick, as the monitor runs it: the window in force is computed
 * from the host's config and the phone windows at each moment (as planHost does).
 */
class Judge {
  previous: HostJudgement | undefined;
  readonly config: Config;
  readonly host: HostConfig;
  phone: OperatorState["maintenance"] = [];
  private lastRecord: PingRecord | null = null;

  constructor(input: TestConfigInput) {
    ({ config: this.config, host: this.host } = hostOf({ timing: { confirmPings: { failing: 1, heartbeatUnreadable: 1, circuitUnreadable: 1, skewed: 1 } }, ...input }));
  }

  /** Event lines at `now`, sent or not; `operator` adds acks and mutes. */
  at(now: number, record: PingRecord | null, operator: Partial<OperatorView> = {}): string[] {
    const observed = record !== null && record !== this.lastRecord ? "ping" : "time";
    this.lastRecord = record;
    const result = judgeHost({
      host: this.host,
      config: this.config,
      record,
      previous: this.previous,
      operator: { acked: [], mutedUntil: null, ...operator },
      observed,
      listeningSince: 0,
      maintenance: activeMaintenance(this.host, this.config, { maintenance: this.phone }, now),
      now,
    });
    this.previous = result.judgement;
    return result.events.map(eventLine);
  }
}

describe("the judge in a maintenance window", () => {
  // 30 s pings: dark after 75 s. A phone window from T0 + 1 min to T0 + 2 h (16:00 UTC).
  const windowFrom = T0 + MINUTE;
  const windowUntil = T0 + 2 * HOUR;
  const inWindow = () => {
    const judge = new Judge({ hosts: [{ id: "alpha" }] });
    judge.phone = [{ from: windowFrom, until: windowUntil, by: "@ann" }];
    return judge;
  };
  const last = makeRecord({ receivedAt: T0 });

  it("a host going dark in a window is held: recorded, not paged (pagedAt stays null)", () => {
    const judge = inWindow();
    expect(judge.at(T0, last)).toEqual([]);
    expect(judge.at(T0 + 76 * SECOND, last)).toEqual(["🛠 <b>alpha</b> DARK held, not paged: no ping for 76 s (dark after 75 s) (maintenance until 16:00 UTC)"]);
    expect(judge.previous?.conditions.dark).toMatchObject({ openedAt: T0 + 76 * SECOND, pagedAt: null, heldAt: T0 + 76 * SECOND, heldUntil: windowUntil });
    // Nothing more while the window lasts, however long (no repeat of a page never sent).
    expect(judge.at(T0 + HOUR, last)).toEqual([]);
    expect(judge.at(windowUntil - 1, last)).toEqual([]);
  });

  it("a window ending days later is dated in what the history records", () => {
    const judge = new Judge({ hosts: [{ id: "alpha" }] });
    judge.phone = [{ from: T0, until: T0 + 3 * 24 * HOUR, by: "@ann" }];
    judge.at(T0, last);
    expect(judge.at(T0 + 76 * SECOND, last)).toEqual(["🛠 <b>alpha</b> DARK held, not paged: no ping for 76 s (dark after 75 s) (maintenance until 2026-11-27 14:00 UTC)"]);
  });

  it("still dark at the window's end: pages at once, saying the window ended; then repeats as usual", () => {
    const judge = inWindow();
    judge.at(T0, last);
    judge.at(T0 + 76 * SECOND, last);
    expect(judge.at(windowUntil, last)).toEqual(["🔴 <b>alpha</b> DARK: no ping for 2.0 h (dark after 75 s) (maintenance window ended 16:00 UTC)"]);
    expect(judge.previous?.conditions.dark).toMatchObject({ pagedAt: windowUntil, lastSentAt: windowUntil });
    expect(judge.previous?.conditions.dark?.heldUntil).toBeUndefined();
    expect(judge.at(windowUntil + MINUTE, last)).toEqual([]);
    expect(judge.at(windowUntil + 30 * MINUTE, last)).toEqual(["🔁 <b>alpha</b> still DARK (unacknowledged): no ping for 2.5 h (dark after 75 s)"]);
  });

  it("a late judgement after the end says when the window really ended", () => {
    const judge = inWindow();
    judge.at(T0, last);
    judge.at(T0 + 76 * SECOND, last);
    expect(judge.at(windowUntil + 40 * SECOND, last)).toEqual([expect.stringContaining("(maintenance window ended 16:00 UTC)")]);
  });

  it("a held host that comes back in the window: recorded as cleared, nothing sent, nothing at the end", () => {
    const judge = inWindow();
    judge.at(T0, last);
    judge.at(T0 + 76 * SECOND, last);
    const back = makeRecord({ receivedAt: T0 + 30 * MINUTE, body: { seq: 2 } });
    expect(judge.at(T0 + 30 * MINUTE, back)).toEqual([
      "🛠 <b>alpha</b> DARK over unsent (muted or in maintenance) after 30 min: pinging again (the agent reported no failed pushes: the gap was between it and the Worker)",
    ]);
    expect(judge.previous?.conditions.dark).toBeUndefined();
    const later = makeRecord({ receivedAt: windowUntil, body: { seq: 3 } });
    expect(judge.at(windowUntil, later)).toEqual([]);
  });

  it("an incident paged before the window does not repeat in it; its recovery is still sent", () => {
    const judge = new Judge({ hosts: [{ id: "alpha" }] });
    judge.at(T0, last);
    expect(judge.at(T0 + 76 * SECOND, last)).toEqual(["🔴 <b>alpha</b> DARK: no ping for 76 s (dark after 75 s)"]);
    // The operator presses "Maintenance 2 h" on the page.
    judge.phone = [{ from: T0 + 2 * MINUTE, until: T0 + 2 * MINUTE + 2 * HOUR, by: "@ann" }];
    expect(judge.at(T0 + 31 * MINUTE, last)).toEqual([]);
    expect(judge.at(T0 + 61 * MINUTE, last)).toEqual([]);
    const back = makeRecord({ receivedAt: T0 + 90 * MINUTE, body: { seq: 2 } });
    expect(judge.at(T0 + 90 * MINUTE, back)).toEqual([expect.stringMatching(/^✅ <b>alpha<\/b> DARK over after 90 min: pinging again/)]);
  });

  it("an incident paged before the window, still dark at its end, is said again unless acknowledged", () => {
    const end = T0 + 2 * MINUTE + 2 * HOUR;
    const run = (acked: boolean) => {
      const judge = new Judge({ hosts: [{ id: "alpha" }], alerts: { repeatMinutes: 0 } });
      judge.at(T0, last);
      judge.at(T0 + 76 * SECOND, last);
      judge.phone = [{ from: T0 + 2 * MINUTE, until: end, by: "@ann" }];
      const operator = acked ? { acked: [incidentId("alpha", "dark", T0 + 76 * SECOND)] } : {};
      judge.at(T0 + 3 * MINUTE, last, operator);
      return judge.at(end, last, operator);
    };
    expect(run(false)).toEqual(["🔁 <b>alpha</b> still DARK (unacknowledged): no ping for 2.0 h (dark after 75 s) (maintenance window ended 16:02 UTC)"]);
    expect(run(true)).toEqual([]);
  });

  it("stale is held likewise, and pages at the end if the heartbeat is still old", () => {
    const judge = new Judge({ hosts: [{ id: "alpha", maxAgeInSessionSeconds: 600 }] });
    judge.phone = [{ from: T0, until: T0 + HOUR, by: "@ann" }];
    const beatAt = T0 - 5 * SECOND;
    const ping = (now: number) => makeRecord({ receivedAt: now, body: { seq: now, files: filesWith(beatAt) } });
    expect(judge.at(T0 + 5 * MINUTE, ping(T0 + 5 * MINUTE))).toEqual([]);
    expect(judge.at(T0 + 11 * MINUTE, ping(T0 + 11 * MINUTE))).toEqual([
      "🛠 <b>alpha</b> STALE held, not paged: heartbeat 11 min old (limit 10 min in session) (maintenance until 15:00 UTC)",
    ]);
    expect(judge.previous?.conditions.stale?.pagedAt).toBeNull();
    expect(judge.at(T0 + 59 * MINUTE, ping(T0 + 59 * MINUTE))).toEqual([]);
    expect(judge.at(T0 + HOUR, ping(T0 + HOUR))).toEqual([
      "🔴 <b>alpha</b> STALE: heartbeat 60 min old (limit 10 min in session) (maintenance window ended 15:00 UTC)",
    ]);
  });

  it("failing still pages in a window: only DARK and STALE are held", () => {
    const judge = inWindow();
    const halted = makeRecord({ receivedAt: T0 + 5 * MINUTE, body: { files: filesWith(T0 + 5 * MINUTE - 5 * SECOND, "halted") } });
    expect(judge.at(T0 + 5 * MINUTE, halted)).toEqual(["🔴 <b>alpha</b> FAILING: status &quot;halted&quot;"]);
  });

  it("a mute still applies on top: the page owed at the window's end is swallowed while muted", () => {
    const judge = inWindow();
    judge.at(T0, last);
    judge.at(T0 + 76 * SECOND, last);
    // Recorded for the history, not sent.
    expect(judge.at(windowUntil, last, { mutedUntil: windowUntil + HOUR })).toEqual([expect.stringMatching(/^🔕 <b>alpha<\/b> DARK while muted, not paged: /)]);
    expect(judge.previous?.conditions.dark?.pagedAt).toBe(windowUntil);
  });

  it("outside any window nothing changes: dark pages at darkAfter", () => {
    const judge = new Judge({ hosts: [{ id: "alpha", maintenance: [{ days: ["sat"], from: "22:00", to: "02:00", timezone: "UTC" }] }] });
    judge.at(T0, last);
    expect(judge.at(T0 + 76 * SECOND, last)).toEqual(["🔴 <b>alpha</b> DARK: no ping for 76 s (dark after 75 s)"]);
  });
});

describe("when the monitor wakes for a window", () => {
  const due = (judge: Judge, record: PingRecord | null, now: number) =>
    hostDueAt({
      host: judge.host,
      config: judge.config,
      record,
      judgement: judge.previous ?? { firstJudgedAt: now, conditions: {} },
      operator: { acked: [], mutedUntil: null, maintenance: judge.phone },
      followUps: { muteEndAnnounced: null, commandReported: null, commandTimedOut: null },
      command: null,
      listeningSince: 0,
      now,
    });

  it("while a window holds a dark host, its end is the next due time, not the repeats", () => {
    const judge = new Judge({ hosts: [{ id: "alpha" }] });
    judge.phone = [{ from: T0, until: T0 + 2 * HOUR, by: "@ann" }];
    const last = makeRecord({ receivedAt: T0 });
    judge.at(T0, last);
    // Before it is dark, the dark deadline is next.
    expect(due(judge, last, T0)).toBe(T0 + 75 * SECOND + 1);
    judge.at(T0 + 76 * SECOND, last);
    expect(due(judge, last, T0 + 76 * SECOND)).toBe(T0 + 2 * HOUR);
    // Extended from the phone: the new end.
    judge.phone = [{ from: T0, until: T0 + 3 * HOUR, by: "@ann" }];
    expect(due(judge, last, T0 + 90 * MINUTE)).toBe(T0 + 3 * HOUR);
  });

  it("a window that holds nothing wakes nobody", () => {
    const judge = new Judge({ hosts: [{ id: "alpha", intervalSeconds: 30 }] });
    judge.phone = [{ from: T0, until: T0 + 10 * MINUTE, by: "@ann" }];
    const record = makeRecord({ receivedAt: T0 });
    judge.at(T0, record);
    expect(due(judge, record, T0)).toBe(T0 + 75 * SECOND + 1);
  });

  it("after the end has been judged, the end is never due again (no loop on a past time)", () => {
    const judge = new Judge({ hosts: [{ id: "alpha" }] });
    judge.phone = [{ from: T0, until: T0 + HOUR, by: "@ann" }];
    const last = makeRecord({ receivedAt: T0 });
    judge.at(T0, last);
    judge.at(T0 + 76 * SECOND, last);
    judge.at(T0 + HOUR, last);
    expect(due(judge, last, T0 + HOUR)).toBe(T0 + HOUR + 30 * MINUTE);
  });
});
