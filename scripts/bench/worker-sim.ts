// The monitor's cost, measured in Node: MonitorCore over node:sqlite (sim/sqlite.ts)
// with healthy hosts. Counts per ping (DO requests, rows written, KV operations), CPU per
// ping, per alarm run (one host due) and per cron run (every host; process.cpuUsage around the call), and a simulated healthy day
// (sim/monitor.ts, no faults) per host next to check-config's prediction (src/budget.ts).
import { computeBudget, hostBudget } from "../../src/budget.ts";
import { type Config, parseConfig } from "../../src/config.ts";
import { MonitorCore } from "../../src/monitor/core.ts";
import { MonitorStorage, type SnapshotKv } from "../../src/monitor/storage.ts";
import type { PingBody } from "../../src/protocol.ts";
import { SimMonitor } from "../../sim/monitor.ts";
import { Random } from "../../sim/random.ts";
import { Scheduler } from "../../sim/scheduler.ts";
import { NodeSql } from "../../sim/sqlite.ts";

export const DAY_START = Date.UTC(2026, 5, 2, 0, 0, 0);
const HOUR_MS = 3_600_000;

export function benchConfig(hostCount: number, intervalSeconds: number, plan: "free" | "paid" = "paid"): Config {
  return parseConfig({
    plan,
    telegram: { chatId: "4242", baseUrl: "https://telegram.bench" },
    alerts: { repeatMinutes: 30, timezone: "UTC", digestAt: "08:00" },
    hosts: Array.from({ length: hostCount }, (_, index) => ({
      id: `host-${index}`,
      intervalSeconds,
      calendar: { timezone: "America/New_York", weekdays: ["mon", "tue", "wed", "thu", "fri"], open: "09:30", close: "16:00", holidays: [] },
    })),
  });
}

/** A healthy ping as the agent sends it: heartbeat fresh and ok, no circuit file. */
export function healthyBody(hostId: string, seq: number, sentAt: number): PingBody {
  const heartbeat = JSON.stringify({ at: (sentAt - 5000) / 1000, iso: new Date(sentAt - 5000).toISOString(), status: "ok", cycle: seq });
  return {
    v: 1,
    seq,
    sentAt,
    agent: { version: "0.1.0-bench", startedAt: DAY_START - HOUR_MS, bootId: `${hostId}-boot`, kind: "node" },
    lastPushOutage: null,
    files: { heartbeat: { state: "ok", size: heartbeat.length, mtime: sentAt - 5000, text: heartbeat }, circuit: { state: "missing" } },
  };
}

class CountingKv implements SnapshotKv {
  readonly values = new Map<string, string>();
  reads = 0;
  writes = 0;
  put(key: string, value: string): Promise<void> {
    this.writes++;
    this.values.set(key, value);
    return Promise.resolve();
  }
  get(key: string): Promise<string | null> {
    this.reads++;
    return Promise.resolve(this.values.get(key) ?? null);
  }
  delete(key: string): Promise<void> {
    this.writes++;
    this.values.delete(key);
    return Promise.resolve();
  }
}

const telegramOk = (_input: string, _init?: RequestInit): Promise<Response> => Promise.resolve(Response.json({ ok: true, result: { message_id: 1, date: 0 } }));

export function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

export interface PingCost {
  hosts: number;
  intervalSeconds: number;
  pings: number;
  doRequestsPerPing: number;
  rowsWrittenPerPing: number;
  /** Of which setAlarm (one row each). */
  alarmRowsPerPing: number;
  rowsReadPerPing: number;
  kvOpsPerPing: number;
  cpuMedianMicros: number;
  cpuP95Micros: number;
}

