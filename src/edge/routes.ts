// The HTTP edge: the signed ping, health, status, history and the Telegram webhook.
// Everything is authenticated and validated here, before the monitor object sees it, so
// unauthenticated or malformed traffic costs no Durable Object request, row or KV
// operation. Every bad input ends in a 4xx JSON body that names what is wrong; a 500
// means a bug in witness, never in the input.
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { ConfigError, findHost } from "../config.ts";
import { errorMessage } from "../format.ts";
import { loadConfig } from "../load-config.ts";
import { DELIVERY_FAILING_AFTER_MS } from "../monitor/core.ts";
import { monitorStub } from "../monitor/stub.ts";
import { MAX_BODY_BYTES, PingBody, type PingAccepted, SIGNATURE_HEADER, TIMESTAMP_HEADER } from "../protocol.ts";
import { clockSkewSeconds, heartbeatAgeSeconds } from "../judge/records.ts";
import { signInLink } from "../status/session.ts";
import { eventsCsv } from "./events-csv.ts";
import { type AppEnv, callMonitor, RequestError, requireOperator, tokensEqual } from "./http.ts";
import { deriveHostSecret, verifyPing } from "./signature.ts";
import { readSnapshot, snapshotLateAfterMs } from "./snapshot.ts";
import { mountStatusPages } from "./status-pages.ts";
import { TelegramClient } from "../phone/telegram.ts";
import { isAllowedChat, TelegramUpdate, updateChatId, WEBHOOK_SECRET_HEADER } from "../phone/webhook.ts";

export { RequestError } from "./http.ts";

export interface RouteDeps {
  now: () => number;
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

  // Read at the edge from the snapshot the monitor publishes: no Durable Object request.
  app.get("/v1/health", async (c) => {
    const config = c.get("config");
    const now = deps.now();
    const snapshot = await readSnapshot(c.env);
    const lateAfterMs = snapshotLateAfterMs(config);
    const problems: string[] = [];
    if (snapshot === null) problems.push("the monitor has not published yet (the cron has not run)");
    else {
      if (now - snapshot.publishedAt > lateAfterMs) problems.push(`the monitor last published ${Math.round((now - snapshot.publishedAt) / 1000)} s ago`);
      if (snapshot.lastCronAt === null || now - snapshot.lastCronAt > lateAfterMs) problems.push("the cron has not run recently");
      if (snapshot.telegram.permanentError !== null) problems.push(`pages cannot be delivered: ${snapshot.telegram.permanentError}`);
      else if (snapshot.telegram.failingSince !== null && now - snapshot.telegram.failingSince >= DELIVERY_FAILING_AFTER_MS) {
        problems.push(`pages have not reached Telegram for ${Math.round((now - snapshot.telegram.failingSince) / 60_000)} min (${snapshot.telegram.undelivered} waiting)`);
      }
    }
    const ok = problems.length === 0;
    return c.json(
      {
        ok,
        now,
        problems,
        publishedAt: snapshot?.publishedAt ?? null,
        lastCronAt: snapshot?.lastCronAt ?? null,
        alarmAt: snapshot?.alarmAt ?? null,
        telegram: snapshot?.telegram ?? null,
        lateAfterSeconds: lateAfterMs / 1000,
        hosts: config.hosts.length,
      },
      ok ? 200 : 503,
    );
  });

