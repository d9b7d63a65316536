// The Telegram Bot API as the cron's `deps.fetch` sees it, in simulated time: it answers
// sendMessage, sometimes with 429 and retry_after, a 5xx or a timeout (a rejected
// fetch after the client's 10 s), and not at all during scheduled outages. Every call
// and every delivered message is recorded with its simulated time.
import type { Random } from "./random.ts";
import type { Scheduler } from "./scheduler.ts";

export interface TelegramFaultRates {
  /** Share of calls answered 429 Too Many Requests with a retry_after. */
  rateLimited: number;
  /** Share of calls answered 500/502. */
  serverError: number;
  /** Share of calls that time out (the fetch rejects after the client's timeout). */
  timeout: number;
}

export type CallOutcome = "delivered" | "429" | "5xx" | "timeout" | "outage";

export interface TelegramCall {
  at: number;
  text: string;
  outcome: CallOutcome;
  /** The cron tick that made the call. */
  tick: number;
}

export interface DeliveredMessage {
  at: number;
  text: string;
  tick: number;
}

/** The client aborts a call after this long (src/phone/telegram.ts REQUEST_TIMEOUT_MS). */
const CLIENT_TIMEOUT_MS = 10_000;

export class SimulatedTelegram {
  readonly calls: TelegramCall[] = [];
  readonly delivered: DeliveredMessage[] = [];
  readonly outages: Array<{ from: number; until: number }> = [];
  private readonly scheduler: Scheduler;
  private readonly random: Random;
  private readonly rates: TelegramFaultRates;
  private messageId = 0;

  constructor(scheduler: Scheduler, random: Random, rates: TelegramFaultRates) {
    this.scheduler = scheduler;
    this.random = random;
    this.rates = rates;
  }

  addOutage(from: number, until: number): void {
    this.outages.push({ from, until });
  }

  /** The Bot API as one cron tick's `deps.fetch`: calls are recorded with the tick's id. */
  fetchFor(tick: number): (input: string, init?: RequestInit) => Promise<Response> {
    return (input, init) => this.call(tick, input, init);
  }

  private async call(tick: number, input: string, init?: RequestInit): Promise<Response> {
    const method = input.slice(input.lastIndexOf("/") + 1);
    const payload = parsePayload(init?.body);
    const text = typeof payload.text === "string" ? payload.text : "";
    await this.scheduler.sleep(this.random.between(40, 400));
    const now = this.scheduler.now;
    const inOutage = this.outages.some((outage) => now >= outage.from && now < outage.until);
    const draw = this.random.next();
    const record = (outcome: CallOutcome) => this.calls.push({ at: now, text, outcome, tick });

    if (inOutage || draw < this.rates.timeout) {
      record(inOutage ? "outage" : "timeout");
      if (inOutage && draw < 0.5) return apiError(502, "Bad Gateway");
      await this.scheduler.sleep(CLIENT_TIMEOUT_MS);
      const error = new Error("The operation was aborted due to timeout");
      error.name = "TimeoutError";
      throw error;
    }
    if (draw < this.rates.timeout + this.rates.rateLimited) {
      record("429");
      const retryAfter = this.random.int(1, 40);
      return apiError(429, `Too Many Requests: retry after ${retryAfter}`, { retry_after: retryAfter });
    }
    if (draw < this.rates.timeout + this.rates.rateLimited + this.rates.serverError) {
      record("5xx");
      return apiError(this.random.chance(0.5) ? 500 : 502, "Internal Server Error");
    }
    if (method !== "sendMessage") return apiError(400, `Bad Request: the simulator does not answer ${method}`);
    record("delivered");
    this.delivered.push({ at: now, text, tick });
    return Response.json({ ok: true, result: { message_id: ++this.messageId, date: Math.floor(now / 1000), text } });
  }
}

function parsePayload(body: unknown): Record<string, unknown> {
  if (typeof body !== "string") return {};
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function apiError(status: number, description: string, parameters?: { retry_after: number }): Response {
  return Response.json(
    { ok: false, error_code: status, description, ...(parameters === undefined ? {} : { parameters }) },
    { status },
  );
}
