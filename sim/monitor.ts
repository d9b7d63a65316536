// The monitor Durable Object as the simulator runs it: MonitorCore (src/monitor/core.ts)
// over node:sqlite storage, with the platform around it simulated. Its alarm is
// at-least-once (late by up to a minute in failover windows, sometimes delivered twice,
// a handler that throws is retried after 2 s doubling up to 6 times, sometimes lost so
// only the cron's verifyAlarm repairs it); the isolate is evicted now and then (a fresh
// MonitorCore over the same rows); a daily quota window makes it unreachable. The edge
// in front of it does what src/edge/routes.ts and src/edge/scheduled.ts do for a ping and the cron
// (those modules import cloudflare:workers, which Node cannot load): the replay window,
// the zod parse, 503 while the monitor is unreachable, and the one degraded notice.
import type { Config } from "../src/config.ts";
import type { ConditionKind } from "../src/judge/judge.ts";
import { renderDegraded } from "../src/phone/messages.ts";
import { MonitorCore } from "../src/monitor/core.ts";
import { DEGRADED_KEY, MonitorStorage, type SnapshotKv } from "../src/monitor/storage.ts";
import { PingBody } from "../src/protocol.ts";
import { type Fetch, TelegramClient } from "../src/phone/telegram.ts";
import type { Random } from "./random.ts";
import type { Scheduler } from "./scheduler.ts";
import type { PageType } from "./score.ts";
import { NodeSql } from "./sqlite.ts";

export interface Window {
  from: number;
  until: number;
}

export interface AlarmFaultRates {
  /** Share of alarm deliveries never made (only the cron's verifyAlarm repairs them). */
  lost: number;
  /** Share of alarm deliveries made twice. */
  duplicated: number;
  /** Share of alarm invocations that throw before the handler runs (retried). */
  throwsBefore: number;
  /** Share that throw after the handler ran and recorded everything (retried: it runs again). */
  throwsAfter: number;
}

export interface MonitorFaults {
  alarm: AlarmFaultRates;
  /** Windows in which every alarm fires 0-60 s late. */
  failoverWindows: Window[];
  /** Windows in which the monitor cannot be reached (a daily DO quota ran out). */
  quotaWindows: Window[];
  /** Isolate evictions per day (at idle moments). */
  evictionsPerDay: number;
}

export interface MonitorDecision {
  at: number;
  hostId: string;
  kind: ConditionKind;
  type: PageType;
  run: number;
}

export interface MonitorRun {
  id: number;
  reason: "ping" | "alarm" | "cron" | "alarm retry" | "alarm duplicate";
  at: number;
  outcome: string;
}

export interface MonitorStats {
  doRequests: number;
  doRefused: number;
  pings: number;
  alarmSets: number;
  alarmRuns: number;
  alarmLost: number;
  alarmDuplicated: number;
  alarmThrown: number;
  alarmLateInFailover: number;
  alarmGaveUp: number;
  alarmRepairedByCron: number;
  evictions: number;
}

/** Platform retry of a thrown alarm handler: 2 s, doubling, 6 times at most. */
const ALARM_RETRY_FIRST_MS = 2000;
const ALARM_RETRIES = 6;
const FAILOVER_LATE_MAX_MS = 60_000;
const DECISION_TYPES: ReadonlySet<string> = new Set(["alert", "repeat", "reminder", "recovery"]);

export interface SimMonitorOptions {
  scheduler: Scheduler;
  random: Random;
  config: Config;
  kv: SnapshotKv & { delete(key: string): Promise<void> };
  /** The Bot API as one run sees it (the run's id labels its calls). */
  telegram: (run: number) => Fetch;
  telegramToken: string;
  faults: MonitorFaults;
}

export class SimMonitor {
  readonly sql = new NodeSql();
  readonly storage: MonitorStorage;
  readonly stats: MonitorStats = {
    doRequests: 0,
    doRefused: 0,
    pings: 0,
    alarmSets: 0,
    alarmRuns: 0,
    alarmLost: 0,
    alarmDuplicated: 0,
    alarmThrown: 0,
    alarmLateInFailover: 0,
    alarmGaveUp: 0,
    alarmRepairedByCron: 0,
    evictions: 0,
  };
  readonly decisions: MonitorDecision[] = [];
  readonly runs: MonitorRun[] = [];
  /** Moments the alarm path failed (lost, thrown, late, refused): the cron-path bound applies near them. */
  readonly alarmFaults: Window[] = [];
  private core: MonitorCore;
  private ready: Promise<void>;
  private readonly options: SimMonitorOptions;
  private alarmAt: number | null = null;
  private alarmGeneration = 0;
  private currentRun = 0;
  private nextRunId = 1;
  private inFlight = 0;
  private degradedSaidInMemory = false;

