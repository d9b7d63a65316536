// The pure judge, table-driven, with time pinned either side of every boundary (as
// healthchecks' test_check_model.py does). Events are rendered with the same eventLine
// the Telegram message uses, so each assertion is what the phone would show.
import { describe, expect, it } from "vitest";
import type { Config, HostConfig } from "../../src/config.ts";
import { type ConditionKind, type HostJudgement, incidentId, judgeHost, observe, type OperatorView } from "../../src/judge/judge.ts";
import { eventLine } from "../../src/phone/messages.ts";
import type { PingBody } from "../../src/protocol.ts";
import type { PingRecord } from "../../src/judge/records.ts";
import { circuitFile, filesWith, heartbeatFile, makeRecord, MINUTE, rawFile, T0, type TestConfigInput, testConfig } from "./helpers.ts";

const SECOND = 1000;
const HOUR = 60 * MINUTE;
const NOBODY: OperatorView = { acked: [], mutedUntil: null };

const NEW_YORK = {
  timezone: "America/New_York",
  weekdays: ["mon", "tue", "wed", "thu", "fri"],
  open: "09:30",
  close: "16:00",
  holidays: ["2026-11-26"],
};

/**
 * Most tables here judge one thing at a time: hosts ping every 60 s and every condition
 * pages on its first observation unless a test says otherwise (confirmation has its own
 * describe block below).
 */
const ONE_OBSERVATION = { failing: 1, heartbeatUnreadable: 1, circuitUnreadable: 1, skewed: 1 };

function setup(input: TestConfigInput = {}): { config: Config; host: HostConfig } {
  const config = testConfig({
    ...input,
    timing: { confirmPings: ONE_OBSERVATION, ...input.timing },
    defaults: { intervalSeconds: 60, ...input.defaults },
  });
  const host = config.hosts[0];
  if (host === undefined) throw new Error("test config has no host");
  return { config, host };
}

/** Runs the judge tick after tick like the cron does, threading the judgement through. */
class Ticks {
  previous: HostJudgement | undefined;
  private lastRecord: PingRecord | null = null;
  readonly config: Config;
  readonly host: HostConfig;

  constructor(input: TestConfigInput = {}) {
    ({ config: this.config, host: this.host } = setup(input));
  }

  /**
   * The judge at `now` with `record` as the last ping: a ping arriving (its contents
   * observed) when it was received at `now`, else only time passing. Returns the lines
   * the phone would show.
   */
  at(now: number, record: PingRecord | null, operator: OperatorView = NOBODY): string[] {
    // A record not seen before is a ping arriving; the same record again is time passing.
    const observed = record !== null && record !== this.lastRecord ? "ping" : "time";
    this.lastRecord = record;
    const result = judgeHost({ host: this.host, config: this.config, record, previous: this.previous, operator, observed, listeningSince: 0, now });
    this.previous = result.judgement;
    return result.events.map(eventLine);
  }

  open(): ConditionKind[] {
    return Object.keys(this.previous?.conditions ?? {}) as ConditionKind[];
  }

  condition(kind: ConditionKind): { openedAt: number; pagedAt: number | null; detail: string } | undefined {
    return this.previous?.conditions[kind];
  }
}

/** A record received at `receivedAt` whose heartbeat beat at `beatAt` (host clock = Worker clock). */
function beatRecord(receivedAt: number, beatAt: number, status = "ok", circuit?: PingBody["files"]["circuit"]): PingRecord {
  return makeRecord({ receivedAt, body: { files: filesWith(beatAt, status, circuit) } });
}

function observed(input: TestConfigInput, record: PingRecord | null, now: number): Map<ConditionKind, string> {
  const { host } = setup(input);
  return observe({ host, record, now, observed: "ping", listeningSince: 0, firstJudgedAt: T0 }).present;
}

describe("dark", () => {
  // 60 s pings: darkAfter defaults to two missed pings and 15 s = 135 s.
  it.each([
    ["1 s before darkAfter", 134, undefined],
    ["exactly at darkAfter", 135, undefined],
    ["1 s after darkAfter", 136, "no ping for 2 min (dark after 2 min)"],
  ])("%s", (_label, secondsSincePing, expected) => {
    const present = observed({}, makeRecord({ receivedAt: T0 }), T0 + secondsSincePing * SECOND);
    expect(present.get("dark")).toBe(expected);
  });

  it("pages the moment darkAfter has passed, once: every ping is kept, so one observation cannot lie", () => {
    const ticks = new Ticks();
    const record = makeRecord({ receivedAt: T0 });
    expect(ticks.at(T0, record)).toEqual([]);
    expect(ticks.at(T0 + 135 * SECOND, record)).toEqual([]);
    expect(ticks.at(T0 + 136 * SECOND, record)).toEqual(["🔴 <b>alpha</b> DARK: no ping for 2 min (dark after 2 min)"]);
    expect(ticks.at(T0 + 137 * SECOND, record)).toEqual([]);
    expect(ticks.at(T0 + 20 * MINUTE, record)).toEqual([]);
  });

  it("pages a host that never pinged once its grace from the first judgement has passed", () => {
    const ticks = new Ticks();
    expect(ticks.at(T0, null)).toEqual([]);
    expect(ticks.previous?.firstJudgedAt).toBe(T0);
    expect(ticks.at(T0 + 135 * SECOND, null)).toEqual([]);
    expect(ticks.at(T0 + 136 * SECOND, null)).toEqual(["🔴 <b>alpha</b> DARK: never pinged since the monitor started watching 2 min ago"]);
    expect(ticks.at(T0 + 400 * SECOND, null)).toEqual([]);
  });

  it("counts silence only while the monitor could listen (after it was unreachable, from when it hears again)", () => {
    const { config, host } = setup();
    const record = makeRecord({ receivedAt: T0 });
    const judge = (now: number, listeningSince: number) =>
      judgeHost({ host, config, record, previous: undefined, operator: NOBODY, observed: "time", listeningSince, now }).events.map(eventLine);
    // Unreachable from T0 + 10 s until T0 + 2 h: the silence before that does not count.
    expect(judge(T0 + 2 * HOUR, T0 + 2 * HOUR)).toEqual([]);
    expect(judge(T0 + 2 * HOUR + 135 * SECOND, T0 + 2 * HOUR)).toEqual([]);
    expect(judge(T0 + 2 * HOUR + 136 * SECOND, T0 + 2 * HOUR)).toEqual([
      "🔴 <b>alpha</b> DARK: no ping for 2 min since the monitor could listen again (dark after 2 min; last ping 2.0 h ago)",
    ]);
  });

  it("keeps content conditions frozen while dark (a tripped circuit neither recovers nor repeats alarms)", () => {
    const ticks = new Ticks();
    const paused = makeRecord({ receivedAt: T0, body: { files: filesWith(T0 - 30 * SECOND, "ok", circuitFile({ paused: true, reason: "manual" })) } });
    expect(ticks.at(T0, paused)).toEqual(["🔴 <b>alpha</b> CIRCUIT TRIPPED: circuit paused: manual"]);
    expect(ticks.at(T0 + 136 * SECOND, paused)).toEqual(["🔴 <b>alpha</b> DARK: no ping for 2 min (dark after 2 min)"]);
    expect(ticks.open().sort()).toEqual(["dark", "tripped"]);
  });
});

