// The alarm-truth simulation: the real ping route (`createApp({ now }).fetch` with real
// signed requests) and the real cron (`runTick(env, deps)`) driven in simulated time
// against simulated Workers KV, simulated Telegram and simulated hosts with real
// incidents; then what reached the phone is scored against what happened (score.ts).
import { computeBudget } from "../src/budget.ts";
import { type Config, parseConfig } from "../src/config.ts";
import { TIMESTAMP_HEADER, SIGNATURE_HEADER } from "../src/protocol.ts";
import { createApp } from "../src/routes.ts";
import { runTick } from "../src/scheduled.ts";
import { createHmac } from "node:crypto";
import { deriveHostSecret } from "../src/signature.ts";
import { type HostSpec, INCIDENT_CLASSES, type Incident, type IncidentClass, SimHost } from "./hosts.ts";
import { type OperationCounts, SimulatedKv, type SimulatedKvView, type StalenessStats } from "./kv.ts";
import { Random } from "./random.ts";
import { Scheduler } from "./scheduler.ts";
import { attachDecisions, classifyNotices, type ConditionScore, type Decision, type PageLine, parsePages, score } from "./score.ts";
import { SimulatedTelegram, type TelegramFaultRates } from "./telegram.ts";
import { type Episode, groundTruth } from "./truth.ts";