/** A monitor with hosts pinging in turn, evenly spread, straight into MonitorCore.acceptPing. */
export async function measurePings(hostCount: number, intervalSeconds: number, rounds: number): Promise<PingCost> {
  let now = DAY_START + 14 * HOUR_MS;
  const { core, sql, kv, alarmSets } = benchCore(hostCount, intervalSeconds, () => now);
  await core.start();
  const gapMs = (intervalSeconds * 1000) / hostCount;
  const ping = pinger(core, hostCount, () => now);
  // Warm-up: two rounds, and the first runs that greet and publish.
  for (let round = 0; round < 2; round++) {
    for (let index = 0; index < hostCount; index++) {
      now += gapMs;
      await ping(index);
    }
  }
  await core.run("alarm");
  const rowsBefore = sql.rowsWritten;
  const readsBefore = sql.rowsRead;
  const alarmsBefore = alarmSets();
  const kvBefore = kv.reads + kv.writes;
  const cpu: number[] = [];
  let pings = 0;
  for (let round = 0; round < rounds; round++) {
    for (let index = 0; index < hostCount; index++) {
      now += gapMs;
      const before = cpuMicros();
      await ping(index);
      cpu.push(cpuMicros() - before);
      pings++;
    }
  }
  const alarmRows = alarmSets() - alarmsBefore;
  return {
    hosts: hostCount,
    intervalSeconds,
    pings,
    doRequestsPerPing: 1,
    rowsWrittenPerPing: (sql.rowsWritten - rowsBefore + alarmRows) / pings,
    alarmRowsPerPing: alarmRows / pings,
    rowsReadPerPing: (sql.rowsRead - readsBefore) / pings,
    kvOpsPerPing: (kv.reads + kv.writes - kvBefore) / pings,
    cpuMedianMicros: percentile(cpu, 50),
    cpuP95Micros: percentile(cpu, 95),
  };
}

export interface RunCost {
  hosts: number;
  runs: number;
  cpuMedianMicros: number;
  cpuP95Micros: number;
}

export interface AlarmRunCosts {
  /** Alarm runs woken by one host's dark deadline: that host judged and paged, the rest not touched. */
  oneDue: RunCost;
  /** Cron runs (run("cron") and verifyAlarm()): every host judged, nothing to page. */
  cron: RunCost;
}

export function benchCore(
  hostCount: number,
  intervalSeconds: number,
  clock: () => number,
): { core: MonitorCore; storage: MonitorStorage; sql: NodeSql; kv: CountingKv; alarm: () => number | null; alarmSets: () => number } {
  const sql = new NodeSql();
  const storage = new MonitorStorage(sql);
  const kv = new CountingKv();
  let alarmAt: number | null = null;
  let sets = 0;
  const core = new MonitorCore({
    storage,
    kv,
    fetch: telegramOk,
    now: clock,
    alarm: {
      get: () => Promise.resolve(alarmAt),
      set: (at) => {
        sets++;
        alarmAt = at;
        return Promise.resolve();
      },
    },
    transaction: (body) => sql.transaction(body),
    config: benchConfig(hostCount, intervalSeconds),
    telegramToken: "123:bench",
  });
  return { core, storage, sql, kv, alarm: () => alarmAt, alarmSets: () => sets };
}

/** A healthy ping from host `index`, each host with its own growing sequence. */
export function pinger(core: MonitorCore, hostCount: number, clock: () => number): (index: number) => Promise<void> {
  const seq = new Array<number>(hostCount).fill(0);
  return async (index) => {
    seq[index] = (seq[index] ?? 0) + 1;
    const hostId = `host-${index}`;
    const now = clock();
    const outcome = await core.acceptPing({ hostId, body: healthyBody(hostId, seq[index] ?? 0, now), sentAt: now });
    if (outcome.status !== 200) throw new Error(`bench ping refused: ${JSON.stringify(outcome)}`);
  };
}

/**
 * CPU of the monitor's timed runs over `hostCount` hosts pinging every 30 s. An alarm
 * judges only the hosts that are due: each measured one is woken by one host going
 * dark (that host judged, its page queued and sent, the snapshot published). A cron run
 * judges every host (the safety net), here with nothing to page: the steady state.
 */
export async function measureRuns(hostCount: number, runs: number): Promise<AlarmRunCosts> {
  let now = DAY_START + 14 * HOUR_MS;
  const { core, alarm } = benchCore(hostCount, 30, () => now);
  await core.start();
  const gapMs = 30_000 / hostCount;
  let silent: number | null = null;
  const ping = pinger(core, hostCount, () => now);
  // Warm-up: two rounds of pings and the runs that greet and publish.
  for (let round = 0; round < 2; round++) {
    for (let index = 0; index < hostCount; index++) {
      now += gapMs;
      await ping(index);
    }
  }
  await core.run("cron");
  await core.run("alarm");

  const cron: number[] = [];
  for (let run = 0; run < runs; run++) {
    now += 50;
    const before = cpuMicros();
    await core.run("cron");
    await core.verifyAlarm();
    cron.push(cpuMicros() - before);
  }

  // Host k falls silent; the others ping on until the alarm fires at its dark deadline.
  const oneDue: number[] = [];
  let index = 0;
  let woken = 0;
  while (oneDue.length < runs) {
    if (silent === null) silent = oneDue.length % hostCount;
    now += gapMs;
    const alarmAt = alarm();
    if (alarmAt !== null && alarmAt <= now) {
      now = Math.max(now, alarmAt);
      const before = cpuMicros();
      const report = await core.run("alarm");
      const spent = cpuMicros() - before;
      woken++;
      if (report.events > 0) {
        oneDue.push(spent);
        silent = null;
      }
    }
    if (index !== silent) await ping(index);
    index = (index + 1) % hostCount;
    if (woken > 20 * runs) throw new Error("bench: the alarm keeps waking with nothing due");
  }
  return {
    oneDue: { hosts: hostCount, runs: oneDue.length, cpuMedianMicros: percentile(oneDue, 50), cpuP95Micros: percentile(oneDue, 95) },
    cron: { hosts: hostCount, runs: cron.length, cpuMedianMicros: percentile(cron, 50), cpuP95Micros: percentile(cron, 95) },
  };
}

