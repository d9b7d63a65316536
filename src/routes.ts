// HTTP routes: the signed ping, health and status. Every bad input ends in a 4xx JSON
// body that names what is wrong; a 500 means a bug in witness, never in the input.
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type Config, ConfigError, findHost } from "./config.ts";
import { errorMessage } from "./format.ts";
import { loadConfig } from "./load-config.ts";
import { replayVerdict, writeReason } from "./ping-policy.ts";
import {
  MAX_BODY_BYTES,
  PingBody,
  type PauseCommand,
  type PingAccepted,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
} from "./protocol.ts";
import { clockSkewSeconds, heartbeatAgeSeconds, recordFromPing } from "./records.ts";
import { deriveHostSecret, timingSafeEqualHex, verifyPing } from "./signature.ts";
import { Store, type StoredCommand } from "./store.ts";
import { TelegramClient } from "./telegram.ts";
import { handleUpdate, isAllowedChat, TelegramUpdate, WEBHOOK_SECRET_HEADER } from "./webhook.ts";

export interface RouteDeps {
  now: () => number;
}

type AppEnv = { Bindings: Env; Variables: { config: Config } };

/** A client's mistake, answered as `{ok: false, error, field?}` with its status. */
export class RequestError extends HTTPException {
  readonly error: string;
  readonly field: string | undefined;

  constructor(status: ContentfulStatusCode, error: string, field?: string) {
    super(status, { message: error });
    this.error = error;
    this.field = field;
  }
}

/**
 * Signatures seen recently by this isolate. Free (no KV write) and partial: it stops a
 * replay that lands on the same isolate; the seq check against the stored record and
 * the timestamp window bound the rest.
 */
const recentSignatures = new Map<string, number>();
const RECENT_SIGNATURES_MAX = 2048;

function rememberSignature(signature: string, now: number, windowMs: number): boolean {
  const seenAt = recentSignatures.get(signature);
  if (seenAt !== undefined && now - seenAt <= 2 * windowMs) return false;
  if (recentSignatures.size >= RECENT_SIGNATURES_MAX) {
    for (const [key, at] of recentSignatures) {
      if (now - at > 2 * windowMs || recentSignatures.size >= RECENT_SIGNATURES_MAX) recentSignatures.delete(key);
      if (recentSignatures.size < RECENT_SIGNATURES_MAX / 2) break;
    }
  }
  recentSignatures.set(signature, now);
  return true;
}


function zodFieldPath(path: readonly PropertyKey[]): string {
  return path.map(String).join(".");
}

