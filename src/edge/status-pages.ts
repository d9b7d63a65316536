// The pages people look at: the operator's status page (signed in with STATUS_TOKEN or
// the bot's link), and, only when the config opts in, a public up-or-down page and
// badges. A visitor without a session gets the sign-in form and nothing else.
import type { Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { deleteCookie, setCookie } from "hono/cookie";
import { findHost } from "../config.ts";
import { monitorStub } from "../monitor/stub.ts";
import { renderDashboard, renderSignIn, TIMELINE_DAYS } from "../status/page.tsx";
import { publicState, renderBadge, renderPublic } from "../status/public.tsx";
import { FORM_SESSION_MS, SESSION_COOKIE, signPass, verifyPass } from "../status/session.ts";
import { type AppEnv, callMonitor, isOperator, tokensEqual } from "./http.ts";
import { readSnapshot, snapshotLateAfterMs } from "./snapshot.ts";

/** No script, no frames, no third parties: the pages are plain HTML with inline style. */
const PAGE_HEADERS = {
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
} as const;
const PRIVATE = { ...PAGE_HEADERS, "cache-control": "no-store" } as const;

function html(c: Context<AppEnv>, body: string, status: 200 | 401 | 404 = 200, headers: Record<string, string> = PRIVATE): Response {
  return c.html(body, status, headers);
}

async function startSession(c: Context<AppEnv>, token: string, expiresAt: number): Promise<void> {
  setCookie(c, SESSION_COOKIE, await signPass(token, "session", expiresAt), {
    httpOnly: true,
    secure: true,
    sameSite: "Strict",
    path: "/",
    expires: new Date(expiresAt),
  });
}

export function mountStatusPages(app: Hono<AppEnv>, deps: { now: () => number }): void {
  app.get("/status", async (c) => {
    const now = deps.now();
    if (!(await isOperator(c, now))) return html(c, renderSignIn(c.env.STATUS_TOKEN ? null : "STATUS_TOKEN is not set on this Worker: wrangler secret put STATUS_TOKEN"), 401);
    const config = c.get("config");
    const view = await callMonitor(() => monitorStub(c.env).dashboard(now - TIMELINE_DAYS * 86_400_000));
    return html(c, renderDashboard({ config, view }));
  });

  // The bot's link. The cookie is set on a page that then moves on by itself: a
  // SameSite=Strict cookie set on a redirect from another site (the Telegram app) would
  // not be sent with the redirected request.
  app.get("/status/sign-in", async (c) => {
    const token = c.env.STATUS_TOKEN;
    const link = c.req.query("link") ?? "";
    const expiresAt = token ? await verifyPass(token, "link", link, deps.now()) : null;
    if (token === undefined || token === "" || expiresAt === null) {
      return html(c, renderSignIn(link === "" ? null : "This sign-in link is wrong or has expired: send /status to the bot for a new one, or sign in with the token."), 401);
    }
    await startSession(c, token, expiresAt);
    return html(
      c,
      `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/status"><title>witness</title><p>Signed in. <a href="/status">Open the status page</a>.</p>`,
    );
  });

  app.post("/status/sign-in", bodyLimit({ maxSize: 4096, onError: (c) => html(c, renderSignIn("That is not a status token."), 401) }), async (c) => {
    const token = c.env.STATUS_TOKEN;
    const form = await c.req.parseBody();
    const given = typeof form["token"] === "string" ? form["token"] : "";
    if (!token || !(await tokensEqual(given, token))) {
      return html(c, renderSignIn(token ? "Wrong token: use the STATUS_TOKEN set with wrangler secret put." : "STATUS_TOKEN is not set on this Worker: wrangler secret put STATUS_TOKEN"), 401);
    }
    await startSession(c, token, deps.now() + FORM_SESSION_MS);
    return c.redirect("/status", 303);
  });

  app.post("/status/sign-out", (c) => {
    deleteCookie(c, SESSION_COOKIE, { path: "/", secure: true, httpOnly: true, sameSite: "Strict" });
    return c.redirect("/status", 303);
  });

  app.get("/public", async (c) => {
    const config = c.get("config");
    if (!config.publicStatus) return c.json({ ok: false, error: "the public status page is off: set publicStatus = true in [vars.WITNESS_CONFIG] to share it" }, 404);
    const snapshot = await readSnapshot(c.env);
    return html(c, renderPublic(config, snapshot, deps.now(), snapshotLateAfterMs(config)), 200, { ...PAGE_HEADERS, "cache-control": "public, max-age=30" });
  });

  app.get("/badge/:file", async (c) => {
    const config = c.get("config");
    if (!config.publicBadges) return c.json({ ok: false, error: "badges are off: set publicBadges = true in [vars.WITNESS_CONFIG] to share them" }, 404);
    const file = c.req.param("file");
    const host = file.endsWith(".svg") ? findHost(config, file.slice(0, -4)) : undefined;
    if (host === undefined) return c.json({ ok: false, error: `no badge "${file.slice(0, 80)}": use /badge/<host id>.svg` }, 404);
    const snapshot = await readSnapshot(c.env);
    const state = publicState(snapshot, host.id, deps.now(), snapshotLateAfterMs(config));
    return c.body(renderBadge(host.name, state), 200, { "content-type": "image/svg+xml; charset=utf-8", "cache-control": "public, max-age=60", ...PAGE_HEADERS });
  });
}
