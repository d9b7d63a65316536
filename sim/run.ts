// The alarm-truth simulation: the monitor (MonitorCore over node:sqlite, sim/monitor.ts)
// driven in simulated time by simulated hosts with real incidents, its own at-least-once
// alarm, the cron each minute, daily-quota windows (DO and KV) and a faulty Telegram;
// then what reached the phone is scored against what happened (score.ts).
import { computeBudget, hostBudget } from "../src/budget.ts";
import { type Config, parseConfig } from "../src/config.ts";
import { ConditionKind, confirmationsNeeded } from "../src/judge/judge.ts";
import { type HostSpec, INCIDENT_CLASSES, type Incident, type IncidentClass, SimHost } from "./hosts.ts";
import { type OperationCounts, SimulatedKv, type StalenessStats } from "./kv.ts";
import { type AlarmFaultRates, type MonitorRun, type MonitorStats, SimMonitor, type Window } from "./monitor.ts";
import { Random } from "./random.ts";
import { Scheduler } from "./scheduler.ts";
import { attachDecisions, classifyNotices, type ConditionScore, type Decision, type PageLine, parsePages, score } from "./score.ts";
import { SimulatedTelegram, type TelegramFaultRates } from "./telegram.ts";
import { type Episode, groundTruth } from "./truth.ts";

export interface FaultRates {
  /** Share of cron minutes Cloudflare skips. */
  cronSkipped: number;
  /** Share of cron minutes run 5-50 s late. */
  cronLate: number;
  /** Share of cron minutes run twice. */
  cronDuplicated: number;
  alarm: AlarmFaultRates;
  /** Alarm failover windows (every alarm 0-60 s late) per day, and how long each lasts. */
  alarmFailoversPerDay: number;
  alarmFailoverMinutes: number;
  /** Isolate evictions per day. */
  evictionsPerDay: number;
  telegram: TelegramFaultRates;
  /** Hour-long Telegram outages per 10 days (at least one). */
  telegramOutagesPer10Days: number;
  /** Windows per 15 days (at least one each) in which a daily quota is spent, and how long each lasts. */
  doQuotaOutageMinutes: number;
  kvQuotaOutageMinutes: number;
  /** Longest propagation of a KV write to another location. */
  kvPropagationMaxSeconds: number;
  /** Mean time between incidents on one host. */
  incidentGapHours: number;
}

export const DEFAULT_FAULTS: FaultRates = {
  cronSkipped: 0.002,
  cronLate: 0.01,
  cronDuplicated: 0.005,
  alarm: { lost: 0.003, duplicated: 0.01, throwsBefore: 0.005, throwsAfter: 0.005 },
  alarmFailoversPerDay: 2,
  alarmFailoverMinutes: 20,
  evictionsPerDay: 6,
  telegram: { rateLimited: 0.02, serverError: 0.01, timeout: 0.01 },
  telegramOutagesPer10Days: 1,
  doQuotaOutageMinutes: 90,
  kvQuotaOutageMinutes: 120,
  kvPropagationMaxSeconds: 60,
  incidentGapHours: 5,
};

export interface SimulationOptions {
  days: number;
  seed: number;
  hosts: number;
  /** Unix ms the run starts at; defaults to Monday 2026-03-02 00:00 UTC (both 2026 spring DST changes fall inside 30 days). */
  start?: number;
  faults?: Partial<FaultRates>;
}

export interface SimulationResult {
  options: Required<Omit<SimulationOptions, "faults">> & { faults: FaultRates };
  config: Config;
  hosts: HostSpec[];
  incidents: Incident[];
  incidentsByClass: Record<IncidentClass, number>;
  episodes: Episode[];
  /** Every alert, repeat, reminder and recovery line the phone got, with the run that decided it. */
  pages: PageLine[];
  decisions: Decision[];
  runs: MonitorRun[];
  monitor: MonitorStats;
  /** Rows written and read by the monitor's SQL (setAlarm counted apart, in monitor.alarmSets). */
  rows: { written: number; read: number };
  scores: ConditionScore[];
  notices: Map<string, number>;
  kvByOwner: Map<string, OperationCounts>;
  kvByCaller: Map<string, OperationCounts>;
  kvStaleness: StalenessStats;
  cron: { scheduled: number; skipped: number; late: number; duplicated: number; ran: number; outcomes: Map<string, number> };
  telegram: { calls: number; delivered: number; outcomes: Map<string, number>; outages: Window[] };
  doQuotaOutages: Window[];
  kvQuotaOutages: Window[];
  alarmFailovers: Window[];
  pingAnswers: Map<string, number>;
  logs: Map<string, number>;
  failures: string[];
  /** Pages excused as held back by Telegram: how long each followed Telegram's last refusal. */
  telegramCatchUpMs: number[];
  runMs: number;
}

