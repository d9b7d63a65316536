// The cron, once a minute: the watcher's watcher. It asks the monitor to judge anything
// overdue and to repair its alarm if it is missing or stuck in the past, then pings the
// operator's dead-man URL, but only while pages can be delivered. When the monitor
// cannot be reached (a daily quota ran out) the operator hears so once, from here, and
// never as "every host is dark".
import { type Config, ConfigError } from "../config.ts";
import { errorMessage } from "../format.ts";
import { loadConfig } from "../load-config.ts";
import { renderDegraded } from "../phone/messages.ts";
import { DEGRADED_KEY } from "../monitor/storage.ts";
import { monitorStub, unreachableReason } from "../monitor/stub.ts";
import { type Fetch, TelegramClient } from "../phone/telegram.ts";

export interface CronDeps {
  now: () => number;
  fetch: Fetch;
}

export interface CronSummary {
  outcome: "checked" | "misconfigured" | "degraded";
  detail?: string;
}

export const realDeps: CronDeps = {
  now: () => Date.now(),
  fetch: (input, init) => fetch(input, init),
};

/** Said at most once per isolate when even KV cannot remember that it was said. */
let degradedSaidInMemory = false;

export async function runCron(env: Env, deps: CronDeps = realDeps): Promise<CronSummary> {
  let config: Config;
  try {
    config = loadConfig(env.WITNESS_CONFIG);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    try {
      await monitorStub(env).pageConfigError(error.message);
    } catch (reachError) {
      console.error(`cron: could not reach the monitor to page the configuration error: ${errorMessage(reachError)}`);
    }
    return { outcome: "misconfigured", detail: error.message };
  }

  let report;
  try {
    report = await monitorStub(env).check();
  } catch (error) {
    const reason = unreachableReason(error);
    await sayDegradedOnce(env, config, reason, deps);
    return { outcome: "degraded", detail: reason };
  }
  if (degradedSaidInMemory || (await env.WITNESS_KV.get(DEGRADED_KEY).catch(() => null)) !== null) {
    // The monitor answers again; it says itself how long nobody could reach it.
    degradedSaidInMemory = false;
    await env.WITNESS_KV.delete(DEGRADED_KEY).catch(() => undefined);
  }

  // The dead-man URL says "the whole path works": not while pages cannot reach the phone.
  if (config.alerts.deadManUrl !== null && report.deliveryOk) await pingDeadMan(config.alerts.deadManUrl, deps);
  const detail = [
    `${report.events} event(s)`,
    `${report.delivered} delivered`,
    `${report.undelivered} waiting`,
    report.repaired ? "alarm repaired" : null,
    report.permanentError === null ? null : `delivery failing: ${report.permanentError}`,
  ]
    .filter((part) => part !== null)
    .join(", ");
  return { outcome: "checked", detail };
}

async function pingDeadMan(url: string, deps: CronDeps): Promise<void> {
  try {
    const response = await deps.fetch(url, { method: "GET", signal: AbortSignal.timeout(5000) });
    if (!response.ok) console.error(`cron: dead-man URL answered ${response.status}`);
  } catch (error) {
    console.error(`cron: dead-man URL unreachable: ${errorMessage(error)}`);
  }
}

async function sayDegradedOnce(env: Env, config: Config, reason: string, deps: CronDeps): Promise<void> {
  console.error(`cron: monitor unreachable: ${reason}`);
  if (degradedSaidInMemory) return;
  let said: string | null = null;
  try {
    said = await env.WITNESS_KV.get(DEGRADED_KEY);
  } catch {
    // KV may be out of quota as well: this isolate's memory is then all there is.
  }
  if (said !== null) return;
  const telegram = new TelegramClient(config.telegram.baseUrl, env.TELEGRAM_BOT_TOKEN, deps.fetch);
  const result = await telegram.sendMessage(config.telegram.chatId, renderDegraded(reason, deps.now()));
  if (!result.ok) {
    console.error(`cron: could not send the degraded notice: ${result.error}`);
    return;
  }
  degradedSaidInMemory = true;
  try {
    await env.WITNESS_KV.put(DEGRADED_KEY, String(deps.now()));
  } catch (error) {
    console.error(`cron: could not remember the degraded notice in KV: ${errorMessage(error)}`);
  }
}
