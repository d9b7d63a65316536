// The cron tick's I/O: read every host's record, plan (tick-plan.ts, pure), persist,
// deliver. The state is written before anything is sent, so a tick whose write fails
// sends nothing it could repeat; and when KV itself fails, the operator hears once that
// the monitor is degraded instead of "every host is dark".
import { type Config, ConfigError } from "./config.ts";
import { errorMessage } from "./format.ts";
import type { AlertEvent } from "./judge.ts";
import { loadConfig, telegramTargetFromRaw } from "./load-config.ts";
import { renderConfigError, renderDegraded } from "./messages.ts";
import { type CronState, emptyCronState, type OutboxMessage, Store } from "./store.ts";
import { deliverOutbox, type Fetch, TelegramClient } from "./telegram.ts";
import { planTick, type TickInputs } from "./tick-plan.ts";

const DEGRADED_NOTICE_EVERY_MS = 3_600_000;

export interface TickDeps {
  now: () => number;
  fetch: Fetch;
  sleep: (ms: number) => Promise<void>;
}

export interface TickSummary {
  outcome: "judged" | "misconfigured" | "degraded";
  events: AlertEvent[];
  delivered: number;
  undelivered: number;
  wrote: number;
}

export const realDeps: TickDeps = {
  now: () => Date.now(),
  fetch: (input, init) => fetch(input, init),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

type ReadResult = { ok: true; inputs: TickInputs } | { ok: false; error: string };

async function readInputs(store: Store, hostIds: string[]): Promise<ReadResult> {
  try {
    const [stored, records, operators, commands] = await Promise.all([
      store.getCronState(),
      store.getPingRecords(hostIds),
      store.getOperatorStates(hostIds),
      store.getCommands(hostIds),
    ]);
    return { ok: true, inputs: { stored, records, operators, commands } };
  } catch (error) {
    return { ok: false, error: `read failed: ${errorMessage(error)}` };
  }
}


export async function runTick(env: Env, deps: TickDeps = realDeps): Promise<TickSummary> {
  const now = deps.now();
  const store = new Store(env.WITNESS_KV);
  let config: Config;
  try {
    config = loadConfig(env.WITNESS_CONFIG);
  } catch (error) {
    if (error instanceof ConfigError) return pageConfigError(env, store, error.message, now, deps);
    throw error;
  }
  const telegram = new TelegramClient(config.telegram.baseUrl, env.TELEGRAM_BOT_TOKEN, deps.fetch);
  const hostIds = config.hosts.map((host) => host.id);

  const read = await readInputs(store, hostIds);
  if (!read.ok) return reportDegraded(telegram, config, read.error, now);
  let plan = planTick(config, withDegradedNotice(read.inputs), now);

  // A page planned from a stale read of the cron's own state would repeat one already
  // sent. Before sending anything, wait out KV's edge cache, read again and plan again.
  if ((plan.newMessages.length > 0 || plan.next.outbox.length > 0) && config.timing.settleSeconds > 0) {
    await deps.sleep(config.timing.settleSeconds * 1000);
    const fresh = await readInputs(store, hostIds);
    if (!fresh.ok) return reportDegraded(telegram, config, fresh.error, now);
    plan = planTick(config, withDegradedNotice(fresh.inputs), deps.now());
  }
  let next = plan.next;

  let wrote = 0;
  if (plan.mustWrite) {
    try {
      await store.putCronState(next);
      wrote++;
      await forgetDegradedNotice();
    } catch (error) {
      // Nothing is sent that could not be remembered as sent: it would repeat every tick.
      return reportDegraded(telegram, config, `write failed: ${errorMessage(error)}`, now);
    }
  }

  const delivered = await deliver(telegram, config.telegram.chatId, next, deps);
  if (delivered.changed) {
    next = delivered.state;
    try {
      await store.putCronState(next);
      wrote++;
    } catch (error) {
      console.error(`cron: delivered pages but could not record it (${errorMessage(error)}); they may be sent again`);
    }
  }

  await pingDeadMan(config, deps);
  return {
    outcome: "judged",
    events: plan.events,
    delivered: delivered.count,
    undelivered: next.outbox.length,
    wrote,
  };
}

function inlineKeyboard(buttons: OutboxMessage["buttons"]): unknown {
  if (buttons === undefined || buttons.length === 0) return undefined;
  return { inline_keyboard: buttons.map((row) => row.map((button) => ({ text: button.text, callback_data: button.data }))) };
}

async function deliver(
  telegram: TelegramClient,
  chatId: string,
  state: CronState,
  deps: TickDeps,
): Promise<{ state: CronState; changed: boolean; count: number }> {
  if (state.outbox.length === 0) return { state, changed: false, count: 0 };
  const report = await deliverOutbox(state.outbox, (message) => telegram.sendMessage(chatId, message.text, inlineKeyboard(message.buttons)), {
    maxWaitMs: 15_000,
    maxCalls: 20,
    sleep: deps.sleep,
  });
  const errorChanged = report.permanentError !== state.telegram.permanentError;
  // A new delivery error is worth one write so /v1/status can say why pages wait; the
  // same error on every tick of a long outage is not (it would burn the write quota).
  const headErrorChanged = report.remaining[0] !== undefined && report.remaining[0].lastError !== state.outbox[0]?.lastError;
  const changed = report.delivered.length > 0 || errorChanged || headErrorChanged || report.remaining.length !== state.outbox.length;
  return {
    changed,
    count: report.delivered.length,
    state: {
      ...state,
      outbox: report.remaining,
      telegram: {
        lastDeliveredAt: report.delivered.length > 0 ? state.lastTickAt : state.telegram.lastDeliveredAt,
        permanentError: report.permanentError,
      },
    },
  };
}

async function pingDeadMan(config: Config, deps: TickDeps): Promise<void> {
  if (config.alerts.deadManUrl === null) return;
  try {
    const response = await deps.fetch(config.alerts.deadManUrl, { method: "GET", signal: AbortSignal.timeout(5000) });
    if (!response.ok) console.error(`cron: dead-man URL answered ${response.status}`);
  } catch (error) {
    console.error(`cron: dead-man URL unreachable: ${errorMessage(error)}`);
  }
}

// ---- degraded and misconfigured: said once, never as "every host is dark" ----

/**
 * When KV cannot be written nothing can be remembered, so "once" is kept in memory and
 * in the edge cache (both best effort), limiting the notice to one an hour per place.
 */
let lastDegradedNoticeAt: number | null = null;
const DEGRADED_CACHE_KEY = "https://witness.invalid/degraded-notice";

async function degradedNoticeDue(now: number): Promise<boolean> {
  if (lastDegradedNoticeAt !== null && now - lastDegradedNoticeAt < DEGRADED_NOTICE_EVERY_MS) return false;
  try {
    const cached = await caches.default.match(DEGRADED_CACHE_KEY);
    const noticeAt = cached === undefined ? Number.NaN : Number(await cached.text());
    if (now - noticeAt < DEGRADED_NOTICE_EVERY_MS) {
      lastDegradedNoticeAt = noticeAt;
      return false;
    }
  } catch {
    // The cache is only a helper here.
  }
  return true;
}

/**
 * KV works again: the state read just now cannot know a degraded notice went out (it
 * could not be written), so this isolate's memory of it asks the plan for "KV answers
 * again". Best effort, like the notice itself.
 */
function withDegradedNotice(inputs: TickInputs): TickInputs {
  if (lastDegradedNoticeAt === null || inputs.stored === null || inputs.stored.degradedSince !== null) return inputs;
  return { ...inputs, stored: { ...inputs.stored, degradedSince: lastDegradedNoticeAt } };
}

async function forgetDegradedNotice(): Promise<void> {
  if (lastDegradedNoticeAt === null) return;
  lastDegradedNoticeAt = null;
  try {
    await caches.default.delete(DEGRADED_CACHE_KEY);
  } catch {
    // Best effort.
  }
}

async function rememberDegradedNotice(now: number): Promise<void> {
  lastDegradedNoticeAt = now;
  try {
    await caches.default.put(
      DEGRADED_CACHE_KEY,
      new Response(String(now), { headers: { "cache-control": `max-age=${DEGRADED_NOTICE_EVERY_MS / 1000}` } }),
    );
  } catch {
    // Best effort.
  }
}

async function reportDegraded(telegram: TelegramClient, config: Config, error: string, now: number): Promise<TickSummary> {
  console.error(`cron: KV degraded: ${error}`);
  let delivered = 0;
  if (await degradedNoticeDue(now)) {
    const result = await telegram.sendMessage(config.telegram.chatId, renderDegraded(error, now));
    if (result.ok) {
      delivered = 1;
      await rememberDegradedNotice(now);
    } else {
      console.error(`cron: could not send the degraded notice: ${result.error}`);
    }
  }
  return { outcome: "degraded", events: [], delivered, undelivered: 0, wrote: 0 };
}

async function pageConfigError(env: Env, store: Store, message: string, now: number, deps: TickDeps): Promise<TickSummary> {
  console.error(`cron: configuration error: ${message}`);
  const summary: TickSummary = { outcome: "misconfigured", events: [], delivered: 0, undelivered: 0, wrote: 0 };
  const target = telegramTargetFromRaw(env.WITNESS_CONFIG);
  let state: CronState | null;
  try {
    state = await store.getCronState();
  } catch {
    return summary;
  }
  if (state?.configErrorPaged === message) return summary;
  if (target !== null) {
    const telegram = new TelegramClient(target.baseUrl, env.TELEGRAM_BOT_TOKEN, deps.fetch);
    const result = await telegram.sendMessage(target.chatId, renderConfigError(message));
    if (!result.ok) {
      console.error(`cron: could not page the configuration error: ${result.error}`);
      return summary;
    }
    summary.delivered = 1;
  }
  try {
    await store.putCronState({ ...(state ?? emptyCronState(now)), configErrorPaged: message });
    summary.wrote = 1;
  } catch (error) {
    console.error(`cron: could not record the configuration error page: ${errorMessage(error)}`);
  }
  return summary;
}
