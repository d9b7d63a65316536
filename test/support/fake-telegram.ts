// A stand-in for the Telegram Bot API on 127.0.0.1. It records every call per bot
// token and can be told to fail the next calls (429 with retry_after, 5xx, 403, or
// hang past the client's timeout), so tests see exactly what a phone would receive.
// Control endpoints live under /__fake/ so tests inside workerd can drive it over HTTP.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedCall {
  token: string;
  method: string;
  payload: Record<string, unknown>;
  at: number;
  /** The message_id answered to a sendMessage (what a button press on it carries). */
  messageId?: number;
}

export interface ScriptedFailure {
  status: number;
  description?: string;
  retryAfterSeconds?: number;
  /** Answer as Telegram does when a group became a supergroup (400 with the new chat id). */
  migrateToChatId?: number;
  /** Hold the request this long before answering (to trip client timeouts). */
  delayMs?: number;
}

export interface FakeTelegram {
  url: string;
  port: number;
  calls(token?: string): RecordedCall[];
  /** The texts of sendMessage calls, in order. */
  messages(token?: string): string[];
  failNext(token: string, failures: ScriptedFailure[]): void;
  reset(token?: string): void;
  close(): Promise<void>;
}

export interface FakeTelegramOptions {
  port?: number;
  /** Called for every recorded call (the console stand-in prints from here). */
  onCall?: (call: RecordedCall) => void;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

function send(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

function parseObject(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export async function startFakeTelegram(options: FakeTelegramOptions = {}): Promise<FakeTelegram> {
  const recorded: RecordedCall[] = [];
  const scripts = new Map<string, ScriptedFailure[]>();
  let messageId = 1;

  const server: Server = createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? "/", "http://127.0.0.1");
      const body = await readBody(request);

      const control = /^\/__fake\/(calls|fail|reset)\/(.+)$/.exec(url.pathname);
      if (control) {
        const [, action, encodedToken = ""] = control;
        const token = decodeURIComponent(encodedToken);
        if (action === "calls") return send(response, 200, recorded.filter((call) => call.token === token));
        if (action === "fail") {
          const failures: unknown = JSON.parse(body || "[]");
          scripts.set(token, [...(scripts.get(token) ?? []), ...(Array.isArray(failures) ? (failures as ScriptedFailure[]) : [])]);
          return send(response, 200, { ok: true });
        }
        scripts.delete(token);
        for (let i = recorded.length - 1; i >= 0; i--) if (recorded[i]?.token === token) recorded.splice(i, 1);
        return send(response, 200, { ok: true });
      }

      const api = /^\/bot([^/]+)\/(\w+)$/.exec(url.pathname);
      if (!api || request.method !== "POST") {
        return send(response, 404, { ok: false, error_code: 404, description: "Not Found" });
      }
      const [, token = "", method = ""] = api;
      const failure = scripts.get(token)?.shift();
      if (failure) {
        if (failure.delayMs) await new Promise((resolve) => setTimeout(resolve, failure.delayMs));
        return send(response, failure.status, {
          ok: false,
          error_code: failure.status,
          description: failure.description ?? (failure.status === 429 ? "Too Many Requests: retry later" : "Internal Server Error"),
          ...(failure.retryAfterSeconds === undefined ? {} : { parameters: { retry_after: failure.retryAfterSeconds } }),
          ...(failure.migrateToChatId === undefined ? {} : { parameters: { migrate_to_chat_id: failure.migrateToChatId } }),
        });
      }
      const call: RecordedCall = {
        token,
        method,
        payload: parseObject(body),
        at: Date.now(),
        ...(method === "sendMessage" ? { messageId: messageId++ } : {}),
      };
      recorded.push(call);
      options.onCall?.(call);
      const result = call.messageId === undefined ? true : { message_id: call.messageId, date: Math.floor(Date.now() / 1000), text: call.payload.text };
      return send(response, 200, { ok: true, result });
    })().catch((error: unknown) => send(response, 500, { ok: false, description: String(error) }));
  });

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const forToken = (token?: string) => recorded.filter((call) => token === undefined || call.token === token);

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    calls: forToken,
    messages: (token) =>
      forToken(token)
        .filter((call) => call.method === "sendMessage")
        .map((call) => String(call.payload.text)),
    failNext: (token, failures) => scripts.set(token, [...(scripts.get(token) ?? []), ...failures]),
    reset: (token) => {
      if (token === undefined) {
        recorded.length = 0;
        scripts.clear();
      } else {
        scripts.delete(token);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