  app.get("/v1/status", async (c) => {
    const config = c.get("config");
    await requireOperator(c, deps.now());
    const view = await callMonitor(() => monitorStub(c.env).view());
    const now = view.now;
    const byId = new Map(view.hosts.map((state) => [state.hostId, state]));
    return c.json({
      ok: true,
      now,
      lastCronAt: view.meta.lastCronAt,
      alarmAt: view.alarmAt,
      telegram: view.meta.telegram,
      usage: view.meta.usage,
      undelivered: view.outbox.map(({ id, createdAt, attempts, lastError }) => ({ id, createdAt, attempts, lastError })),
      hosts: config.hosts.map((host) => {
        const state = byId.get(host.id);
        const record = state?.record ?? null;
        return {
          id: host.id,
          conditions: state?.judgement.conditions ?? {},
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

  // The history: pages, recoveries, acks, mutes, pauses, with who and when (30 days), as
  // JSON or, for a spreadsheet, CSV (format=csv or /v1/events.csv).
  const history = async (c: Context<AppEnv>, format: "json" | "csv") => {
    const config = c.get("config");
    const now = deps.now();
    await requireOperator(c, now);
    // An empty host= means every host, as no host= does.
    const hostId = c.req.query("host") || undefined;
    if (hostId !== undefined && findHost(config, hostId) === undefined) throw new RequestError(404, `unknown host "${hostId.slice(0, 64)}"`, "host");
    const sinceText = c.req.query("since");
    if (sinceText !== undefined && !/^\d{1,16}$/.test(sinceText)) throw new RequestError(400, "since: send Unix milliseconds, e.g. since=" + (now - 86_400_000), "since");
    const since = sinceText === undefined ? now - 86_400_000 : Number(sinceText);
    const requested = c.req.query("format") ?? format;
    if (requested !== "json" && requested !== "csv") throw new RequestError(400, "format: send json or csv", "format");
    const events = await callMonitor(() => monitorStub(c.env).events(hostId === undefined ? { since } : { hostId, since }));
    if (requested === "json") return c.json({ ok: true, events });
    return c.body(eventsCsv(events), 200, {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": `attachment; filename="witness-events-${new Date(now).toISOString().slice(0, 10)}.csv"`,
    });
  };
  app.get("/v1/events", (c) => history(c, "json"));
  app.get("/v1/events.csv", (c) => history(c, "csv"));

  mountStatusPages(app, deps);

  // Telegram calls this with the secret registered by `npm run telegram:setup`; the
  // header is checked before the body is read, and strangers cost nothing.
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
      const telegram = new TelegramClient(config.telegram.baseUrl, c.env.TELEGRAM_BOT_TOKEN);
      const chatId = updateChatId(update);
      if (chatId === undefined || !isAllowedChat(config, chatId)) {
        console.warn(`webhook: ignored an update from chat ${chatId ?? "?"}, which is not on the allowlist`);
        // Stop the stranger's phone spinning; nothing else.
        if (update.callback_query !== undefined) await telegram.call("answerCallbackQuery", { callback_query_id: update.callback_query.id, text: "Not allowed." });
        return c.json({ ok: true });
      }
      // The bot's /status reply links to the status page, signed in for a day.
      const token = c.env.STATUS_TOKEN;
      const links = token ? { statusPage: await signInLink(new URL(c.req.url).origin, token, deps.now()) } : {};
      const calls = await callMonitor(() => monitorStub(c.env).handleUpdate(update, links));
      for (const call of calls) {
        const result = await telegram.call(call.method, call.payload);
        if (!result.ok) console.error(`webhook: ${call.method} failed: ${result.error}`);
      }
      return c.json({ ok: true });
    },
  );

  // One command proves the deployed path to the phone: curl -X POST -H "Authorization: Bearer $STATUS_TOKEN" <worker>/v1/telegram/test
  app.post("/v1/telegram/test", async (c) => {
    const config = c.get("config");
    await requireOperator(c, deps.now());
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

  // The signature covers the raw bytes, checked before anything else is believed: a
  // clock far off is then reported as the host's clock, not as a bad secret.
  const rawBytes = new Uint8Array(await c.req.arrayBuffer());
  const secret = await deriveHostSecret(c.env.WITNESS_MASTER_KEY, host.id);
  if (!(await verifyPing(secret, timestamp, rawBytes, signature))) {
    throw new RequestError(401, "bad signature: check the host secret (npm run host-secret -- <host>) and that the body is sent unchanged", SIGNATURE_HEADER);
  }
  let rawBody: string;
  try {
    rawBody = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(rawBytes);
  } catch {
    throw new RequestError(400, "body is not UTF-8 text: send the ping as UTF-8 JSON");
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

  const windowMs = config.timing.replayWindowSeconds * 1000;
  if (Math.abs(sentAt - now) > windowMs) {
    // Signed by the host, so the host is alive; only its clock is wrong. The monitor
    // pages SKEWED instead of letting it go DARK, unless this is a replay it can tell.
    const refused = await callMonitor(() => monitorStub(c.env).refuseForClock(host.id, parsed.data, sentAt));
    if (refused.status === 429) return c.json({ ok: false, error: refused.error }, 429, { "retry-after": String(refused.retryAfterSeconds) });
    if (refused.replay !== null) throw new RequestError(401, refused.replay);
    const offset = Math.round((sentAt - now) / 1000);
    throw new RequestError(
      401,
      `host clock is ${Math.abs(offset)} s ${offset > 0 ? "ahead of" : "behind"} the Worker's, outside the ${config.timing.replayWindowSeconds} s window: its pings are refused until it is fixed (enable NTP on the host)`,
      TIMESTAMP_HEADER,
    );
  }

  const outcome = await callMonitor(() => monitorStub(c.env).acceptPing(host.id, parsed.data, sentAt));
  if (outcome.status === 401) throw new RequestError(401, outcome.error);
  if (outcome.status === 429) {
    return c.json({ ok: false, error: outcome.error }, 429, { "retry-after": String(outcome.retryAfterSeconds) });
  }
  const body: PingAccepted = { ok: true, serverTime: outcome.serverTime, commands: outcome.commands };
  return c.json(body, 200);
}