export function createApp(deps: RouteDeps = { now: () => Date.now() }): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.onError((error, c) => {
    if (error instanceof RequestError) {
      return c.json({ ok: false, error: error.error, ...(error.field ? { field: error.field } : {}) }, error.status);
    }
    if (error instanceof HTTPException) {
      return c.json({ ok: false, error: error.message || "bad request" }, error.status);
    }
    console.error(`witness: unexpected error on ${c.req.method} ${c.req.path}: ${errorMessage(error)}`);
    return c.json({ ok: false, error: "internal error in witness (a bug: please report it)" }, 500);
  });

  app.notFound((c) => c.json({ ok: false, error: `no route ${c.req.method} ${c.req.path}` }, 404));

  // An invalid configuration answers every request with the field to fix, rather than
  // crashing or silently monitoring nothing.
  app.use("*", async (c, next) => {
    try {
      c.set("config", loadConfig(c.env.WITNESS_CONFIG));
    } catch (error) {
      if (error instanceof ConfigError) {
        return c.json({ ok: false, error: `witness is misconfigured: ${error.message}` }, 503);
      }
      throw error;
    }
    await next();
  });

  app.post(
    "/v1/ping/:hostId",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => c.json({ ok: false, error: `body larger than ${MAX_BODY_BYTES} bytes` }, 413),
    }),
    (c) => handlePing(c, deps),
  );

  app.get("/v1/health", async (c) => {
    const config = c.get("config");
    const now = deps.now();
    let lastTickAt: number | null = null;
    try {
      lastTickAt = (await new Store(c.env.WITNESS_KV).getCronState())?.lastTickAt ?? null;
    } catch (error) {
      return c.json({ ok: false, error: `storage unavailable: ${errorMessage(error)}` }, 503);
    }
    // The cron records itself every tickRecordSeconds; allow two periods and a KV lag more.
    const lateAfterMs = (config.timing.tickRecordSeconds + 2 * config.timing.cronPeriodSeconds + config.timing.kvLagSeconds) * 1000;
    const late = lastTickAt === null || now - lastTickAt > lateAfterMs;
    return c.json(
      {
        ok: !late,
        now,
        lastTickAt,
        secondsSinceTick: lastTickAt === null ? null : Math.round((now - lastTickAt) / 1000),
        late,
        lateAfterSeconds: lateAfterMs / 1000,
        hosts: config.hosts.length,
      },
      late ? 503 : 200,
    );
  });

  app.get("/v1/status", async (c) => {
    const config = c.get("config");
    await requireStatusToken(c);
    const store = new Store(c.env.WITNESS_KV);
    const now = deps.now();
    const ids = config.hosts.map((host) => host.id);
    const [state, records] = await Promise.all([store.getCronState(), store.getPingRecords(ids)]);
    return c.json({
      ok: true,
      now,
      lastTickAt: state?.lastTickAt ?? null,
      telegram: state?.telegram ?? null,
      undelivered: state?.outbox.map(({ id, createdAt, attempts, lastError }) => ({ id, createdAt, attempts, lastError })) ?? [],
      hosts: config.hosts.map((host) => {
        const record = records.get(host.id) ?? null;
        return {
          id: host.id,
          conditions: state?.hosts[host.id]?.conditions ?? {},
          lastPingAt: record?.receivedAt ?? null,
          secondsSincePing: record ? Math.round((now - record.receivedAt) / 1000) : null,
          heartbeatAgeSeconds: record ? heartbeatAgeSeconds(record, now) : null,
          skewSeconds: record ? clockSkewSeconds(record) : null,
          agent: record?.agent ?? null,
          heartbeat: record?.heartbeat ?? null,
          circuit: record?.circuit ?? null,
        };
      }),
    });
  });

  // Telegram calls this with the secret registered by `npm run telegram:setup`; the
  // header is checked before the body is read, and nothing is written for strangers.
  app.post(
    "/telegram/webhook",
    bodyLimit({ maxSize: 256 * 1024, onError: (c) => c.json({ ok: false, error: "update too large" }, 413) }),
    async (c) => {
      const expected = c.env.TELEGRAM_WEBHOOK_SECRET;
      const given = c.req.header(WEBHOOK_SECRET_HEADER) ?? "";
      if (!expected || !(await tokensEqual(given, expected))) {
        throw new RequestError(401, `missing or wrong ${WEBHOOK_SECRET_HEADER}: register the webhook with npm run telegram:setup`);
      }
      let json: unknown;
      try {
        json = await c.req.json();
      } catch {
        throw new RequestError(400, "update is not JSON");
      }
      const parsed = TelegramUpdate.safeParse(json);
      // A 2xx stops Telegram from redelivering an update witness can never use.
      if (!parsed.success) return c.json({ ok: true, ignored: "not an update witness understands" });
      const update = parsed.data;
      const config = c.get("config");
      const chatId = update.message?.chat.id ?? update.callback_query?.message?.chat.id;
      const store = new Store(c.env.WITNESS_KV);
      const allowed = chatId !== undefined && isAllowedChat(config, chatId);
      if (allowed && (await store.hasSeenTelegramUpdate(update.update_id))) return c.json({ ok: true, duplicate: true });
      const telegram = new TelegramClient(config.telegram.baseUrl, c.env.TELEGRAM_BOT_TOKEN);
      await handleUpdate(update, { config, store, telegram, now: deps.now() });
      if (allowed) await store.markTelegramUpdateSeen(update.update_id);
      return c.json({ ok: true });
    },
  );

  // One command proves the deployed path to the phone: curl -X POST -H "Authorization: Bearer $STATUS_TOKEN" <worker>/v1/telegram/test
  app.post("/v1/telegram/test", async (c) => {
    const config = c.get("config");
    await requireStatusToken(c);
    const telegram = new TelegramClient(config.telegram.baseUrl, c.env.TELEGRAM_BOT_TOKEN);
    const result = await telegram.sendMessage(
      config.telegram.chatId,
      `✅ <b>witness</b> test message: the Worker reaches this chat. Watching ${config.hosts.length} host(s).`,
    );
    if (!result.ok) {
      throw new RequestError(502, `Telegram refused the test message: ${result.error}${result.permanent ? " (check TELEGRAM_BOT_TOKEN and telegram.chatId)" : " (retry later)"}`);
    }
    return c.json({ ok: true, sentTo: config.telegram.chatId });
  });

  return app;
}

async function requireStatusToken(c: Context<AppEnv>): Promise<void> {
  const given = c.req.header("authorization")?.replace(/^Bearer\s+/i, "") ?? "";
  if (!c.env.STATUS_TOKEN || !(await tokensEqual(given, c.env.STATUS_TOKEN))) {
    throw new RequestError(401, "send Authorization: Bearer <STATUS_TOKEN>");
  }
}

/** Compares bearer tokens in constant time by comparing their digests. */
async function tokensEqual(a: string, b: string): Promise<boolean> {
  const digest = async (text: string) =>
    Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))), (byte) =>
      byte.toString(16).padStart(2, "0"),
    ).join("");
  return timingSafeEqualHex(await digest(a), await digest(b));
}