export interface DayCost {
  hosts: number;
  intervalSeconds: number;
  measured: { doRequests: number; rowsWritten: number; kvWrites: number; kvReads: number };
  predicted: { doRequests: number; rowsWritten: number; kvWrites: number; kvReads: number };
  alarmRuns: number;
  cronRuns: number;
  telegramMessages: number;
}

/** One simulated healthy day (after an uncounted hour) through sim/monitor.ts with no faults, per host. */
export async function simulateHealthyDay(hostCount: number, intervalSeconds: number): Promise<DayCost> {
  const start = DAY_START;
  const scheduler = new Scheduler(start);
  const config = benchConfig(hostCount, intervalSeconds);
  const kv = new CountingKv();
  let telegramMessages = 0;
  const monitor = new SimMonitor({
    scheduler,
    random: new Random(7),
    config,
    kv,
    telegram: () => (input, init) => {
      telegramMessages++;
      return telegramOk(input, init);
    },
    telegramToken: "123:bench",
    faults: { alarm: { lost: 0, duplicated: 0, throwsBefore: 0, throwsAfter: 0 }, failoverWindows: [], quotaWindows: [], evictionsPerDay: 0 },
  });
  const end = start + 25 * HOUR_MS;
  const gapMs = (intervalSeconds * 1000) / hostCount;
  for (let index = 0; index < hostCount; index++) {
    const hostId = `host-${index}`;
    let seq = 0;
    for (let at = start + index * gapMs + 500; at < end; at += intervalSeconds * 1000) {
      scheduler.at(at, () => {
        seq++;
        const sentAt = scheduler.now;
        scheduler.spawn(`ping ${hostId}`, async () => {
          await monitor.ping(hostId, JSON.stringify(healthyBody(hostId, seq, sentAt)), sentAt);
        });
      });
    }
  }
  for (let minute = start + 60_000; minute < end; minute += 60_000) {
    scheduler.at(minute + 300, () => scheduler.spawn("cron", async () => void (await monitor.cron())));
  }
  await scheduler.runUntil(start + HOUR_MS);
  const before = { requests: monitor.stats.doRequests, rows: monitor.sql.rowsWritten + monitor.stats.alarmSets, kvWrites: kv.writes, kvReads: kv.reads, alarms: monitor.stats.alarmRuns, runs: monitor.runs.length, messages: telegramMessages };
  await scheduler.runUntil(end);
  if (scheduler.failures.length > 0) throw new Error(`simulated day failed: ${scheduler.failures[0] ?? ""}`);
  const budget = computeBudget(config);
  const host = config.hosts[0];
  if (host === undefined) throw new Error("no hosts");
  const perHost = hostBudget(host, config);
  const share = (value: number) => value / hostCount;
  const alarmRuns = monitor.stats.alarmRuns - before.alarms;
  return {
    hosts: hostCount,
    intervalSeconds,
    measured: {
      doRequests: share(monitor.stats.doRequests - before.requests),
      rowsWritten: share(monitor.sql.rowsWritten + monitor.stats.alarmSets - before.rows),
      kvWrites: share(kv.writes - before.kvWrites),
      kvReads: share(kv.reads - before.kvReads),
    },
    predicted: {
      doRequests: perHost.usage.doRequests + share(budget.monitor.doRequests),
      rowsWritten: perHost.usage.rowsWritten + share(budget.monitor.rowsWritten),
      kvWrites: perHost.usage.kvWrites + share(budget.monitor.kvWrites),
      kvReads: perHost.usage.kvReads + share(budget.monitor.kvReads),
    },
    alarmRuns,
    cronRuns: monitor.runs.slice(before.runs).filter((run) => run.reason === "cron").length,
    telegramMessages: telegramMessages - before.messages,
  };
}