export interface FaultRates {
  /** Share of cron ticks Cloudflare skips. */
  cronSkipped: number;
  /** Share of cron ticks run 5-50 s late. */
  cronLate: number;
  /** Share of cron ticks run twice, in two locations at about the same time. */
  cronDuplicated: number;
  telegram: TelegramFaultRates;
  /** Hour-long Telegram outages per 10 days (at least one). */
  telegramOutagesPer10Days: number;
  /** KV write-quota outages per 15 days (at least one), and how long each lasts. */
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
  telegram: { rateLimited: 0.02, serverError: 0.01, timeout: 0.01 },
  telegramOutagesPer10Days: 1,
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

export interface TickRecord {
  id: number;
  scheduledFor: number;
  startedAt: number;
  decidedAt: number;
  location: string;
  copy: "on time" | "late" | "duplicate";
  outcome: string;
  delivered: number;
  /** The tick's last read of cron:state: when, and how stale. */
  cronStateReadAt: number;
  cronStateStaleMs: number;
  endedAt: number;
}

export interface SimulationResult {
  options: Required<Omit<SimulationOptions, "faults">> & { faults: FaultRates };
  config: Config;
  hosts: HostSpec[];
  incidents: Incident[];
  incidentsByClass: Record<IncidentClass, number>;
  episodes: Episode[];
  /** Every alert, repeat, reminder and recovery line the phone got, with the tick that decided it. */
  pages: PageLine[];
  decisions: Decision[];
  tickLog: TickRecord[];
  scores: ConditionScore[];
  notices: Map<string, number>;
  kvByOwner: Map<string, OperationCounts>;
  kvByCaller: Map<string, OperationCounts>;
  kvStaleness: StalenessStats;
  ticks: { scheduled: number; skipped: number; late: number; duplicated: number; ran: number; outcomes: Map<string, number> };
  telegram: { calls: number; delivered: number; outcomes: Map<string, number>; outages: Array<{ from: number; until: number }> };
  kvQuotaOutages: Array<{ from: number; until: number }>;
  pingAnswers: Map<string, number>;
  logs: Map<string, number>;
  failures: string[];
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

/** Where Cloudflare may run a cron tick: some share a location with a host, most do not. */
const CRON_LOCATIONS = ["ewr", "fra", "sjc", "sin", "lhr", "gru"];
const DEFAULT_START = Date.UTC(2026, 2, 2, 0, 0, 0);
const MINUTE_MS = 60_000;

export function hostSpecs(count: number): HostSpec[] {
  return Array.from({ length: count }, (_, index) => {
    const template = HOST_TEMPLATES[index % HOST_TEMPLATES.length];
    if (template === undefined) throw new Error("no host templates");
    const round = Math.floor(index / HOST_TEMPLATES.length);
    return round === 0 ? template : { ...template, id: `${template.id}-${round + 1}` };
  });
}

function rawConfig(hosts: readonly HostSpec[]): Record<string, unknown> {
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

const SECRETS = {
  WITNESS_MASTER_KEY: "sim-master-key-0123456789abcdef0123456789abcdef",
  TELEGRAM_BOT_TOKEN: "123456:sim-bot-token",
  STATUS_TOKEN: "sim-status-token",
  TELEGRAM_WEBHOOK_SECRET: "sim-webhook-secret",
};

/**
 * The Worker's bindings for one request or tick. The one place simulated bindings stand
 * in for the Worker's: SimulatedKvView answers every KVNamespace call src/store.ts makes
 * (get single and bulk with type and cacheTtl, put with expirationTtl, delete, list).
 */
function workerEnv(kv: SimulatedKvView, config: object): Env {
  const bindings = { WITNESS_KV: kv, WITNESS_CONFIG: config, ...SECRETS };
  return bindings as unknown as Env;
}

/** Windows of `minutes` at random times, `count` of them, clear of the run's first and last 12 h. */
function windows(random: Random, start: number, days: number, count: number, minutes: number): Array<{ from: number; until: number }> {
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
  const faults: FaultRates = { ...DEFAULT_FAULTS, ...options.faults };
  const start = options.start ?? DEFAULT_START;
  const end = start + options.days * 86_400_000;
  const random = new Random(options.seed);
  const scheduler = new Scheduler(start);
  const specs = hostSpecs(options.hosts);
  const raw = rawConfig(specs);
  const config = parseConfig(raw);
  const budget = computeBudget(config);
  if (budget.refusals.length > 0) throw new Error(`check-config would refuse the simulated configuration: ${budget.refusals.join("; ")}`);
  const replayWindowMs = config.timing.replayWindowSeconds * 1000;

  const kv = new SimulatedKv({ seed: options.seed, clock: () => scheduler.now, maxPropagationMs: faults.kvPropagationMaxSeconds * 1000 });
  const telegram = new SimulatedTelegram(scheduler, random.fork("telegram"), faults.telegram);
  const outageRandom = random.fork("outages");
  const telegramOutages = windows(outageRandom, start, options.days, Math.max(1, Math.round((options.days / 10) * faults.telegramOutagesPer10Days)), 60);
  for (const outage of telegramOutages) telegram.addOutage(outage.from, outage.until);
  const kvQuotaOutages = windows(outageRandom, start, options.days, Math.max(1, Math.round(options.days / 15)), faults.kvQuotaOutageMinutes);
  for (const outage of kvQuotaOutages) kv.failWrites(outage.from, outage.until);

  const app = createApp({ now: () => scheduler.now });
  const secrets = new Map<string, string>();
  for (const spec of specs) secrets.set(spec.id, await deriveHostSecret(SECRETS.WITNESS_MASTER_KEY, spec.id));

  const logs = new Map<string, number>();
  const hosts = specs.map(
    (spec) =>
      new SimHost(spec, {
        scheduler,
        random: random.fork("hosts"),
        replayWindowMs,
        async sendPing(host, rawBody, timestampMs) {
          const timestamp = String(timestampMs);
          const request = new Request(`https://witness.sim/v1/ping/${host.spec.id}`, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              [TIMESTAMP_HEADER]: timestamp,
              // Signed as the Node agent signs (node:crypto); the route verifies with WebCrypto.
              [SIGNATURE_HEADER]: createHmac("sha256", secrets.get(host.spec.id) ?? "").update(`${timestamp}.${rawBody}`).digest("hex"),
            },
            body: rawBody,
          });
          const response = await app.fetch(request, workerEnv(kv.at(host.spec.location, "ping route"), raw));
          await response.arrayBuffer();
          return response.status;
        },
      }),
  );

