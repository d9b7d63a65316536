// One signed HTTP attempt to the Worker, classified into a decision: accepted, or
// failed with whether retrying can help. Retriable statuses are data. The caller owns
// the retry loop (loop.ts); backoffDelayMs is the pure part of it.
import type { PingAccepted } from "../../src/protocol.ts";
import { describeError, truncate } from "./errors.ts";
import { signPing } from "./sign.ts";
import { parsePingAccepted, parsePingRejected, SIGNATURE_HEADER, TIMESTAMP_HEADER } from "./wire.ts";

/** 429 and the 5xx family, including Cloudflare's own 52x origin errors; 408 too. */
export const RETRIABLE_STATUSES: readonly number[] = [408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 525, 526, 527, 530];

/** What the agent reads of an answer; a fetch Response fits, so does http-post.ts's. */
export interface ResponseLike {
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

export type FetchLike = (
  url: string,
  init: { method: "POST"; headers: Record<string, string>; body: string; signal: AbortSignal },
) => Promise<ResponseLike>;

/**
 * The longest a Retry-After makes the agent wait. The header comes from whatever
 * answered (a proxy, a misconfigured Worker): obeyed without a cap, one bad response
 * could silence the witness for a day.
 */
export const MAX_RETRY_AFTER_MS = 300_000;

export type AttemptOutcome =
  | { kind: "accepted"; accepted: PingAccepted; status: number; timestampMs: number }
  | {
      kind: "failed";
      retriable: boolean;
      /** One line for logs and for lastPushOutage.lastError. */
      message: string;
      status?: number;
      /** The Worker's own error text from a 4xx, to log once per change. */
      workerError?: string;
      /** The Retry-After delay, capped at MAX_RETRY_AFTER_MS. */
      retryAfterMs?: number;
      /** What the Retry-After header asked for, when the cap cut it. */
      retryAfterAskedMs?: number;
      /**
       * A 401 about the timestamp: the host clock is outside the replay window. The
       * offset (agent clock minus the response's Date header) when that header is there.
       */
      clockRejected?: { offsetMs?: number };
    };

export interface AttemptDeps {
  fetch: FetchLike;
  now(): number;
}

export interface AttemptRequest {
  url: string;
  secret: string;
  rawBody: string;
  timeoutMs: number;
  /** Aborted when the agent is told to stop. */
  stopSignal: AbortSignal;
}

export async function sendPingAttempt(request: AttemptRequest, deps: AttemptDeps): Promise<AttemptOutcome> {
  // AbortSignal.any is newer than Node 18: combine timeout and stop by hand.
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, request.timeoutMs);
  const onStop = () => controller.abort();
  request.stopSignal.addEventListener("abort", onStop, { once: true });
  if (request.stopSignal.aborted) controller.abort();

  // The timestamp is taken immediately before the attempt, so every retry is
  // signed afresh and stays inside the Worker's replay window.
  const timestampMs = deps.now();
  const timestamp = String(timestampMs);
  try {
    const response = await deps.fetch(request.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        [TIMESTAMP_HEADER]: timestamp,
        [SIGNATURE_HEADER]: signPing(request.secret, timestamp, request.rawBody),
      },
      body: request.rawBody,
      signal: controller.signal,
    });
    const text = await response.text();
    return classifyResponse(response.status, response.headers.get("retry-after"), text, timestampMs, deps.now(), response.headers.get("date"));
  } catch (error) {
    if (request.stopSignal.aborted) return { kind: "failed", retriable: false, message: "stopped" };
    if (timedOut) {
      return { kind: "failed", retriable: true, message: `no answer within ${Math.round(request.timeoutMs / 1000)} s` };
    }
    return { kind: "failed", retriable: true, message: truncate(`network error: ${describeError(error)}`, 200) };
  } finally {
    clearTimeout(timer);
    request.stopSignal.removeEventListener("abort", onStop);
  }
}

export function classifyResponse(
  status: number,
  retryAfterHeader: string | null,
  text: string,
  timestampMs: number,
  nowMs: number,
  dateHeader: string | null = null,
): AttemptOutcome {
  const json = parseJson(text);
  if (status === 200) {
    const accepted = parsePingAccepted(json);
    if (accepted !== undefined) return { kind: "accepted", accepted, status, timestampMs };
    // A 200 that is not the Worker's answer: a captive portal or a wrong WITNESS_URL.
    return {
      kind: "failed",
      retriable: false,
      status,
      message: "HTTP 200 but not a witness answer (is WITNESS_URL the Worker's address?)",
    };
  }
  const rejected = parsePingRejected(json);
  const workerError = rejected !== undefined ? truncate(rejected.error.replace(/\s+/g, " "), 160) : undefined;
  const field = rejected?.field !== undefined ? ` (field ${rejected.field})` : "";
  const message = truncate(`HTTP ${status}${workerError !== undefined ? `: ${workerError}${field}` : ""}`, 200);
  const retriable = RETRIABLE_STATUSES.includes(status);
  const askedMs = parseRetryAfter(retryAfterHeader, nowMs);
  const retryAfterMs = askedMs === undefined ? undefined : Math.min(askedMs, MAX_RETRY_AFTER_MS);
  const clockRejected = status === 401 && rejected !== undefined && isAboutTheClock(rejected.error, rejected.field);
  const serverDateMs = dateHeader === null ? Number.NaN : Date.parse(dateHeader);
  return {
    kind: "failed",
    retriable,
    status,
    message,
    ...(workerError !== undefined ? { workerError: `${workerError}${field}` } : {}),
    ...(retriable && retryAfterMs !== undefined ? { retryAfterMs } : {}),
    ...(retriable && askedMs !== undefined && askedMs > MAX_RETRY_AFTER_MS ? { retryAfterAskedMs: askedMs } : {}),
    ...(clockRejected ? { clockRejected: Number.isNaN(serverDateMs) ? {} : { offsetMs: timestampMs - serverDateMs } } : {}),
  };
}

/**
 * The Worker names the timestamp header as the bad field, or speaks of the clock; a
 * header it calls missing or malformed is our bug, not the clock.
 */
function isAboutTheClock(error: string, field: string | undefined): boolean {
  if (/missing|malformed/i.test(error)) return false;
  return field?.toLowerCase() === TIMESTAMP_HEADER.toLowerCase() || /\bclock\b|timestamp/i.test(error);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Retry-After is either delay-seconds or an HTTP date. */
export function parseRetryAfter(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const dateMs = Date.parse(trimmed);
  return Number.isNaN(dateMs) ? undefined : Math.max(0, dateMs - nowMs);
}

export const BACKOFF = { baseMs: 1000, maxMs: 30_000 } as const;

/**
 * Delay before retry number `failedAttempts` (1 = after the first failure): exponential
 * with "equal jitter" (half fixed, half random), so many hosts behind one broken
 * network do not retry in lockstep, yet no retry comes back instantly.
 */
export function backoffDelayMs(failedAttempts: number, random: () => number): number {
  const exponential = Math.min(BACKOFF.maxMs, BACKOFF.baseMs * 2 ** Math.max(0, failedAttempts - 1));
  return Math.round(exponential / 2 + (exponential / 2) * random());
}
