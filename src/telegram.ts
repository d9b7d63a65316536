// Talks to the Telegram Bot API and delivers queued pages in order. A failed call says
// whether retrying can help: 429 and 5xx and timeouts can; 400/403 about the chat (not
// found, bot blocked) cannot until the operator fixes something.
import { z } from "zod";
import type { OutboxMessage } from "./store.ts";

/** Statuses worth retrying; everything else but 2xx is permanent. */
export const RETRIABLE_STATUSES: readonly number[] = [429, 500, 502, 503, 504];

const REQUEST_TIMEOUT_MS = 10_000;

export type CallResult<T = unknown> =
  | { ok: true; result: T }
  | { ok: false; permanent: boolean; retryAfterMs: number | null; error: string };

const ApiResponse = z.object({
  ok: z.boolean(),
  result: z.unknown().optional(),
  description: z.string().optional(),
  error_code: z.number().optional(),
  parameters: z.object({ retry_after: z.number().optional() }).optional(),
});

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

export class TelegramClient {
  private readonly baseUrl: string;
  private readonly token: string;
  private readonly fetchImpl: Fetch;

  constructor(baseUrl: string, token: string, fetchImpl: Fetch = (input, init) => fetch(input, init)) {
    this.baseUrl = baseUrl;
    this.token = token;
    this.fetchImpl = fetchImpl;
  }

  async call(method: string, payload: Record<string, unknown>): Promise<CallResult> {
    const url = `${this.baseUrl.replace(/\/+$/, "")}/bot${this.token}/${method}`;
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      return { ok: false, permanent: false, retryAfterMs: null, error: `network: ${describe(error)}` };
    }
    const parsed = ApiResponse.safeParse(await response.json().catch(() => null));
    if (response.ok && parsed.success && parsed.data.ok) return { ok: true, result: parsed.data.result };
    const description = parsed.success ? (parsed.data.description ?? "") : "unreadable response";
    const retryAfter = parsed.success ? parsed.data.parameters?.retry_after : undefined;
    return {
      ok: false,
      permanent: !RETRIABLE_STATUSES.includes(response.status),
      retryAfterMs: retryAfter === undefined ? null : retryAfter * 1000,
      error: `${response.status} ${description}`.trim(),
    };
  }

  sendMessage(chatId: string, html: string, replyMarkup?: unknown): Promise<CallResult> {
    return this.call("sendMessage", {
      chat_id: chatId,
      text: html,
      parse_mode: "HTML",
      link_preview_options: { is_disabled: true },
      ...(replyMarkup === undefined ? {} : { reply_markup: replyMarkup }),
    });
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

export interface DeliveryOptions {
  /** Longest a single retry may wait inside one tick (a longer retry_after waits for a later tick). */
  maxWaitMs: number;
  /** Calls this tick may make in all (Telegram calls count against the subrequest limit). */
  maxCalls: number;
  sleep: (ms: number) => Promise<void>;
}

export interface DeliveryReport {
  /** Messages still undelivered, oldest first. */
  remaining: OutboxMessage[];
  delivered: OutboxMessage[];
  /** The chat itself is unreachable (not found, bot blocked): set until a delivery succeeds. */
  permanentError: string | null;
}

/** A 400/403 about the chat blocks every message; any other 400 is this message's own fault. */
function isChatProblem(error: string): boolean {
  return /^403\b/.test(error) || /chat not found|bot was blocked|kicked|not enough rights|user is deactivated|unauthorized/i.test(error) || /^401\b/.test(error);
}

/**
 * Sends queued messages in order, retrying within the tick where that can help, and
 * stops at the first one that cannot go now so later pages never overtake it.
 */
export async function deliverOutbox(
  outbox: readonly OutboxMessage[],
  send: (message: OutboxMessage) => Promise<CallResult>,
  options: DeliveryOptions,
): Promise<DeliveryReport> {
  const remaining = [...outbox];
  const delivered: OutboxMessage[] = [];
  let calls = 0;
  let failuresInARow = 0;
  let permanentError: string | null = null;

  while (remaining.length > 0 && calls < options.maxCalls) {
    const message = remaining[0];
    if (message === undefined) break;
    calls++;
    const result = await send(message);
    if (result.ok) {
      delivered.push(remaining.shift() ?? message);
      permanentError = null;
      failuresInARow = 0;
      continue;
    }
    const failed: OutboxMessage = { ...message, attempts: message.attempts + 1, lastError: result.error };
    remaining[0] = failed;
    if (result.permanent) {
      if (isChatProblem(result.error)) {
        // Nothing can reach this chat until the operator fixes it; keep every page for then.
        console.error(`telegram: permanent delivery error, pages kept for later: ${result.error}`);
        permanentError = result.error;
        break;
      }
      console.error(`telegram: message ${message.id} rejected (${result.error}); dropping it so later pages are not blocked`);
      remaining.shift();
      continue;
    }
    failuresInARow++;
    // Three tries a tick is enough to ride out a blip; a longer outage waits for later ticks.
    if (failuresInARow >= 3) break;
    const waitMs = result.retryAfterMs ?? 1000 * 2 ** (failuresInARow - 1);
    if (waitMs > options.maxWaitMs) break;
    await options.sleep(waitMs);
  }
  return { remaining, delivered, permanentError };
}