  constructor(options: SimMonitorOptions) {
    this.options = options;
    this.storage = new MonitorStorage(this.sql);
    this.sql.onExec = (query, bindings) => {
      // The history insert is the one record of every decision (core.ts recordEvents).
      if (!query.startsWith("INSERT INTO events")) return;
      const [at, hostId, type, kind] = bindings;
      if (typeof at === "number" && typeof hostId === "string" && typeof type === "string" && typeof kind === "string" && DECISION_TYPES.has(type)) {
        this.decisions.push({ at, hostId, kind: kind as ConditionKind, type: type as PageType, run: this.currentRun });
      }
    };
    this.core = this.build();
    this.ready = this.core.start();
    this.scheduleEvictions();
  }

  private get now(): number {
    return this.options.scheduler.now;
  }

  private build(): MonitorCore {
    return new MonitorCore({
      storage: this.storage,
      kv: this.options.kv,
      fetch: (input, init) => this.options.telegram(this.currentRun)(input, init),
      now: () => this.options.scheduler.now,
      alarm: {
        get: () => Promise.resolve(this.alarmAt),
        set: (at) => {
          this.setAlarm(at);
          return Promise.resolve();
        },
      },
      transaction: (body) => this.sql.transaction(body),
      config: this.options.config,
      telegramToken: this.options.telegramToken,
    });
  }

  private inWindow(windows: readonly Window[], at = this.now): boolean {
    return windows.some((window) => at >= window.from && at < window.until);
  }

  /** One request to the object: refused in a quota window, counted either way. */
  private async request<T>(reason: MonitorRun["reason"], body: (core: MonitorCore) => Promise<T>): Promise<T> {
    this.stats.doRequests++;
    if (this.inWindow(this.options.faults.quotaWindows)) {
      this.stats.doRefused++;
      throw new Error("Durable Object exceeded its daily request limit (free plan)");
    }
    await this.ready;
    const id = this.nextRunId++;
    const previous = this.currentRun;
    this.currentRun = id;
    this.inFlight++;
    try {
      const result = await body(this.core);
      if (reason !== "ping") this.runs.push({ id, reason, at: this.now, outcome: "ok" });
      return result;
    } catch (error) {
      this.runs.push({ id, reason, at: this.now, outcome: `threw: ${error instanceof Error ? error.message : String(error)}` });
      throw error;
    } finally {
      this.inFlight--;
      this.currentRun = previous;
    }
  }

  // ---- the edge: what src/edge/routes.ts does with a signed ping once the signature holds ----

  async ping(hostId: string, rawBody: string, sentAt: number): Promise<number> {
    if (Math.abs(sentAt - this.now) > this.options.config.timing.replayWindowSeconds * 1000) return 401;
    let json: unknown;
    try {
      json = JSON.parse(rawBody);
    } catch {
      return 400;
    }
    const parsed = PingBody.safeParse(json);
    if (!parsed.success) return 400;
    // RPC copies its arguments.
    const body = structuredClone(parsed.data);
    try {
      const outcome = await this.request("ping", (core) => core.acceptPing({ hostId, body, sentAt }));
      this.stats.pings++;
      return outcome.status;
    } catch {
      return 503;
    }
  }

  // ---- the cron: what src/edge/scheduled.ts runCron does ----

  async cron(): Promise<{ outcome: "checked" | "degraded"; repaired: boolean }> {
    try {
      const alarmBefore = this.alarmAt;
      const result = await this.request("cron", async (core) => {
        await core.run("cron");
        return core.verifyAlarm();
      });
      if (result.repaired) {
        this.stats.alarmRepairedByCron++;
        this.alarmFaults.push({ from: alarmBefore ?? this.now - 60_000, until: this.now });
      }
      if (this.degradedSaidInMemory || (await this.options.kv.get(DEGRADED_KEY).catch(() => null)) !== null) {
        this.degradedSaidInMemory = false;
        await this.options.kv.delete(DEGRADED_KEY).catch(() => undefined);
      }
      return { outcome: "checked", repaired: result.repaired };
    } catch {
      await this.sayDegradedOnce();
      return { outcome: "degraded", repaired: false };
    }
  }