describe("a host whose pings stop", () => {
  it("pages DARK, never STALE: a silent host's heartbeat only ages because nothing new arrives", () => {
    // maxAge at its minimum (interval + 10 s), so a stale judgement of the silent record would page.
    const ticks = new Ticks({ hosts: [{ id: "alpha", maxAgeInSessionSeconds: 70 }] });
    const last = beatRecord(T0, T0 - 5 * SECOND);
    const lines = [0, 30, 66, 71, 100, 136].flatMap((seconds) => ticks.at(T0 + seconds * SECOND, last));
    expect(lines).toEqual(["🔴 <b>alpha</b> DARK: no ping for 2 min (dark after 2 min)"]);
  });

  it("still pages STALE while pings arrive and the heartbeat does not advance", () => {
    const ticks = new Ticks({ hosts: [{ id: "alpha", maxAgeInSessionSeconds: 180 }] });
    const beatAt = T0 - 30 * SECOND;
    const lines = [0, 60, 120, 180].flatMap((seconds) => ticks.at(T0 + seconds * SECOND, beatRecord(T0 + seconds * SECOND, beatAt)));
    expect(lines).toEqual(["🔴 <b>alpha</b> STALE: heartbeat 4 min old (limit 3 min in session)"]);
  });
});

describe("dark recovery says what the agent reported about the gap", () => {
  const before = { version: "0.1.0", startedAt: T0 - HOUR, bootId: "boot-1", kind: "node" as const };

  function darkThenBack(back: Partial<PingBody>, first: Partial<PingBody> = {}): string[] {
    const ticks = new Ticks();
    const last = makeRecord({ receivedAt: T0, body: first });
    ticks.at(T0, last);
    expect(ticks.at(T0 + 136 * SECOND, last)).toEqual(["🔴 <b>alpha</b> DARK: no ping for 2 min (dark after 2 min)"]);
    return ticks.at(T0 + 20 * MINUTE + 10 * SECOND, makeRecord({ receivedAt: T0 + 20 * MINUTE, body: { seq: 2, ...back } }));
  }

  it("a reboot (new boot id)", () => {
    expect(darkThenBack({ agent: { ...before, bootId: "boot-2", startedAt: T0 + 19 * MINUTE } })).toEqual([
      "✅ <b>alpha</b> DARK over after 20 min: pinging again: the host rebooted (new boot id)",
    ]);
  });

  it("an agent restart (same boot, new start time)", () => {
    expect(darkThenBack({ agent: { ...before, startedAt: T0 + 19 * MINUTE } })).toEqual([
      "✅ <b>alpha</b> DARK over after 20 min: pinging again: agent restart",
    ]);
  });

  it("a network partition (the agent's failed pushes, with until)", () => {
    const lastPushOutage = { since: T0 + 30 * SECOND, until: T0 + 20 * MINUTE - 5 * SECOND, failures: 19, lastError: "ETIMEDOUT" };
    expect(darkThenBack({ lastPushOutage })).toEqual([
      "✅ <b>alpha</b> DARK over after 20 min: pinging again after a network partition: pushes failed for 19 min (19 attempts), boot id unchanged",
    ]);
  });

  it("a network partition reported by the first accepted ping, whose outage is still open (no until yet)", () => {
    const lastPushOutage = { since: T0 + 30 * SECOND, failures: 19, lastError: "ECONNREFUSED" };
    expect(darkThenBack({ lastPushOutage })).toEqual([
      "✅ <b>alpha</b> DARK over after 20 min: pinging again after a network partition: pushes failed for 20 min (19 attempts), boot id unchanged",
    ]);
  });

  it("none of those", () => {
    expect(darkThenBack({})).toEqual([
      "✅ <b>alpha</b> DARK over after 20 min: pinging again (the agent reported no failed pushes: the gap was between it and the Worker)",
    ]);
  });

  it("an old partition the host already reported before the gap is not blamed for this one", () => {
    const oldOutage = { since: T0 - 3 * HOUR, until: T0 - 3 * HOUR + 7 * MINUTE, failures: 7 };
    expect(darkThenBack({ lastPushOutage: oldOutage }, { lastPushOutage: oldOutage })).toEqual([
      "✅ <b>alpha</b> DARK over after 20 min: pinging again (the agent reported no failed pushes: the gap was between it and the Worker)",
    ]);
  });
});

