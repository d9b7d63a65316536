// The alarm-truth simulation in short form: the monitor (MonitorCore over node:sqlite)
// with its at-least-once alarm, the cron, quota windows and Telegram faults, over
// simulated days of real incidents. The 30-day run is `npm run simulate`; this one
// guards the goal on every change: a sweep of 50 seeds, each one simulated day of 3 hosts
// (New York, London and Tokyo sessions) with an incident every 3 h on each, two alarm
// failover windows, 12 evictions, a DO and a KV quota window and an hour of Telegram
// outage (about 0.8 s a seed), with nothing missed, false or duplicated and every page
// within its bound, and one longer seeded run that must have seen every incident class
// and fault (or the zeros mean nothing). About a minute in all on a 2-core machine.
import { beforeAll, describe, expect, it } from "vitest";
import { INCIDENT_CLASSES } from "../../sim/hosts.ts";
import { formatReport, totals } from "../../sim/report.ts";
import { runSimulation, type SimulationResult } from "../../sim/run.ts";

const SWEEP_SEEDS = Array.from({ length: 50 }, (_, index) => 1000 + index);
const DAYS = 2;
const SEED = 17;

interface SweepLine {
  seed: number;
  promised: number;
  missed: number;
  falsePages: number;
  duplicates: number;
  late: number;
  prematureRecoveries: number;
  missingRecoveries: number;
  failures: number;
  /** Pages Telegram held back, and the longest any followed Telegram's last refusal, ms. */
  heldByTelegram: number;
  catchUpWorstMs: number;
}

let sweep: SweepLine[] = [];
let result: SimulationResult;

beforeAll(async () => {
  for (const seed of SWEEP_SEEDS) {
    const run = await runSimulation({ days: 1, seed, hosts: 3, faults: { incidentGapHours: 3, evictionsPerDay: 12 } });
    const sum = totals(run);
    const line = {
      seed,
      promised: sum.promised,
      missed: sum.missed,
      falsePages: sum.falsePages,
      duplicates: sum.duplicates,
      late: sum.late,
      prematureRecoveries: sum.prematureRecoveries,
      missingRecoveries: sum.missingRecoveries,
      failures: run.failures.length,
      heldByTelegram: run.telegramCatchUpMs.length,
      catchUpWorstMs: Math.max(0, ...run.telegramCatchUpMs),
    };
    if (line.missed + line.falsePages + line.duplicates + line.late + line.prematureRecoveries + line.missingRecoveries + line.failures > 0) console.log(formatReport(run));
    sweep.push(line);
  }
  // Incidents every 3 h on average (5 h in the 30-day run), so two days see every class.
  result = await runSimulation({ days: DAYS, seed: SEED, hosts: 4, faults: { incidentGapHours: 3 } });
  if (result.scores.some((score) => score.notes.some((note) => !note.startsWith("late ("))) || result.failures.length > 0) {
    console.log(formatReport(result));
  }
}, 900_000);

describe(`${SWEEP_SEEDS.length} seeds, a simulated day each (3 hosts, an incident every 3 h)`, () => {
  it("missed nothing, paged nothing false, nothing twice, nothing past its bound", () => {
    const clean = sweep.map(({ heldByTelegram: _held, catchUpWorstMs: _worst, ...line }) => ({ ...line, promised: 0 }));
    expect(clean).toEqual(
      sweep.map(({ seed }) => ({ seed, promised: 0, missed: 0, falsePages: 0, duplicates: 0, late: 0, prematureRecoveries: 0, missingRecoveries: 0, failures: 0 })),
    );
    const promised = sweep.reduce((sum, line) => sum + line.promised, 0);
    const held = sweep.reduce((sum, line) => sum + line.heldByTelegram, 0);
    const worst = Math.max(0, ...sweep.map((line) => line.catchUpWorstMs));
    console.log(`${sweep.length} seeds: ${promised} promised incidents, 0 missed, 0 false, 0 duplicate, 0 late; ${held} held back by Telegram, delivered at worst ${(worst / 1000).toFixed(1)} s after its last refusal`);
  });

  it("had incidents to page", () => {
    expect(sweep.reduce((sum, line) => sum + line.promised, 0)).toBeGreaterThan(5 * SWEEP_SEEDS.length);
  });
});

describe(`a ${DAYS}-day seeded simulation (seed ${SEED}, 4 hosts, an incident every 3 h)`, () => {
  it("runs the real code without a crash or an unexpected answer", () => {
    expect(result.failures).toEqual([]);
    // 200 accepted, 503 while the monitor is out of quota, pushes lost in partitions; 401
    // only for a clock beyond the replay window. Never a 400, 404, 413, 429 or 500.
    const answers = [...result.pingAnswers.keys()];
    expect(answers).toEqual(expect.arrayContaining(["200", "503", "network"]));
    for (const answer of answers) expect(["200", "401", "503", "network"]).toContain(answer);
  });

  it("injected every incident class and every fault", () => {
    for (const kind of INCIDENT_CLASSES) expect(result.incidentsByClass[kind], kind).toBeGreaterThan(0);
    expect(result.cron.skipped + result.cron.late + result.cron.duplicated).toBeGreaterThan(0);
    for (const outcome of ["outage", "429", "timeout"]) expect(result.telegram.outcomes.get(outcome), outcome).toBeGreaterThan(0);
    expect(result.monitor.alarmThrown, "alarm handlers thrown").toBeGreaterThan(0);
    expect(result.monitor.alarmLateInFailover, "alarms late in a failover").toBeGreaterThan(0);
    expect(result.monitor.evictions, "evictions").toBeGreaterThan(0);
    expect(result.monitor.doRefused, "requests refused for the DO quota").toBeGreaterThan(0);
  });

  it("had promised incidents of every condition but stale to page", () => {
    // Stale needs a pipeline stall inside a session for 15 min: the 30-day run has them.
    for (const score of result.scores) if (score.kind !== "stale") expect(score.promised, score.kind).toBeGreaterThan(0);
  });

  it("missed nothing, paged nothing false, nothing late, nothing twice", () => {
    const summary = result.scores.map(({ kind, missed, falsePages, late, duplicates, prematureRecoveries }) => ({ kind, missed, falsePages, late, duplicates, prematureRecoveries }));
    expect(summary).toEqual(result.scores.map(({ kind }) => ({ kind, missed: 0, falsePages: 0, late: 0, duplicates: 0, prematureRecoveries: 0 })));
  });

  it("sent a recovery for every paged incident that ended", () => {
    for (const score of result.scores) expect(score.recovered, score.kind).toBe(score.recoveriesExpected);
  });

  it("said once that the monitor could not be reached, then how long, and never listed KV keys", () => {
    expect(result.notices.get("degraded")).toBe(result.doQuotaOutages.length);
    expect(result.notices.get("degraded over")).toBe(result.doQuotaOutages.length);
    const lists = [...result.kvByCaller.values()].reduce((total, counts) => total + counts.lists, 0);
    expect(lists).toBe(0);
  });
});