  private async sayDegradedOnce(): Promise<void> {
    if (this.degradedSaidInMemory) return;
    const said = await this.options.kv.get(DEGRADED_KEY).catch(() => null);
    if (said !== null) return;
    const config = this.options.config;
    const telegram = new TelegramClient(config.telegram.baseUrl, this.options.telegramToken, this.options.telegram(0));
    const result = await telegram.sendMessage(config.telegram.chatId, renderDegraded("a Durable Object daily limit was reached (resets at 00:00 UTC)", this.now));
    if (!result.ok) return;
    this.degradedSaidInMemory = true;
    await this.options.kv.put(DEGRADED_KEY, String(this.now)).catch(() => undefined);
  }

  // ---- the alarm, at least once ----

  private setAlarm(at: number): void {
    this.stats.alarmSets++;
    this.alarmAt = at;
    const generation = ++this.alarmGeneration;
    const random = this.options.random;
    if (random.chance(this.options.faults.alarm.lost)) {
      // Never delivered: getAlarm keeps answering this time, soon in the past.
      this.stats.alarmLost++;
      this.alarmFaults.push({ from: at, until: at + 120_000 });
      return;
    }
    let fireAt = Math.max(at, this.now) + random.between(5, 300);
    if (this.inWindow(this.options.faults.failoverWindows, fireAt)) {
      const lateMs = random.between(0, FAILOVER_LATE_MAX_MS);
      fireAt += lateMs;
      this.stats.alarmLateInFailover++;
      this.alarmFaults.push({ from: at, until: fireAt + 1000 });
    }
    this.options.scheduler.at(fireAt, () => {
      if (generation !== this.alarmGeneration) return;
      // The platform clears the alarm as it delivers it; the handler sets the next one.
      this.alarmAt = null;
      this.invokeAlarm("alarm", 0, at);
      if (random.chance(this.options.faults.alarm.duplicated)) {
        this.stats.alarmDuplicated++;
        this.options.scheduler.at(this.now + random.between(0, 3000), () => this.invokeAlarm("alarm duplicate", ALARM_RETRIES, at));
      }
    });
  }

  private invokeAlarm(reason: MonitorRun["reason"], attempt: number, scheduledFor: number): void {
    const random = this.options.random;
    const rates = this.options.faults.alarm;
    this.options.scheduler.spawn(`monitor ${reason}`, async () => {
      try {
        await this.request(reason, async (core) => {
          if (random.chance(rates.throwsBefore)) throw new Error("alarm handler failed before it ran (isolate reset)");
          this.stats.alarmRuns++;
          await core.run("alarm");
          if (random.chance(rates.throwsAfter)) throw new Error("alarm handler failed after it ran (reported as failed)");
        });
      } catch {
        this.stats.alarmThrown++;
        this.alarmFaults.push({ from: scheduledFor, until: this.now + 130_000 });
        if (attempt >= ALARM_RETRIES) {
          this.stats.alarmGaveUp++;
          return;
        }
        const retryAt = this.now + ALARM_RETRY_FIRST_MS * 2 ** attempt;
        // The retry is the platform's, whatever the handler set meanwhile.
        if (this.alarmAt === null) this.alarmAt = retryAt;
        const generation = this.alarmGeneration;
        this.options.scheduler.at(retryAt, () => {
          if (this.alarmAt === retryAt && generation === this.alarmGeneration) this.alarmAt = null;
          this.invokeAlarm("alarm retry", attempt + 1, scheduledFor);
        });
      }
    });
  }

  // ---- evictions ----

  private scheduleEvictions(): void {
    const perDay = this.options.faults.evictionsPerDay;
    if (perDay <= 0) return;
    const next = () => {
      this.options.scheduler.at(this.now + this.options.random.exponential(86_400_000 / perDay), () => {
        if (this.inFlight === 0) this.evict();
        next();
      });
    };
    next();
    for (const window of this.options.faults.quotaWindows) this.options.scheduler.at(window.until, () => this.inFlight === 0 && this.evict());
  }

  /** A new isolate: nothing in memory survives, the rows and the alarm do. */
  evict(): void {
    this.stats.evictions++;
    this.core = this.build();
    this.ready = this.core.start();
  }

  /** The core, for the bench (no faults there). */
  monitorCore(): MonitorCore {
    return this.core;
  }

  alarmTime(): number | null {
    return this.alarmAt;
  }
}