  // Incidents: each host draws classes from a shuffled deck (every class comes round),
  // spaced by random gaps, kept clear of KV quota outages (those test the degraded path).
  const incidentRandom = random.fork("incidents");
  const keepClear = kvQuotaOutages.map((outage) => ({ from: outage.from - 30 * MINUTE_MS, until: outage.until + 30 * MINUTE_MS }));
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
  const ticks: TickRecord[] = [];
  const decisions: Decision[] = [];
  const tickStats = { scheduled: 0, skipped: 0, late: 0, duplicated: 0, ran: 0, outcomes: new Map<string, number>() };
  const skippedMinutes: number[] = [];
  const lateMinutes: Array<{ at: number; lateMs: number }> = [];
  let nextTickId = 0;
  const runCopy = (scheduledFor: number, at: number, copy: TickRecord["copy"]) => {
    const location = cronRandom.pick(CRON_LOCATIONS);
    const id = nextTickId++;
    scheduler.at(at, () => {
      scheduler.spawn(`cron tick ${new Date(scheduledFor).toISOString()} (${copy})`, async () => {
        const view = kv.at(location, "cron");
        let decidedAt = scheduler.now;
        const startedAt = scheduler.now;
        const summary = await runTick(workerEnv(view, raw), {
          now: () => (decidedAt = scheduler.now),
          fetch: telegram.fetchFor(id),
          sleep: scheduler.sleep,
        });
        tickStats.ran++;
        tickStats.outcomes.set(summary.outcome, (tickStats.outcomes.get(summary.outcome) ?? 0) + 1);
        const cronStateReads = view.reads.filter((read) => read.key === "cron:state");
        ticks.push({
          id,
          scheduledFor,
          startedAt,
          decidedAt,
          location,
          copy,
          outcome: summary.outcome,
          delivered: summary.delivered,
          cronStateReadAt: cronStateReads.at(-1)?.at ?? startedAt,
          cronStateStaleMs: cronStateReads.at(-1)?.staleMs ?? 0,
          endedAt: scheduler.now,
        });
        for (const event of summary.events) {
          decisions.push({ at: decidedAt, hostId: event.hostId, kind: event.kind, type: event.type, tick: id });
        }
      });
    });
  };
  for (let minute = start + MINUTE_MS; minute < end; minute += MINUTE_MS) {
    tickStats.scheduled++;
    if (cronRandom.chance(faults.cronSkipped)) {
      tickStats.skipped++;
      skippedMinutes.push(minute);
      continue;
    }
    let at = minute + cronRandom.between(0, 2000);
    if (cronRandom.chance(faults.cronLate)) {
      tickStats.late++;
      const lateMs = cronRandom.between(5000, 50_000);
      lateMinutes.push({ at: minute, lateMs });
      at += lateMs;
      runCopy(minute, at, "late");
    } else {
      runCopy(minute, at, "on time");
    }
    if (cronRandom.chance(faults.cronDuplicated)) {
      tickStats.duplicated++;
      runCopy(minute, at + cronRandom.between(0, 3000), "duplicate");
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
  const tickById = new Map(ticks.map((tick) => [tick.id, tick]));
  const intervalOf = new Map(specs.map((spec) => [spec.id, spec.intervalSeconds]));
  const pages = parsePages(telegram.delivered);
  attachDecisions(pages, decisions);
  const scores = score({
    episodes,
    pages,
    runStart: start,
    runEnd: end,
    cronAllowanceMs: (from, to) =>
      skippedMinutes.filter((minute) => minute >= from && minute <= to).length * MINUTE_MS +
      lateMinutes.filter((late) => late.at >= from && late.at <= to).reduce((max, late) => Math.max(max, late.lateMs), 0),
    // A page decided from a read that predates the end: the next ping, KV lag, a tick, settle, a late tick.
    postSlackMs: (hostId) => ((intervalOf.get(hostId) ?? 60) + 90 + 60 + config.timing.settleSeconds + 60) * 1000,
    kvExcuse: (tickId, earlierId) => {
      const tick = tickById.get(tickId);
      const earlier = tickById.get(earlierId);
      if (tick === undefined || earlier === undefined) return null;
      if (tickId !== earlierId && tick.cronStateReadAt < earlier.endedAt) {
        return `two ticks at once: this one read cron:state ${((earlier.endedAt - tick.cronStateReadAt) / 1000).toFixed(1)} s before the other recorded its send; no compare-and-swap`;
      }
      if (tick.cronStateStaleMs > 0) return `the sending tick's read of cron:state was ${(tick.cronStateStaleMs / 1000).toFixed(1)} s stale after settling`;
      return null;
    },
    explain: (from, to) =>
      ticks
        .filter((tick) => tick.startedAt >= from && tick.startedAt <= to)
        .sort((a, b) => a.startedAt - b.startedAt)
        .map((tick) => `${new Date(tick.startedAt).toISOString().slice(11, 19)} ${tick.location}${tick.copy === "on time" ? "" : ` (${tick.copy})`}${tick.cronStateStaleMs > 0 ? ` read cron:state ${Math.round(tick.cronStateStaleMs / 1000)} s stale` : ""}${tick.outcome === "judged" ? "" : ` ${tick.outcome}`}`)
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
    tickLog: ticks,
    scores,
    notices: classifyNotices(telegram.delivered),
    kvByOwner: kv.byOwner,
    kvByCaller: kv.byCaller,
    kvStaleness: kv.staleness,
    ticks: tickStats,
    telegram: { calls: telegram.calls.length, delivered: telegram.delivered.length, outcomes: telegramOutcomes, outages: telegramOutages },
    kvQuotaOutages,
    pingAnswers,
    logs,
    failures: scheduler.failures,
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