describe("stale, by the trading calendar (America/New_York, 09:30-16:00, Thanksgiving off)", () => {
  const inSessionAt = Date.UTC(2026, 10, 24, 16, 30); // Tue 11:30 EST
  const outOfSessionAt = Date.UTC(2026, 10, 25, 1, 0); // Tue 20:00 EST
  const calendar = (out: number | null, inSession = 900): TestConfigInput => ({
    hosts: [{ id: "alpha", calendar: NEW_YORK, maxAgeInSessionSeconds: inSession, maxAgeOutOfSessionSeconds: out }],
  });
  /** Pinged 30 s before `now`, carrying a heartbeat that beat `ageSeconds` before `now`. */
  const agedAt = (now: number, ageSeconds: number) => beatRecord(now - 30 * SECOND, now - ageSeconds * SECOND);

  it.each([
    ["in session, 1 s under the limit", calendar(null), inSessionAt, 899, undefined],
    ["in session, at the limit", calendar(null), inSessionAt, 900, undefined],
    ["in session, 1 s over the limit", calendar(null), inSessionAt, 901, "heartbeat 15 min old (limit 15 min in session)"],
    ["out of session with the check off, 5 h old", calendar(null), outOfSessionAt, 5 * 3600, undefined],
    ["out of session, 1 s under its limit", calendar(3600), outOfSessionAt, 3599, undefined],
    ["out of session, 1 s over its limit", calendar(3600), outOfSessionAt, 3601, "heartbeat 60 min old (limit 60 min outside sessions)"],
    ["no calendar: always in session", {}, outOfSessionAt, 901, "heartbeat 15 min old (limit 15 min in session)"],
  ])("%s", (_label, input, now, ageSeconds, expected) => {
    expect(observed(input, agedAt(now, ageSeconds), now).get("stale")).toBe(expected);
  });

  it("measures the age on the host's clock, so a skewed clock neither fakes nor hides it", () => {
    const now = inSessionAt;
    // The host clock runs 10 min ahead; its heartbeat is 800 s old by that clock.
    const ahead = makeRecord({
      receivedAt: now - 30 * SECOND,
      skewMs: 10 * MINUTE,
      body: { files: filesWith(now - 30 * SECOND + 10 * MINUTE - 800 * SECOND) },
    });
    expect(observed(calendar(null), ahead, now).get("stale")).toBeUndefined();
    const behind = makeRecord({
      receivedAt: now - 30 * SECOND,
      skewMs: -10 * MINUTE,
      body: { files: filesWith(now - 30 * SECOND - 10 * MINUTE - 872 * SECOND) },
    });
    expect(observed(calendar(null), behind, now).get("stale")).toBe("heartbeat 15 min old (limit 15 min in session)");
  });

  // The pipeline stops at the close and the agent keeps pinging overnight.
  const lastBeatTuesday = Date.UTC(2026, 10, 24, 21, 0); // Tue 16:00 EST
  const overnight = (now: number) => beatRecord(now - 60 * SECOND, lastBeatTuesday);
  const wednesdayOpen = Date.UTC(2026, 10, 25, 14, 30); // Wed 09:30 EST

  it.each([
    ["a minute before the open", wednesdayOpen - 60 * SECOND, undefined],
    ["at the opening bell", wednesdayOpen, undefined],
    ["899 s after the open", wednesdayOpen + 899 * SECOND, undefined],
    ["901 s after the open", wednesdayOpen + 901 * SECOND, "heartbeat 17.8 h old (limit 15 min in session)"],
  ])("counts from the session open, not the overnight gap: %s", (_label, now, expected) => {
    expect(observed(calendar(null), overnight(now), now).get("stale")).toBe(expected);
  });

  it("pages a stale heartbeat the moment it crosses the limit (measured, not observed: no confirmation), and says so when it is fresh again", () => {
    const ticks = new Ticks(calendar(null));
    expect(ticks.at(wednesdayOpen + 900 * SECOND, overnight(wednesdayOpen + 900 * SECOND))).toEqual([]);
    expect(ticks.at(wednesdayOpen + 901 * SECOND, overnight(wednesdayOpen + 901 * SECOND))).toEqual([
      "🔴 <b>alpha</b> STALE: heartbeat 17.8 h old (limit 15 min in session)",
    ]);
    const fresh = beatRecord(wednesdayOpen + 20 * MINUTE, wednesdayOpen + 20 * MINUTE - 30 * SECOND);
    expect(ticks.at(wednesdayOpen + 20 * MINUTE + 10 * SECOND, fresh)).toEqual([
      "✅ <b>alpha</b> STALE over after 5 min: heartbeat fresh again",
    ]);
  });

  it("a stale incident ended by the close says so, not that the heartbeat is fresh", () => {
    const ticks = new Ticks({ ...calendar(null), alerts: { repeatMinutes: 0 } });
    const lastBeat = Date.UTC(2026, 10, 24, 19, 0); // Tue 14:00 EST, then the pipeline hangs
    const at = (now: number) => ticks.at(now, beatRecord(now - 30 * SECOND, lastBeat));
    expect(at(Date.UTC(2026, 10, 24, 19, 15))).toEqual([]);
    expect(at(Date.UTC(2026, 10, 24, 19, 16))).toEqual(["🔴 <b>alpha</b> STALE: heartbeat 16 min old (limit 15 min in session)"]);
    expect(at(Date.UTC(2026, 10, 24, 20, 59))).toEqual([]);
    expect(at(Date.UTC(2026, 10, 24, 21, 0))).toEqual([
      "✅ <b>alpha</b> STALE over after 104 min: the session closed and stale checks are off outside sessions; the heartbeat is still 2.0 h old",
    ]);
  });

  // DST ends Sunday 2026-11-01: Friday's close is 20:00 UTC (EDT), Monday's open 14:30 UTC (EST).
  const fridayCloseOct30 = Date.UTC(2026, 9, 30, 20, 0);
  const mondayOpenNov2 = Date.UTC(2026, 10, 2, 14, 30);
  // DST starts Sunday 2026-03-08: Friday's close is 21:00 UTC (EST), Monday's open 13:30 UTC (EDT).
  const fridayCloseMar6 = Date.UTC(2026, 2, 6, 21, 0);
  const mondayOpenMar9 = Date.UTC(2026, 2, 9, 13, 30);

  it.each([
    ["Sat noon, fall-back weekend", fridayCloseOct30, Date.UTC(2026, 9, 31, 16, 0), undefined],
    ["Sun 01:30 (the repeated hour)", fridayCloseOct30, Date.UTC(2026, 10, 1, 6, 30), undefined],
    ["Mon 09:45 EDT would be 13:45 UTC: still 08:45 EST, closed", fridayCloseOct30, mondayOpenNov2 - 45 * MINUTE, undefined],
    ["Mon 899 s after the 09:30 EST open", fridayCloseOct30, mondayOpenNov2 + 899 * SECOND, undefined],
    ["Mon 901 s after the 09:30 EST open", fridayCloseOct30, mondayOpenNov2 + 901 * SECOND, "heartbeat 66.8 h old (limit 15 min in session)"],
    ["Sun, spring-forward weekend", fridayCloseMar6, Date.UTC(2026, 2, 8, 15, 0), undefined],
    ["Mon 899 s after the 09:30 EDT open", fridayCloseMar6, mondayOpenMar9 + 899 * SECOND, undefined],
    ["Mon 901 s after the 09:30 EDT open", fridayCloseMar6, mondayOpenMar9 + 901 * SECOND, "heartbeat 64.8 h old (limit 15 min in session)"],
    ["Mon 10:29 EDT (09:29 in EST terms): in session", fridayCloseMar6, mondayOpenMar9 + 59 * MINUTE, "heartbeat 65.5 h old (limit 15 min in session)"],
  ])("across a DST change: %s", (_label, lastBeat, now, expected) => {
    expect(observed(calendar(null), beatRecord(now - 60 * SECOND, lastBeat), now).get("stale")).toBe(expected);
  });

  it.each([
    ["Thanksgiving 11:00 EST: a holiday, closed", Date.UTC(2026, 10, 26, 16, 0), undefined],
    ["the Friday after, 901 s after the open", Date.UTC(2026, 10, 27, 14, 30) + 901 * SECOND, "heartbeat 41.8 h old (limit 15 min in session)"],
  ])("on a holiday: %s", (_label, now, expected) => {
    const lastBeatWednesday = Date.UTC(2026, 10, 25, 21, 0);
    expect(observed(calendar(null), beatRecord(now - 60 * SECOND, lastBeatWednesday), now).get("stale")).toBe(expected);
  });
});

