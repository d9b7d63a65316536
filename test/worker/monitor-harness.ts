// Drives the monitor's core inside the real Durable Object (real SQLite storage, real
// transactions) with a clock the test sets, a recorded alarm and the Telegram stand-in.
// A new core is built from storage for every call, as after an eviction, so every test
// also proves that state survives it. The object's own alarm is not used here (it runs
// on the real clock); monitor-object.test.ts covers it.
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import type { Config } from "../../src/config.ts";
import { MonitorCore, type PingOutcome, type RunReport } from "../../src/monitor/core.ts";
import type { HostState } from "../../src/monitor/state.ts";
import { MonitorStorage } from "../../src/monitor/storage.ts";
import type { PingBody } from "../../src/protocol.ts";
import { handleUpdate, type TelegramCall, type TelegramUpdate } from "../../src/phone/webhook.ts";
import { prefixedKv, sentMessages, type TestConfigInput, testConfig, type TestEnv, testEnv } from "./helpers.ts";

export class MonitorHarness {
  readonly env: TestEnv;
  config: Config;
  private readonly stub: DurableObjectStub;
  /** The alarm as the core last set it. */
  armedAt: number | null = null;
  /** Every alarm time the core wrote (each is a row written). */
  readonly alarmSets: number[] = [];
  /** Makes the next alarm write throw: a run that dies after it sent, at its re-arm. */
  failNextAlarmSet = false;
  rowsWritten = 0;

  constructor(input: TestConfigInput = {}) {
    this.env = testEnv(input, { kv: prefixedKv(env.WITNESS_KV, `monitor-${crypto.randomUUID()}/`) });
    this.config = testConfig(input);
    this.stub = env.MONITOR.getByName(`test-${crypto.randomUUID()}`);
  }

  private started = false;

  async with<T>(now: number, body: (core: MonitorCore) => Promise<T>): Promise<T> {
    return runInDurableObject(this.stub, async (_instance, state) => {
      const storage = new MonitorStorage(state.storage.sql);
      if (!this.started) {
        // The object's own constructor ran on the real clock and recorded when the
        // monitor started; this monitor's life starts at the test's clock instead.
        storage.migrate();
        state.storage.sql.exec("DELETE FROM meta");
        state.storage.sql.exec("DELETE FROM hosts");
        this.started = true;
      }
      const core = new MonitorCore({
        storage,
        kv: this.env.WITNESS_KV,
        fetch: (input, init) => fetch(input, init),
        now: () => now,
        alarm: {
          get: async () => this.armedAt,
          set: async (at) => {
            if (this.failNextAlarmSet) {
              this.failNextAlarmSet = false;
              throw new Error("injected: setAlarm failed");
            }
            this.armedAt = at;
            this.alarmSets.push(at);
          },
        },
        transaction: (run) => state.storage.transactionSync(run),
        config: this.config,
        telegramToken: this.env.TELEGRAM_BOT_TOKEN,
      });
      await core.start();
      const before = storage.rowsWritten;
      try {
        return await body(core);
      } finally {
        this.rowsWritten += storage.rowsWritten - before;
      }
    });
  }

  /** A redeploy with another configuration: the next core is built with it. */
  reconfigure(input: TestConfigInput): void {
    this.config = testConfig(input);
  }

  ping(hostId: string, body: PingBody, now: number = body.sentAt): Promise<PingOutcome> {
    return this.with(now, (core) => core.acceptPing({ hostId, body, sentAt: body.sentAt }));
  }

  run(now: number, reason: "alarm" | "cron" = "alarm"): Promise<RunReport> {
    return this.with(now, (core) => core.run(reason));
  }

  /** Fires the alarm, at its own time, as long as it is due by `until` (at most 200 times). */
  async alarmsUntil(until: number): Promise<number[]> {
    const fired: number[] = [];
    for (let i = 0; i < 200 && this.armedAt !== null && this.armedAt <= until; i++) {
      const at = this.armedAt;
      fired.push(at);
      await this.run(at, "alarm");
      if (this.armedAt === at) break;
    }
    return fired;
  }

  update(update: TelegramUpdate, now: number): Promise<TelegramCall[]> {
    return this.with(now, (core) => handleUpdate(update, this.config, core, now));
  }

  host(hostId: string, now: number): Promise<HostState> {
    return this.with(now, async (core) => core.hostState(hostId));
  }

  messages(): Promise<string[]> {
    return sentMessages(this.env);
  }
}