async function handlePing(c: Context<AppEnv>, deps: RouteDeps): Promise<Response> {
  const config = c.get("config");
  const hostId = c.req.param("hostId") ?? "";
  const host = findHost(config, hostId);
  if (!host) throw new RequestError(404, `unknown host "${hostId.slice(0, 64)}": declare it in [vars.WITNESS_CONFIG] and redeploy`);

  const timestamp = c.req.header(TIMESTAMP_HEADER) ?? "";
  const signature = c.req.header(SIGNATURE_HEADER) ?? "";
  if (!/^\d{1,16}$/.test(timestamp)) {
    throw new RequestError(401, `missing or malformed ${TIMESTAMP_HEADER}: send Unix milliseconds`, TIMESTAMP_HEADER);
  }
  if (!/^[0-9a-fA-F]{64}$/.test(signature)) {
    throw new RequestError(401, `missing or malformed ${SIGNATURE_HEADER}: send 64 hex characters of HMAC-SHA256`, SIGNATURE_HEADER);
  }
  const now = deps.now();
  const sentAt = Number(timestamp);
  const windowMs = config.timing.replayWindowSeconds * 1000;
  if (Math.abs(sentAt - now) > windowMs) {
    const offset = Math.round((sentAt - now) / 1000);
    throw new RequestError(
      401,
      `timestamp outside the ${config.timing.replayWindowSeconds} s window: the host clock is ${Math.abs(offset)} s ${offset > 0 ? "ahead of" : "behind"} the Worker's (fix NTP on the host)`,
      TIMESTAMP_HEADER,
    );
  }

  // Decoded here rather than with req.text(), which warns on every body whose
  // content-type is not text: the signature, not the header, says what the body is.
  const rawBody = new TextDecoder().decode(await c.req.arrayBuffer());
  const secret = await deriveHostSecret(c.env.WITNESS_MASTER_KEY, host.id);
  if (!(await verifyPing(secret, timestamp, rawBody, signature))) {
    throw new RequestError(401, "bad signature: check the host secret (npm run host-secret -- <host>) and that the body is sent unchanged", SIGNATURE_HEADER);
  }
  if (!rememberSignature(signature.toLowerCase(), now, windowMs)) {
    throw new RequestError(401, "replayed ping: this exact signed request was already accepted", SIGNATURE_HEADER);
  }

  let json: unknown;
  try {
    json = JSON.parse(rawBody);
  } catch {
    throw new RequestError(400, "body is not JSON");
  }
  const parsed = PingBody.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue ? zodFieldPath(issue.path) : "";
    throw new RequestError(400, `invalid ping body${field ? ` at ${field}` : ""}: ${issue?.message ?? "unexpected shape"}`, field || undefined);
  }

  const fromPing = recordFromPing(host.id, parsed.data, sentAt, now);
  const store = new Store(c.env.WITNESS_KV);
  let stored;
  let storedCommand: StoredCommand | null;
  try {
    [stored, storedCommand] = await Promise.all([store.getPingRecord(host.id), store.getCommand(host.id)]);
  } catch (error) {
    throw new RequestError(503, `witness storage unavailable, retry later (${errorMessage(error)})`);
  }
  // The agent reports a command's outcome in one ping only. Keep the last outcome in the
  // record, so a cron a minute (and a KV lag) behind still sees it, and so the command
  // is not handed out again once a later ping has replaced the one that answered it.
  const record =
    fromPing.commandResult === undefined && stored?.commandResult !== undefined ? { ...fromPing, commandResult: stored.commandResult } : fromPing;
  const replay = replayVerdict(stored, record);
  if (!replay.ok) throw new RequestError(401, replay.reason);

  const reason = writeReason(stored, record, host, config.timing);
  if (reason !== null) {
    try {
      await store.putPingRecord(record);
    } catch (error) {
      throw new RequestError(503, `witness could not store this ping, retry later (${errorMessage(error)})`);
    }
  }

  const commands = pendingCommands(storedCommand, host.allowRemotePause, now, [record.commandResult?.id, stored?.commandResult?.id]);
  const body: PingAccepted = { ok: true, serverTime: now, commands };
  return c.json(body, 200, { "x-witness-write": reason ?? "none" });
}

/** The command the agent should apply: confirmed, allowed for the host, unexpired, not yet answered. */
function pendingCommands(
  stored: StoredCommand | null,
  allowRemotePause: boolean,
  now: number,
  answeredIds: ReadonlyArray<string | undefined>,
): PauseCommand[] {
  if (stored === null || stored.confirmedAt === null || !allowRemotePause) return [];
  if (stored.command.expiresAt <= now || answeredIds.includes(stored.command.id)) return [];
  return [stored.command];
}