describe("failing", () => {
  it("pages a status other than ok at once with the extra keys, and recovers", () => {
    const ticks = new Ticks();
    const halted = makeRecord({
      receivedAt: T0,
      body: { files: { heartbeat: heartbeatFile({ at: T0 / 1000 - 5, status: "halted", positions: 3 }), circuit: { state: "missing" } } },
    });
    expect(ticks.at(T0 + 10 * SECOND, halted)).toEqual(['🔴 <b>alpha</b> FAILING: status &quot;halted&quot; {&quot;positions&quot;:3}']);
    expect(ticks.at(T0 + 70 * SECOND, halted)).toEqual([]);
    expect(ticks.at(T0 + 5 * MINUTE + 10 * SECOND, beatRecord(T0 + 5 * MINUTE, T0 + 5 * MINUTE - 5 * SECOND))).toEqual([
      "✅ <b>alpha</b> FAILING over after 5 min: status &quot;ok&quot; again",
    ]);
  });
});

describe("unreadable files: each bad state is its own alarm, never ok, never silence", () => {
  const truncated = '{"at": 1795389457.66, "sta';
  it.each([
    ["missing", { state: "missing" }, "heartbeat.json missing: the file does not exist"],
    ["empty (reported by the agent)", { state: "empty", size: 0 }, "heartbeat.json empty: the file is empty (0 bytes: a crash mid-write?)"],
    ["empty (0 bytes of text)", rawFile(""), "heartbeat.json empty: the file is empty (0 bytes: a crash mid-write?)"],
    ["unreadable", { state: "unreadable", error: "EACCES: permission denied" }, "heartbeat.json unreadable: the agent cannot read the file: EACCES: permission denied"],
    ["too large", { state: "too_large", size: 20_000 }, "heartbeat.json too large: the file is larger than the agent sends"],
    ["truncated JSON", rawFile(truncated), `heartbeat.json corrupt: not JSON (truncated write?): ${truncated}`],
    ["not JSON at all", rawFile("OK\n"), "heartbeat.json corrupt: not JSON (truncated write?): OK "],
    ["wrong shape (at is a string)", rawFile('{"at":"yesterday","status":"ok"}'), /^heartbeat\.json wrong shape: at: /],
    ["wrong shape (no status)", rawFile('{"at":1795389457.66}'), /^heartbeat\.json wrong shape: status: /],
    ["wrong shape (an array)", rawFile("[1,2]"), /^heartbeat\.json wrong shape: /],
    // Milliseconds where seconds belong: "fresh" for 50,000 years, so never stale.
    ["at in milliseconds", rawFile(JSON.stringify({ at: T0 - 30_000, status: "ok" })), /^heartbeat\.json wrong shape: at: .*in the future/],
    ["at an hour in the future by the host's own clock", rawFile(JSON.stringify({ at: T0 / 1000 + 3600, status: "ok" })), /^heartbeat\.json wrong shape: at: .*in the future/],
  ] as const)("heartbeat.json %s", (_label, file, expected) => {
    const ticks = new Ticks();
    const record = makeRecord({ receivedAt: T0, body: { files: { heartbeat: file, circuit: { state: "missing" } } } });
    const lines = ticks.at(T0 + 10 * SECOND, record);
    expect(ticks.open()).toEqual(["heartbeat_unreadable"]);
    expect(ticks.condition("heartbeat_unreadable")?.detail).toMatch(typeof expected === "string" ? new RegExp(`^${escapeRegExp(expected)}$`) : expected);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^🔴 <b>alpha<\/b> HEARTBEAT UNREADABLE: heartbeat\.json /);
  });

  it("a heartbeat a few seconds ahead of the host's send time is fine (written during the ping)", () => {
    const ticks = new Ticks();
    const record = makeRecord({ receivedAt: T0, body: { files: { heartbeat: rawFile(JSON.stringify({ at: T0 / 1000 + 2, status: "ok" })), circuit: { state: "missing" } } } });
    expect(ticks.at(T0 + 10 * SECOND, record)).toEqual([]);
    expect(record.heartbeat.state).toBe("ok");
  });

  it("an unreadable heartbeat neither recovers nor re-pages a failing status it can no longer see", () => {
    const ticks = new Ticks();
    ticks.at(T0 + 10 * SECOND, beatRecord(T0, T0 - 5 * SECOND, "halted"));
    const corrupt = makeRecord({ receivedAt: T0 + MINUTE, body: { files: { heartbeat: rawFile("{"), circuit: { state: "missing" } } } });
    expect(ticks.at(T0 + MINUTE + 10 * SECOND, corrupt)).toEqual(["🔴 <b>alpha</b> HEARTBEAT UNREADABLE: heartbeat.json corrupt: not JSON (truncated write?): {"]);
    expect(ticks.open().sort()).toEqual(["failing", "heartbeat_unreadable"]);
    expect(ticks.at(T0 + 2 * MINUTE + 10 * SECOND, beatRecord(T0 + 2 * MINUTE, T0 + 2 * MINUTE - 5 * SECOND))).toEqual([
      "✅ <b>alpha</b> FAILING over after 2 min: status &quot;ok&quot; again",
      "✅ <b>alpha</b> HEARTBEAT UNREADABLE over after 60 s: heartbeat.json readable again",
    ]);
  });

  it("a missing circuit.json is green and raises nothing, but is shown as missing", () => {
    const ticks = new Ticks();
    const record = beatRecord(T0, T0 - 5 * SECOND, "ok", { state: "missing" });
    expect(ticks.at(T0 + 10 * SECOND, record)).toEqual([]);
    expect(ticks.open()).toEqual([]);
    expect(record.circuit).toEqual({ state: "missing", detail: "the file does not exist" });
  });

  it.each([
    ["empty", rawFile(""), "circuit.json empty: the file is empty (0 bytes: a crash mid-write?)"],
    ["truncated", rawFile('{"paused": tr'), 'circuit.json corrupt: not JSON (truncated write?): {"paused": tr'],
    ["wrong shape", rawFile('{"paused":"yes"}'), /^circuit\.json wrong shape: paused: /],
    ["unreadable", { state: "unreadable" }, "circuit.json unreadable: the agent cannot read the file"],
    ["too large", { state: "too_large" }, "circuit.json too large: the file is larger than the agent sends"],
  ] as const)("an %s circuit.json is an alarm (the breaker's state is unknown)", (_label, file, expected) => {
    const ticks = new Ticks();
    const lines = ticks.at(T0 + 10 * SECOND, beatRecord(T0, T0 - 5 * SECOND, "ok", file));
    expect(ticks.open()).toEqual(["circuit_unreadable"]);
    const detail = ticks.condition("circuit_unreadable")?.detail ?? "";
    if (typeof expected === "string") expect(detail).toBe(expected);
    else expect(detail).toMatch(expected);
    expect(lines).toEqual([`🔴 <b>alpha</b> CIRCUIT UNREADABLE: ${escapeHtmlForTest(detail)}`]);
  });
});