const HOST_TEMPLATES: HostSpec[] = [
  {
    id: "nyc-equities",
    location: "ewr",
    intervalSeconds: 60,
    pipelineCycleSeconds: 120,
    maxAgeInSessionSeconds: 900,
    maxAgeOutOfSessionSeconds: null,
    calendar: { timezone: "America/New_York", weekdays: ["mon", "tue", "wed", "thu", "fri"], open: "09:30", close: "16:00", holidays: ["2026-03-13", "2026-04-03"] },
    circuitAtRest: "green",
  },
  {
    id: "ldn-fx",
    location: "lhr",
    intervalSeconds: 60,
    pipelineCycleSeconds: 60,
    maxAgeInSessionSeconds: 900,
    maxAgeOutOfSessionSeconds: 3600,
    calendar: { timezone: "Europe/London", weekdays: ["mon", "tue", "wed", "thu", "fri"], open: "08:00", close: "16:30", holidays: [] },
    circuitAtRest: "missing",
  },
  {
    id: "tyo-futures",
    location: "nrt",
    intervalSeconds: 120,
    pipelineCycleSeconds: 300,
    maxAgeInSessionSeconds: 900,
    maxAgeOutOfSessionSeconds: null,
    calendar: { timezone: "Asia/Tokyo", weekdays: ["mon", "tue", "wed", "thu", "fri"], open: "09:00", close: "15:00", holidays: ["2026-03-20"] },
    circuitAtRest: "missing",
  },
  {
    id: "crypto-mm",
    location: "fra",
    intervalSeconds: 60,
    pipelineCycleSeconds: 30,
    maxAgeInSessionSeconds: 900,
    maxAgeOutOfSessionSeconds: null,
    calendar: null,
    circuitAtRest: "green",
  },
  {
    id: "sgp-options",
    location: "sin",
    intervalSeconds: 60,
    pipelineCycleSeconds: 90,
    maxAgeInSessionSeconds: 900,
    maxAgeOutOfSessionSeconds: 7200,
    calendar: { timezone: "Asia/Singapore", weekdays: ["mon", "tue", "wed", "thu", "fri"], open: "09:00", close: "17:00", holidays: [] },
    circuitAtRest: "missing",
  },
  {
    id: "chi-futures",
    location: "ord",
    intervalSeconds: 60,
    pipelineCycleSeconds: 60,
    maxAgeInSessionSeconds: 900,
    maxAgeOutOfSessionSeconds: null,
    calendar: { timezone: "America/Chicago", weekdays: ["mon", "tue", "wed", "thu", "fri"], open: "08:30", close: "15:15", holidays: [] },
    circuitAtRest: "green",
  },
];

const DEFAULT_START = Date.UTC(2026, 2, 2, 0, 0, 0);
/**
 * The longest a page held back by Telegram may follow Telegram's last refusal: the
 * monitor's longest retry backoff (30 s) or the simulated retry_after (up to 40 s), the
 * alarm's batch window, and the alarm's own jitter. Past it the page is late by witness.
 */
const TELEGRAM_CATCH_UP_MS = 40_000 + 1000 + 10_000;
const MINUTE_MS = 60_000;

export function hostSpecs(count: number): HostSpec[] {
  return Array.from({ length: count }, (_, index) => {
    const template = HOST_TEMPLATES[index % HOST_TEMPLATES.length];
    if (template === undefined) throw new Error("no host templates");
    const round = Math.floor(index / HOST_TEMPLATES.length);
    return round === 0 ? template : { ...template, id: `${template.id}-${round + 1}` };
  });
}

export function rawConfig(hosts: readonly HostSpec[]): Record<string, unknown> {
  return {
    plan: "free",
    telegram: { chatId: "4242", baseUrl: "https://telegram.sim" },
    alerts: { repeatMinutes: 30, timezone: "UTC", digestAt: "08:00" },
    hosts: hosts.map((host) => ({
      id: host.id,
      intervalSeconds: host.intervalSeconds,
      maxAgeInSessionSeconds: host.maxAgeInSessionSeconds,
      maxAgeOutOfSessionSeconds: host.maxAgeOutOfSessionSeconds,
      ...(host.calendar === null ? {} : { calendar: { ...host.calendar, weekdays: [...host.calendar.weekdays], holidays: [...host.calendar.holidays] } }),
    })),
  };
}

