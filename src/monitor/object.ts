// The monitor as a Durable Object: one instance per deployment, SQLite-backed, woken by
// pings (RPC from the edge), by its own alarm and by the cron. A thin shell: the work is
// in core.ts, which this wires to the object's storage, alarm, KV binding and fetch.
import { DurableObject } from "cloudflare:workers";
import { type Config, ConfigError } from "../config.ts";
import { loadConfig, telegramTargetFromRaw } from "../load-config.ts";
import { renderConfigError } from "../phone/messages.ts";
import type { PingBody } from "../protocol.ts";
import { TelegramClient } from "../phone/telegram.ts";
import { handleUpdate, type TelegramCall, type TelegramUpdate, type UpdateLinks } from "../phone/webhook.ts";
import { type ClockOutcome, MonitorCore, type PingOutcome, type RunReport } from "./core.ts";
import { type HistoryEvent, type HostState, type MonitorMeta, newMonitorMeta, type OutboxMessage } from "./state.ts";
import { MonitorStorage } from "./storage.ts";

/** The one monitor's name: every deployment has exactly one. */
export const MONITOR_NAME = "monitor";

export interface MonitorView {
  now: number;
  hosts: HostState[];
  meta: MonitorMeta;
  outbox: OutboxMessage[];
  alarmAt: number | null;
}

/** A history query: one host or all, since Worker ms, at most `limit` of the newest. */
export interface EventQuery {
  hostId?: string;
  since: number;
  limit?: number;
}

/** Events the status page reads at most (its log and the timeline's spans). */
const DASHBOARD_EVENTS = 2000;

function viewOf(core: MonitorCore): MonitorView {
  return { now: Date.now(), hosts: [...core.allHosts().values()], meta: core.monitorMeta(), outbox: core.outbox(), alarmAt: core.alarmAt() };
}

export class Monitor extends DurableObject<Env> {
  private readonly storage: MonitorStorage;
  private core: MonitorCore | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.storage = new MonitorStorage(ctx.storage.sql);
    void ctx.blockConcurrencyWhile(async () => {
      this.storage.migrate();
      const config = this.configOrNull();
      if (config !== null) {
        this.core = this.build(config);
        await this.core.start();
      }
    });
  }

  private configOrNull(): Config | null {
    try {
      return loadConfig(this.env.WITNESS_CONFIG);
    } catch (error) {
      if (error instanceof ConfigError) return null;
      throw error;
    }
  }

  private build(config: Config): MonitorCore {
    return new MonitorCore({
      storage: this.storage,
      kv: this.env.WITNESS_KV,
      fetch: (input, init) => fetch(input, init),
      now: () => Date.now(),
      alarm: { get: () => this.ctx.storage.getAlarm(), set: (at) => this.ctx.storage.setAlarm(at) },
      transaction: (body) => this.ctx.storage.transactionSync(body),
      config,
      telegramToken: this.env.TELEGRAM_BOT_TOKEN,
    });
  }

  /** The core, or a ConfigError naming the field (the edge refuses requests before that). */
  private monitor(): MonitorCore {
    if (this.core === null) {
      loadConfig(this.env.WITNESS_CONFIG); // throws the ConfigError that explains why
      throw new ConfigError("the monitor has no valid configuration");
    }
    return this.core;
  }

  /** The core for one request, counted in today's usage. */
  private called(): MonitorCore {
    const core = this.monitor();
    core.countRequest("call");
    return core;
  }

  async acceptPing(hostId: string, body: PingBody, sentAt: number): Promise<PingOutcome> {
    return this.called().acceptPing({ hostId, body, sentAt });
  }

  async refuseForClock(hostId: string, body: PingBody, sentAt: number): Promise<ClockOutcome> {
    return this.called().refuseForClock({ hostId, body, sentAt });
  }

  override async alarm(): Promise<void> {
    if (this.core === null) return;
    this.core.countRequest("alarm");
    const report = await this.core.run("alarm");
    if (report.events > 0 || report.delivered > 0) {
      console.log(`monitor alarm: ${report.events} event(s), ${report.delivered} delivered, ${report.undelivered} waiting`);
    }
  }

  /** The cron's visit: judge anything overdue, repair the alarm, report for health and the dead-man URL. */
  async check(): Promise<RunReport & { repaired: boolean }> {
    const core = this.called();
    const report = await core.run("cron");
    const alarm = await core.verifyAlarm();
    return { ...report, alarmAt: alarm.alarmAt, repaired: alarm.repaired };
  }

  async handleUpdate(update: TelegramUpdate, links: UpdateLinks = {}): Promise<TelegramCall[]> {
    const core = this.called();
    return handleUpdate(update, loadConfig(this.env.WITNESS_CONFIG), core, Date.now(), links);
  }

  view(): MonitorView {
    return viewOf(this.called());
  }

  events(query: EventQuery): HistoryEvent[] {
    return this.called().events(query);
  }

  /** What the status page shows, in one request: the view and the history since `since`. */
  dashboard(since: number): MonitorView & { events: HistoryEvent[] } {
    const core = this.called();
    return { ...viewOf(core), events: core.events({ since, limit: DASHBOARD_EVENTS }) };
  }

  /** Pages an invalid configuration once; works without a valid config (only the telegram section). */
  async pageConfigError(message: string): Promise<boolean> {
    const meta = this.storage.loadMeta();
    if (meta?.configErrorPaged === message) return false;
    const target = telegramTargetFromRaw(this.env.WITNESS_CONFIG);
    if (target === null) return false;
    const telegram = new TelegramClient(target.baseUrl, this.env.TELEGRAM_BOT_TOKEN);
    const result = await telegram.sendMessage(target.chatId, renderConfigError(message));
    if (!result.ok) {
      console.error(`monitor: could not page the configuration error: ${result.error}`);
      return false;
    }
    this.storage.putMeta({ ...(meta ?? newMonitorMeta(Date.now())), configErrorPaged: message });
    return true;
  }
}