describe("tripped and resumed", () => {
  const paused = circuitFile({ paused: true, reason: "heartbeat stale: 1200s > 900s", since: 1795389457.66 });
  const alert = "🔴 <b>alpha</b> CIRCUIT TRIPPED: circuit paused: heartbeat stale: 1200s &gt; 900s since 2026-11-22T23:17:37.660Z";

  it.each([
    ["paused: false", circuitFile({ paused: false }), "circuit resumed (paused: false)"],
    ["the file removed", { state: "missing" } as const, "circuit.json removed: trading resumed"],
  ])("pages the trip with reason and since at once, and recovers on %s", (_label, resumed, recovery) => {
    const ticks = new Ticks();
    expect(ticks.at(T0 + 10 * SECOND, beatRecord(T0, T0 - 5 * SECOND, "ok", paused))).toEqual([alert]);
    expect(ticks.at(T0 + 3 * MINUTE + 10 * SECOND, beatRecord(T0 + 3 * MINUTE, T0 + 3 * MINUTE - 5 * SECOND, "ok", resumed))).toEqual([
      `✅ <b>alpha</b> CIRCUIT TRIPPED over after 3 min: ${recovery}`,
    ]);
    expect(ticks.open()).toEqual([]);
  });

  it("reminds once a day at reminderAt local time while the circuit stays paused", () => {
    const ticks = new Ticks({ alerts: { timezone: "America/New_York" }, hosts: [{ id: "alpha", calendar: NEW_YORK, reminderAt: "09:00" }] });
    const at = (now: number) => ticks.at(now, beatRecord(now - 30 * SECOND, now - 40 * SECOND, "ok", paused));
    const reminder = "⏸️ <b>alpha</b> still CIRCUIT TRIPPED: circuit paused: heartbeat stale: 1200s &gt; 900s since 2026-11-22T23:17:37.660Z";
    expect(at(Date.UTC(2026, 10, 24, 15, 0))).toEqual([alert]); // Tue 10:00 EST
    expect(at(Date.UTC(2026, 10, 24, 15, 30))).toEqual([]); // no 30-minute repeat for a trip
    expect(at(Date.UTC(2026, 10, 24, 21, 0))).toEqual([]);
    expect(at(Date.UTC(2026, 10, 25, 13, 59))).toEqual([]); // Wed 08:59 EST
    expect(at(Date.UTC(2026, 10, 25, 14, 0))).toEqual([reminder]); // Wed 09:00 EST
    expect(at(Date.UTC(2026, 10, 25, 14, 0))).toEqual([]); // the same tick again
    expect(at(Date.UTC(2026, 10, 25, 14, 1))).toEqual([]);
    expect(at(Date.UTC(2026, 10, 25, 23, 59))).toEqual([]);
    expect(at(Date.UTC(2026, 10, 26, 14, 0))).toEqual([reminder]); // Thanksgiving too: the circuit is still paused
  });

  it("an ack stops nothing about the daily reminder: the point is not to forget a paused circuit", () => {
    const ticks = new Ticks({ alerts: { timezone: "America/New_York" }, hosts: [{ id: "alpha", calendar: NEW_YORK, reminderAt: "09:00" }] });
    const openedAt = Date.UTC(2026, 10, 24, 15, 0);
    const acked: OperatorView = { acked: [incidentId("alpha", "tripped", openedAt)], mutedUntil: null };
    const at = (now: number, operator: OperatorView) => ticks.at(now, beatRecord(now - 30 * SECOND, now - 40 * SECOND, "ok", paused), operator);
    expect(at(openedAt, NOBODY)).toEqual([alert]);
    expect(at(Date.UTC(2026, 10, 25, 14, 0), acked)).toEqual([
      "⏸️ <b>alpha</b> still CIRCUIT TRIPPED: circuit paused: heartbeat stale: 1200s &gt; 900s since 2026-11-22T23:17:37.660Z",
    ]);
    // A mute still silences it while it lasts.
    expect(at(Date.UTC(2026, 10, 26, 14, 0), { ...acked, mutedUntil: Date.UTC(2026, 10, 26, 15, 0) })).toEqual([]);
  });

  it("reminds at 09:00 local time across the DST change (14:00 UTC after the fall-back, not 13:00)", () => {
    const ticks = new Ticks({ alerts: { timezone: "America/New_York" }, hosts: [{ id: "alpha", calendar: NEW_YORK, reminderAt: "09:00" }] });
    const at = (now: number) => ticks.at(now, beatRecord(now - 30 * SECOND, now - 40 * SECOND, "ok", paused));
    const reminder = "⏸️ <b>alpha</b> still CIRCUIT TRIPPED: circuit paused: heartbeat stale: 1200s &gt; 900s since 2026-11-22T23:17:37.660Z";
    expect(at(Date.UTC(2026, 9, 31, 16, 0))).toEqual([alert]); // Sat 12:00 EDT
    expect(at(Date.UTC(2026, 10, 1, 13, 0))).toEqual([]); // Sun 08:00 EST (09:00 by Saturday's offset)
    expect(at(Date.UTC(2026, 10, 1, 13, 59))).toEqual([]);
    expect(at(Date.UTC(2026, 10, 1, 14, 0))).toEqual([reminder]); // Sun 09:00 EST
  });
});

