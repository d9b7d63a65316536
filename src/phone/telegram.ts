// Talks to the Telegram Bot API and delivers queued pages in order. A failed call says
// whether retrying can help: 429 and 5xx and timeouts can; 400/403 about the chat (not
// found, bot blocked) cannot until the operator fixes something.
import { z } from "zod";

/** Statuses worth retrying; everything else but 2xx is permanent. */
export const RETRIABLE_STATUSES: readonly number[] = [429, 500, 502, 503, 504];

const REQUEST_TIMEOUT_MS = 10_000;

export type CallResult<T = unknown> =
  | { ok: true; result: T }
  | { ok: false; permanent: boolean; retryAfterMs: number | null; error: string; migrateToChatId?: string };

const ApiResponse = z.object({
  ok: z.boolean(),
  result: z.unknown().optional(),
  description: z.string().optional(),
  error_code: z.number().optional(),
  parameters: z.object({ retry_after: z.number().optional(), migrate_to_chat_id: z.number().optional() }).optional(),
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
    const migrateTo = parsed.success ? parsed.data.parameters?.migrate_to_chat_id : undefined;
    return {
      ok: false,
      permanent: !RETRIABLE_STATUSES.includes(response.status),
      retryAfterMs: retryAfter === undefined ? null : retryAfter * 1000,
      error: `${response.status} ${description}`.trim(),
      ...(migrateTo === undefined ? {} : { migrateToChatId: String(migrateTo) }),
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

/** A 400/403/401 about the chat or the bot blocks every message; other 400s are the message's own fault. */
export function isChatProblem(error: string): boolean {
  return (
    /^40[13]\b/.test(error) ||
    /chat not found|bot was blocked|kicked|not enough rights|user is deactivated|unauthorized|topic_closed|TOPIC_CLOSED|have no rights|not a member/i.test(error)
  );
}

/** The message as plain text: what is left to send when Telegram refuses its HTML. */
export function plainText(html: string): string {
  return html
    .replace(/<[^>]+>/g, "")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&");
}