const TELEGRAM_TOKEN = "123456:sim-bot-token";

/** Windows of `minutes` at random times, `count` of them, clear of the run's first and last 12 h. */
function windows(random: Random, start: number, days: number, count: number, minutes: number): Window[] {
  const span = days * 86_400_000;
  const margin = Math.min(12 * 3_600_000, span / 4);
  const slot = (span - 2 * margin) / count;
  return Array.from({ length: count }, (_, index) => {
    const from = Math.round(start + margin + index * slot + random.between(0, Math.max(0, slot - minutes * MINUTE_MS)));
    return { from, until: from + minutes * MINUTE_MS };
  });
}

export async function runSimulation(options: SimulationOptions): Promise<SimulationResult> {
  const began = performance.now();
  const faults: FaultRates = { ...DEFAULT_FAULTS, ...options.faults, alarm: { ...DEFAULT_FAULTS.alarm, ...options.faults?.alarm } };
  const start = options.start ?? DEFAULT_START;
  const end = start + options.days * 86_400_000;
  const random = new Random(options.seed);
  const scheduler = new Scheduler(start);
  const specs = hostSpecs(options.hosts);
  const config = parseConfig(rawConfig(specs));
  const budget = computeBudget(config);
  if (budget.refusals.length > 0) throw new Error(`check-config would refuse the simulated configuration: ${budget.refusals.join("; ")}`);
  const replayWindowMs = config.timing.replayWindowSeconds * 1000;

  const kv = new SimulatedKv({ seed: options.seed, clock: () => scheduler.now, maxPropagationMs: faults.kvPropagationMaxSeconds * 1000 });
  const telegram = new SimulatedTelegram(scheduler, random.fork("telegram"), faults.telegram);
  const outageRandom = random.fork("outages");
  const telegramOutages = windows(outageRandom, start, options.days, Math.max(1, Math.round((options.days / 10) * faults.telegramOutagesPer10Days)), 60);
  for (const outage of telegramOutages) telegram.addOutage(outage.from, outage.until);
  const quotaCount = Math.max(1, Math.round(options.days / 15));
  const kvQuotaOutages = windows(outageRandom, start, options.days, quotaCount, faults.kvQuotaOutageMinutes);
  for (const outage of kvQuotaOutages) kv.failWrites(outage.from, outage.until);
  // The DO quota runs out at another time than KV's (a day's requests spent early).
  const doQuotaOutages = windows(outageRandom.fork("do"), start, options.days, quotaCount, faults.doQuotaOutageMinutes);
  const failoverCount = Math.round(options.days * faults.alarmFailoversPerDay);
  const alarmFailovers = failoverCount === 0 ? [] : windows(outageRandom.fork("failover"), start, options.days, failoverCount, faults.alarmFailoverMinutes);

  const kvView = kv.at("monitor", "monitor");
  const monitor = new SimMonitor({
    scheduler,
    random: random.fork("monitor"),
    config,
    kv: {
      put: (key, value) => kvView.put(key, value),
      get: async (key) => {
        const value = await kvView.get(key);
        return typeof value === "string" ? value : null;
      },
      delete: (key) => kvView.delete(key),
    },
    telegram: (run) => telegram.fetchFor(run),
    telegramToken: TELEGRAM_TOKEN,
    faults: { alarm: faults.alarm, failoverWindows: alarmFailovers, quotaWindows: doQuotaOutages, evictionsPerDay: faults.evictionsPerDay },
  });

  const logs = new Map<string, number>();
  const hosts = specs.map(
    (spec) =>
      new SimHost(spec, {
        scheduler,
        random: random.fork("hosts"),
        replayWindowMs,
        sendPing: (host, rawBody, timestampMs) => monitor.ping(host.spec.id, rawBody, timestampMs),
      }),
  );

  // Incidents: each host draws classes from a shuffled deck (every class comes round),
  // spaced by random gaps, kept clear of quota windows (those test the degraded path).
  const incidentRandom = random.fork("incidents");
  const keepClear = [...kvQuotaOutages, ...doQuotaOutages].map((outage) => ({ from: outage.from - 30 * MINUTE_MS, until: outage.until + 30 * MINUTE_MS }));
  for (const host of hosts) {
    let deck: IncidentClass[] = [];
    let at = start + incidentRandom.between(0.2, 1) * faults.incidentGapHours * 3_600_000;
    while (at < end) {
      if (deck.length === 0) deck = incidentRandom.shuffle(INCIDENT_CLASSES);
      const kind = deck.pop();
      if (kind === undefined) break;
      const durationMs = host.drawDuration(kind);
      const clash = keepClear.find((window) => at < window.until && at + durationMs + 30 * MINUTE_MS > window.from);
      if (clash !== undefined) {
        deck.push(kind);
        at = clash.until + incidentRandom.between(0, 3_600_000);
        continue;
      }
      host.schedule(kind, at, durationMs);
      at += durationMs + Math.max(20 * MINUTE_MS, incidentRandom.exponential(faults.incidentGapHours * 3_600_000));
    }
    host.start();
  }

  // The cron: every minute, now and then late, twice, or not at all.
  const cronRandom = random.fork("cron");
  const cron = { scheduled: 0, skipped: 0, late: 0, duplicated: 0, ran: 0, outcomes: new Map<string, number>() };
  const skippedMinutes: number[] = [];
  const lateMinutes: Array<{ at: number; lateMs: number }> = [];
  const runCron = (at: number) => {
    scheduler.at(at, () => {
      scheduler.spawn(`cron ${new Date(at).toISOString()}`, async () => {
        const summary = await monitor.cron();
        cron.ran++;
        const outcome = summary.repaired ? "checked, alarm repaired" : summary.outcome;
        cron.outcomes.set(outcome, (cron.outcomes.get(outcome) ?? 0) + 1);
      });
    });
  };
  for (let minute = start + MINUTE_MS; minute < end; minute += MINUTE_MS) {
    cron.scheduled++;
    if (cronRandom.chance(faults.cronSkipped)) {
      cron.skipped++;
      skippedMinutes.push(minute);
      continue;
    }
    let at = minute + cronRandom.between(0, 2000);
    if (cronRandom.chance(faults.cronLate)) {
      cron.late++;
      const lateMs = cronRandom.between(5000, 50_000);
      lateMinutes.push({ at: minute, lateMs });
      at += lateMs;
    }
    runCron(at);
    if (cronRandom.chance(faults.cronDuplicated)) {
      cron.duplicated++;
      runCron(at + cronRandom.between(0, 3000));
    }
  }

  const restore = captureConsole(logs);
  try {
    await scheduler.runUntil(end);
  } finally {
    restore();
  }

  const episodes = hosts.flatMap((host) => {
    const hostConfig = config.hosts.find((candidate) => candidate.id === host.spec.id);
    return hostConfig === undefined ? [] : groundTruth(host, hostConfig, config, start, end, replayWindowMs);
  });
  const intervalOf = new Map(specs.map((spec) => [spec.id, spec.intervalSeconds]));
  const cronPathExtraMs = new Map(
    config.hosts.map((host) => {
      const bounds = hostBudget(host, config);
      return [host.id, (bounds.darkPageWithinSecondsIfAlarmsFail - bounds.darkPageWithinSeconds) * 1000];
    }),
  );
  const cronFaultMs = (from: number, to: number) =>
    skippedMinutes.filter((minute) => minute >= from && minute <= to).length * MINUTE_MS +
    lateMinutes.filter((late) => late.at >= from && late.at <= to).reduce((max, late) => Math.max(max, late.lateMs), 0);
  const overlaps = (list: readonly Window[], from: number, to: number) => list.some((window) => window.from <= to && window.until >= from);
  const decisions: Decision[] = monitor.decisions.map((decision) => ({ at: decision.at, hostId: decision.hostId, kind: decision.kind, type: decision.type, tick: decision.run }));
  const pages = parsePages(telegram.delivered);
  attachDecisions(pages, decisions);
  const telegramCatchUpMs: number[] = [];
  const scores = score({
    episodes,
    pages,
    runStart: start,
    runEnd: end,
    // A page decided from the last ping before an episode ended: that ping's interval and a cron minute.
    // A recovery of a condition confirmed by pings waits for as many clean pings in a row.
    postSlackMs: (hostId, kind) => {
      const parsed = ConditionKind.safeParse(kind);
      const pings = parsed.success ? confirmationsNeeded(parsed.data, config.timing) : 1;
      return (pings * (intervalOf.get(hostId) ?? 60) + 60) * 1000;
    },
    lateExcuse: ({ hostId, from, deadline, decidedAt, deliveredAt }) => {
      // The outbox delivers in order: a page decided while an earlier message waits on a
      // refusal waits behind it. So Telegram is to blame from the first refusal since its
      // last delivery before the decision (the head it was queued behind), not only from
      // the decision on.
      const blockedFrom = Math.min(decidedAt, deadline) - 1000;
      const lastDeliveredBefore = telegram.calls.reduce((latest, call) => (call.outcome === "delivered" && call.at < blockedFrom && call.at > latest ? call.at : latest), -Infinity);
      const refusals = telegram.calls.filter((call) => call.outcome !== "delivered" && call.at > lastDeliveredBefore && call.at <= deliveredAt);
      const telegramFailed = refusals.length > 0;
      const cronPathBound = deadline + (cronPathExtraMs.get(hostId) ?? 60_000) + cronFaultMs(from, deliveredAt) + 10_000;
      const alarmFailed = overlaps(monitor.alarmFaults, from, deliveredAt) || overlaps(alarmFailovers, from, deliveredAt);
      if (alarmFailed && decidedAt <= cronPathBound && (deliveredAt <= cronPathBound || telegramFailed)) return "alarm";
      if (decidedAt <= deadline + 10_000 && telegramFailed) {
        // Once Telegram answers, the page must follow within one retry: the backoff cap
        // (or Telegram's own retry_after, at most 40 s here) and the alarm's batch window.
        const lastRefusal = Math.max(...refusals.map((call) => call.at));
        const catchUpMs = deliveredAt - lastRefusal;
        telegramCatchUpMs.push(catchUpMs);
        return catchUpMs <= TELEGRAM_CATCH_UP_MS ? "telegram" : null;
      }
      return null;
    },
    missExcuse: ({ hostId, from, deadline, endAt }) => {
      const cronPathBound = deadline + (cronPathExtraMs.get(hostId) ?? 60_000) + cronFaultMs(from, deadline) + 10_000;
      const alarmFailed = overlaps(monitor.alarmFaults, from, deadline) || overlaps(alarmFailovers, from, deadline);
      return alarmFailed && endAt !== null && endAt <= cronPathBound;
    },
    explain: (from, to) =>
      monitor.runs
        .filter((run) => run.at >= from && run.at <= to)
        .map((run) => `${new Date(run.at).toISOString().slice(11, 19)} ${run.reason}${run.outcome === "ok" ? "" : ` ${run.outcome}`}`)
        .join(" | "),
  });

  const incidents = hosts.flatMap((host) => host.incidents).sort((a, b) => a.start - b.start);
  const incidentsByClass = Object.fromEntries(INCIDENT_CLASSES.map((kind) => [kind, incidents.filter((incident) => incident.kind === kind && incident.start < end).length])) as Record<IncidentClass, number>;
  const pingAnswers = new Map<string, number>();
  for (const host of hosts) for (const [answer, count] of host.answers) pingAnswers.set(answer, (pingAnswers.get(answer) ?? 0) + count);
  const telegramOutcomes = new Map<string, number>();
  for (const call of telegram.calls) telegramOutcomes.set(call.outcome, (telegramOutcomes.get(call.outcome) ?? 0) + 1);

  return {
    options: { days: options.days, seed: options.seed, hosts: options.hosts, start, faults },
    config,
    hosts: specs,
    incidents,
    incidentsByClass,
    episodes,
    pages,
    decisions,
    runs: monitor.runs,
    monitor: monitor.stats,
    rows: { written: monitor.sql.rowsWritten, read: monitor.sql.rowsRead },
    scores,
    notices: classifyNotices(telegram.delivered),
    kvByOwner: kv.byOwner,
    kvByCaller: kv.byCaller,
    kvStaleness: kv.staleness,
    cron,
    telegram: { calls: telegram.calls.length, delivered: telegram.delivered.length, outcomes: telegramOutcomes, outages: telegramOutages },
    doQuotaOutages,
    kvQuotaOutages,
    alarmFailovers,
    pingAnswers,
    logs,
    failures: scheduler.failures,
    telegramCatchUpMs,
    runMs: performance.now() - began,
  };
}

/** The product logs to the console; in a simulation those lines are counted, not printed. */
function captureConsole(counts: Map<string, number>): () => void {
  const original = { log: console.log, error: console.error, warn: console.warn };
  const count = (...args: unknown[]) => {
    const line = args.map(String).join(" ");
    // Group by the line's first words, without the numbers that vary.
    const key = line.replace(/\d+/g, "#").slice(0, 60);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  };
  console.log = count;
  console.error = count;
  console.warn = count;
  return () => {
    console.log = original.log;
    console.error = original.error;
    console.warn = original.warn;
  };
}