describe("skew", () => {
  it.each([
    ["5 s ahead", 5_000, undefined],
    ["5.1 s ahead", 5_100, "host clock ahead by 5.1 s (limit 5 s)"],
    ["5 s behind", -5_000, undefined],
    ["5.1 s behind", -5_100, "host clock behind by 5.1 s (limit 5 s)"],
    ["an hour ahead", 3_600_000, "host clock ahead by 3600.0 s (limit 5 s)"],
  ])("%s", (_label, skewMs, expected) => {
    expect(observed({}, makeRecord({ receivedAt: T0, skewMs }), T0 + 10 * SECOND).get("skewed")).toBe(expected);
  });

  it("a clock hovering at the limit pages once and does not flap; it clears only well inside the limit", () => {
    const ticks = new Ticks({ timing: { confirmPings: { ...ONE_OBSERVATION, skewed: 2 } } });
    const lines: string[] = [];
    for (let minute = 0; minute < 30; minute++) {
      const receivedAt = T0 + minute * MINUTE;
      lines.push(...ticks.at(receivedAt + 10 * SECOND, makeRecord({ receivedAt, skewMs: minute % 2 === 0 ? 5_100 : 4_900 })));
    }
    expect(lines).toEqual(["🔴 <b>alpha</b> CLOCK SKEW: host clock ahead by 4.9 s (limit 5 s; counted until under 4 s)"]);
    expect(ticks.at(T0 + 30 * MINUTE + 10 * SECOND, makeRecord({ receivedAt: T0 + 30 * MINUTE, skewMs: 4_100 }))).toEqual([]);
    // Inside the limit on two pings in a row, as the page needed two outside it.
    expect(ticks.at(T0 + 31 * MINUTE + 10 * SECOND, makeRecord({ receivedAt: T0 + 31 * MINUTE, skewMs: 3_900 }))).toEqual([]);
    expect(ticks.at(T0 + 32 * MINUTE + 10 * SECOND, makeRecord({ receivedAt: T0 + 32 * MINUTE, skewMs: 3_800 }))).toEqual([
      "✅ <b>alpha</b> CLOCK SKEW over after 32 min: host clock within limits (3.8 s)",
    ]);
  });

  it("pages on the second ping that shows it (latency can fake one) and recovers on the second that shows the clock fixed", () => {
    const ticks = new Ticks({ timing: { confirmPings: { ...ONE_OBSERVATION, skewed: 2 } } });
    expect(ticks.at(T0 + 10 * SECOND, makeRecord({ receivedAt: T0, skewMs: -6_000 }))).toEqual([]);
    expect(ticks.at(T0 + 70 * SECOND, makeRecord({ receivedAt: T0 + MINUTE, skewMs: -6_000 }))).toEqual([
      "🔴 <b>alpha</b> CLOCK SKEW: host clock behind by 6.0 s (limit 5 s)",
    ]);
    expect(ticks.at(T0 + 130 * SECOND, makeRecord({ receivedAt: T0 + 2 * MINUTE, skewMs: 200 }))).toEqual([]);
    expect(ticks.at(T0 + 190 * SECOND, makeRecord({ receivedAt: T0 + 3 * MINUTE, skewMs: 200 }))).toEqual([
      "✅ <b>alpha</b> CLOCK SKEW over after 3 min: host clock within limits (0.2 s)",
    ]);
  });
});

