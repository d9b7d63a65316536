// How the edge and the cron reach the one monitor object.
import { errorMessage } from "../format.ts";
import type { TelegramCall, TelegramUpdate, UpdateLinks } from "../phone/webhook.ts";
import type { PingBody } from "../protocol.ts";
import type { ClockOutcome, PingOutcome, RunReport } from "./core.ts";
import { type EventQuery, MONITOR_NAME, type MonitorView } from "./object.ts";
import type { HistoryEvent } from "./state.ts";

/** The monitor's RPC methods as the edge calls them: plain data in, plain data out. */
export interface MonitorRpc {
  acceptPing(hostId: string, body: PingBody, sentAt: number): Promise<PingOutcome>;
  refuseForClock(hostId: string, body: PingBody, sentAt: number): Promise<ClockOutcome>;
  check(): Promise<RunReport & { repaired: boolean }>;
  handleUpdate(update: TelegramUpdate, links?: UpdateLinks): Promise<TelegramCall[]>;
  view(): Promise<MonitorView>;
  events(query: EventQuery): Promise<HistoryEvent[]>;
  dashboard(since: number): Promise<MonitorView & { events: HistoryEvent[] }>;
  pageConfigError(message: string): Promise<boolean>;
}

export function monitorStub(env: Env): MonitorRpc {
  // The generated stub type wraps every result in RPC machinery (disposers, pipelining)
  // that these plain-data methods do not use; this interface says what they return.
  const stub: MonitorRpc = env.MONITOR.getByName(MONITOR_NAME) as unknown as MonitorRpc;
  return stub;
}

/**
 * Why the monitor could not be reached, in words the operator can act on. A daily
 * Durable Object quota on the free plan ends at 00:00 UTC.
 */
export function unreachableReason(error: unknown): string {
  const text = errorMessage(error);
  if (/exceeded|quota|limit/i.test(text)) return `a Durable Object daily limit was reached (resets at 00:00 UTC): ${text}`;
  if (/overloaded/i.test(text)) return `the monitor object is overloaded: ${text}`;
  return text;
}