describe("repeats, acks and mutes", () => {
  const halted = (now: number) => beatRecord(now - 10 * SECOND, now - 20 * SECOND, "halted");
  const healthy = (now: number) => beatRecord(now - 10 * SECOND, now - 20 * SECOND, "ok");
  const start = T0 + 10 * SECOND;
  const alert = "🔴 <b>alpha</b> FAILING: status &quot;halted&quot;";
  const repeat = "🔁 <b>alpha</b> still FAILING (unacknowledged): status &quot;halted&quot;";

  it("repeats an unacknowledged alert every repeatMinutes, not before", () => {
    const ticks = new Ticks();
    expect(ticks.at(start, halted(start))).toEqual([alert]);
    expect(ticks.at(start + 30 * MINUTE - SECOND, halted(start + 30 * MINUTE - SECOND))).toEqual([]);
    expect(ticks.at(start + 30 * MINUTE, halted(start + 30 * MINUTE))).toEqual([repeat]);
    expect(ticks.at(start + 30 * MINUTE, halted(start + 30 * MINUTE))).toEqual([]);
    expect(ticks.at(start + 60 * MINUTE - SECOND, halted(start + 60 * MINUTE - SECOND))).toEqual([]);
    expect(ticks.at(start + 60 * MINUTE, halted(start + 60 * MINUTE))).toEqual([repeat]);
  });

  it("never repeats with repeatMinutes 0", () => {
    const ticks = new Ticks({ alerts: { repeatMinutes: 0 } });
    expect(ticks.at(start, halted(start))).toEqual([alert]);
    expect(ticks.at(start + 3 * HOUR, halted(start + 3 * HOUR))).toEqual([]);
  });

  it("an ack stops the repeats but not the recovery", () => {
    const ticks = new Ticks();
    expect(ticks.at(start, halted(start))).toEqual([alert]);
    const acked: OperatorView = { acked: [incidentId("alpha", "failing", start)], mutedUntil: null };
    expect(ticks.at(start + 30 * MINUTE, halted(start + 30 * MINUTE), acked)).toEqual([]);
    expect(ticks.at(start + 90 * MINUTE, halted(start + 90 * MINUTE), acked)).toEqual([]);
    expect(ticks.at(start + 91 * MINUTE, healthy(start + 91 * MINUTE), acked)).toEqual([
      "✅ <b>alpha</b> FAILING over after 91 min: status &quot;ok&quot; again",
    ]);
  });

  it("an ack of one incident does not silence the next one", () => {
    const ticks = new Ticks();
    ticks.at(start, halted(start));
    const acked: OperatorView = { acked: [incidentId("alpha", "failing", start)], mutedUntil: null };
    ticks.at(start + MINUTE, healthy(start + MINUTE), acked);
    expect(ticks.at(start + 2 * MINUTE, halted(start + 2 * MINUTE), acked)).toEqual([alert]);
    expect(ticks.at(start + 32 * MINUTE, halted(start + 32 * MINUTE), acked)).toEqual([repeat]);
  });

  it("a mute swallows alerts and repeats while it lasts (the alert is kept for the history, unsent); the incident is still repeated after it ends", () => {
    const ticks = new Ticks();
    const muted: OperatorView = { acked: [], mutedUntil: start + 45 * MINUTE };
    expect(ticks.at(start, halted(start), muted)).toEqual([expect.stringMatching(/^🔕 <b>alpha<\/b> FAILING while muted, not paged: /)]);
    expect(ticks.condition("failing")?.pagedAt).toBe(start);
    expect(ticks.at(start + 30 * MINUTE, halted(start + 30 * MINUTE), muted)).toEqual([]);
    expect(ticks.at(start + 45 * MINUTE, halted(start + 45 * MINUTE), muted)).toEqual([repeat]);
  });
});

describe("the first reminder of a paused circuit (the operator's morning, not the exchange's)", () => {
  const paused = circuitFile({ paused: true, reason: "manual", since: T0 / 1000 });
  const at = (ticks: Ticks, now: number) => ticks.at(now, beatRecord(now - 10 * SECOND, now - 20 * SECOND, "ok", paused));
  const reminder = "⏸️ <b>alpha</b> still CIRCUIT TRIPPED: circuit paused: manual since 2026-11-24T14:00:00Z";

  it.each([
    // Tripped at 03:00 Berlin with reminderAt 09:00: reminded that morning, not the next.
    ["tripped before the reminder time: reminded the same morning", Date.UTC(2026, 10, 25, 2, 0), Date.UTC(2026, 10, 25, 7, 59), Date.UTC(2026, 10, 25, 8, 0)],
    // Tripped at 10:00 Berlin: the first reminder is the next morning.
    ["tripped after the reminder time: reminded the next morning", Date.UTC(2026, 10, 25, 9, 0), Date.UTC(2026, 10, 26, 7, 59), Date.UTC(2026, 10, 26, 8, 0)],
    // Berlin leaves summer time on 2026-10-25: 09:00 is 07:00 UTC before, 08:00 UTC after.
    ["across the autumn DST change", Date.UTC(2026, 9, 25, 2, 0), Date.UTC(2026, 9, 25, 7, 59), Date.UTC(2026, 9, 25, 8, 0)],
  ])("%s", (_label, trippedAt, justBefore, reminderAt) => {
    // The host trades in New York; the operator sleeps in Berlin: alerts.timezone decides.
    const ticks = new Ticks({ alerts: { timezone: "Europe/Berlin" }, hosts: [{ id: "alpha", calendar: NEW_YORK, reminderAt: "09:00" }] });
    expect(at(ticks, trippedAt)).toHaveLength(1);
    expect(at(ticks, justBefore)).toEqual([]);
    expect(at(ticks, reminderAt)).toEqual([reminder]);
    expect(at(ticks, reminderAt + MINUTE)).toEqual([]);
  });
});

describe("confirmation by consecutive pings (flap damping)", () => {
  const halted = (receivedAt: number) => beatRecord(receivedAt, receivedAt - 5 * SECOND, "halted");
  const healthy = (receivedAt: number) => beatRecord(receivedAt, receivedAt - 5 * SECOND);
  const defaults = { timing: { confirmPings: { failing: 2, heartbeatUnreadable: 2, circuitUnreadable: 2, skewed: 2 } } };

  it("a failing status pages on the second ping that shows it, not the first", () => {
    const ticks = new Ticks(defaults);
    const first = halted(T0);
    expect(ticks.at(T0, first)).toEqual([]);
    expect(ticks.at(T0 + 30 * SECOND, first)).toEqual([]); // time passing is no new observation
    expect(ticks.at(T0 + MINUTE, halted(T0 + MINUTE))).toEqual(["🔴 <b>alpha</b> FAILING: status &quot;halted&quot;"]);
  });

  it("one bad ping between good ones is dropped quietly: no page, no recovery", () => {
    const ticks = new Ticks(defaults);
    const lines = [healthy(T0), halted(T0 + MINUTE), healthy(T0 + 2 * MINUTE), halted(T0 + 3 * MINUTE), healthy(T0 + 4 * MINUTE)].flatMap((record) =>
      ticks.at(record.receivedAt, record),
    );
    expect(lines).toEqual([]);
    expect(ticks.open()).toEqual([]);
  });

  it("a half-written heartbeat seen once does not page; seen twice it does", () => {
    const ticks = new Ticks(defaults);
    const corrupt = (receivedAt: number) => makeRecord({ receivedAt, body: { files: { heartbeat: rawFile('{"at": 17'), circuit: { state: "missing" } } } });
    expect(ticks.at(T0, corrupt(T0))).toEqual([]);
    expect(ticks.at(T0 + MINUTE, healthy(T0 + MINUTE))).toEqual([]);
    expect(ticks.at(T0 + 2 * MINUTE, corrupt(T0 + 2 * MINUTE))).toEqual([]);
    expect(ticks.at(T0 + 3 * MINUTE, corrupt(T0 + 3 * MINUTE))).toEqual([
      '🔴 <b>alpha</b> HEARTBEAT UNREADABLE: heartbeat.json corrupt: not JSON (truncated write?): {&quot;at&quot;: 17',
    ]);
  });

  it("a paged failure recovers on the second clean ping in a row, so a flapping status pages once, not on every swing", () => {
    const ticks = new Ticks(defaults);
    const pattern = ["halted", "halted", "ok", "halted", "ok", "halted", "halted", "ok", "halted", "ok", "ok", "ok"];
    const lines = pattern.flatMap((status, index) => {
      const at = T0 + index * MINUTE;
      return ticks.at(at, status === "ok" ? healthy(at) : halted(at));
    });
    expect(lines).toEqual(["🔴 <b>alpha</b> FAILING: status &quot;halted&quot;", "✅ <b>alpha</b> FAILING over after 10 min: status &quot;ok&quot; again"]);
    expect(ticks.open()).toEqual([]);
  });

  it("a recovery waits for as many clean pings as the page needed bad ones, and time passing is no clean ping", () => {
    const ticks = new Ticks({ timing: { confirmPings: { ...defaults.timing.confirmPings, failing: 3 } } });
    for (const at of [T0, T0 + MINUTE]) expect(ticks.at(at, halted(at))).toEqual([]);
    expect(ticks.at(T0 + 2 * MINUTE, halted(T0 + 2 * MINUTE))).toHaveLength(1);
    const clean = healthy(T0 + 3 * MINUTE);
    expect(ticks.at(clean.receivedAt, clean)).toEqual([]);
    expect(ticks.at(T0 + 3 * MINUTE + 30 * SECOND, clean)).toEqual([]);
    expect(ticks.at(T0 + 4 * MINUTE, healthy(T0 + 4 * MINUTE))).toEqual([]);
    expect(ticks.at(T0 + 5 * MINUTE, healthy(T0 + 5 * MINUTE))).toEqual(["✅ <b>alpha</b> FAILING over after 5 min: status &quot;ok&quot; again"]);
  });

  it("a circuit trip is a deliberate act: it pages on the first ping that shows it", () => {
    const ticks = new Ticks(defaults);
    const paused = beatRecord(T0, T0 - 5 * SECOND, "ok", circuitFile({ paused: true, reason: "manual" }));
    expect(ticks.at(T0, paused)).toEqual(["🔴 <b>alpha</b> CIRCUIT TRIPPED: circuit paused: manual"]);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function escapeHtmlForTest(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
