// The status page and what strangers may see. The page is rendered from a history the
// real monitor (MonitorHarness, pinned clock) wrote; the routes, sign-in and sessions go
// through the real app and the real monitor binding; the public page and badges read a
// snapshot from the test's KV. A visitor without a session must never see a host.
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/edge/routes.ts";
import { eventsCsv } from "../../src/edge/events-csv.ts";
import type { MonitorView } from "../../src/monitor/object.ts";
import type { HistoryEvent, HostState, Snapshot } from "../../src/monitor/state.ts";
import { SNAPSHOT_KEY } from "../../src/monitor/storage.ts";
import { renderDashboard, TIMELINE_DAYS } from "../../src/status/page.tsx";
import { renderBadge } from "../../src/status/public.tsx";
import { LINK_MS, SESSION_COOKIE, signInLink, signPass, verifyPass } from "../../src/status/session.ts";
import { hostSpans, MAX_DRAWN, mergeForDrawing, type Span } from "../../src/status/timeline.ts";
import { filesWith, MINUTE, prefixedKv, T0, type TestConfigInput, type TestEnv, testEnv } from "./helpers.ts";
import { MonitorHarness } from "./monitor-harness.ts";
import { harnessAgent, makeUpdate, postUpdate, say, telegramCalls, textOf } from "./telegram-builders.ts";
import { env } from "cloudflare:workers";

const SECOND = 1000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TWO_HOSTS: TestConfigInput = { hosts: [{ id: "alpha" }, { id: "beta", allowRemotePause: true }] };

type Dashboard = MonitorView & { events: HistoryEvent[] };

async function dashboardOf(monitor: MonitorHarness, now: number): Promise<Dashboard> {
  return monitor.with(now, async (core) => ({
    now,
    hosts: [...core.allHosts().values()],
    meta: core.monitorMeta(),
    outbox: core.outbox(),
    alarmAt: core.alarmAt(),
    events: core.events({ since: now - TIMELINE_DAYS * DAY }),
  }));
}

function page(monitor: MonitorHarness, view: Dashboard): string {
  return renderDashboard({ config: monitor.config, view });
}

/** The host card of `hostId`: its opening tag's attributes and its markup up to the next card. */
function card(html: string, hostId: string): { state: string; conditions: string; body: string } {
  const start = html.indexOf(`data-host="${hostId}"`);
  if (start < 0) throw new Error(`no card for ${hostId}`);
  const end = html.indexOf("</article>", start);
  const body = html.slice(start, end);
  const attribute = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(body)?.[1] ?? "";
  return { state: attribute("data-state"), conditions: attribute("data-conditions"), body };
}

/** The coloured spans a card's timeline draws, as [lane, width in the 700-wide viewBox]. */
function spansOf(cardBody: string): [string, number][] {
  return [...cardBody.matchAll(/<rect x="[\d.]+" y="2" width="([\d.]+)" height="20" class="span (\w+)"/g)].map((match) => [match[2] ?? "", Number(match[1])]);
}

describe("the status page, drawn from the monitor's history", () => {
  it("shows a host dark while it is, then its outage as a span on the week's timeline and in the log", async () => {
    const monitor = new MonitorHarness(TWO_HOSTS);
    const alpha = harnessAgent(monitor, "alpha");
    const beta = harnessAgent(monitor, "beta");
    for (let at = T0; at <= T0 + 2 * MINUTE; at += 30 * SECOND) {
      await alpha(at, { files: filesWith(at - 5 * SECOND) });
      await beta(at, { files: filesWith(at - 5 * SECOND) });
    }
    // alpha falls silent; beta goes on. The alarm pages alpha dark.
    const lastAlpha = T0 + 2 * MINUTE;
    for (let at = T0 + 150 * SECOND; at <= T0 + 62 * MINUTE; at += 30 * SECOND) {
      await beta(at, { files: filesWith(at - 5 * SECOND) });
      await monitor.alarmsUntil(at);
    }
    const during = page(monitor, await dashboardOf(monitor, T0 + 62 * MINUTE));
    expect(card(during, "alpha")).toMatchObject({ state: "bad", conditions: "dark" });
    expect(card(during, "alpha").body).toContain("DARK");
    expect(card(during, "beta").state).toBe("ok");
    expect(during).toContain('data-summary="trouble"');

    await alpha(T0 + 62 * MINUTE + 10 * SECOND, { files: filesWith(T0 + 62 * MINUTE) });
    const after = await dashboardOf(monitor, T0 + 63 * MINUTE);
    const html = page(monitor, after);
    expect(card(html, "alpha").state).toBe("ok");
    expect(html).toContain('data-summary="ok"');
    // One dark span, about an hour of the week's 700 units (1 h is 700 / 168 ≈ 4.2).
    const spans = spansOf(card(html, "alpha").body);
    expect(spans).toHaveLength(1);
    const [lane, width] = spans[0] ?? ["", 0];
    expect(lane).toBe("dark");
    const darkFor = T0 + 62 * MINUTE + 10 * SECOND - (lastAlpha + monitor.config.hosts[0]!.darkAfterSeconds * SECOND);
    expect(width).toBeCloseTo((darkFor / (TIMELINE_DAYS * DAY)) * 700, 0);
    expect(spansOf(card(html, "beta").body)).toEqual([]);
    // The log, newest first: the recovery, then the page.
    const log = [...html.matchAll(/<li data-type="(\w+)">/g)].map((match) => match[1]);
    expect(log[0]).toBe("recovery");
    expect(log.at(-1)).toBe("alert");
  });

  it("shades each maintenance window on the week's timeline, configured and set from the phone, with who set it", async () => {
    const monitor = new MonitorHarness({ hosts: [{ id: "alpha", maintenance: [{ days: ["sat"], from: "22:00", to: "02:00", timezone: "UTC" }] }] });
    await harnessAgent(monitor, "alpha")(T0);
    await say(monitor, "/maintenance alpha 2h", T0 + MINUTE);
    const now = T0 + 3 * HOUR;
    const html = renderDashboard({ config: monitor.config, view: await dashboardOf(monitor, now) });
    const shaded = [...card(html, "alpha").body.matchAll(/class="maintenance"><title>([^<]*)<\/title>/g)].map((match) => match[1]);
    // The week before Tue 2026-11-24 17:00 UTC: Saturday night 2026-11-21, then the phone's two hours.
    expect(shaded).toEqual(["maintenance 21 Nov, 22:00 UTC to 22 Nov, 02:00 UTC", "maintenance 24 Nov, 14:01 UTC to 24 Nov, 16:01 UTC (@ann)"]);
  });

  it("shows a host that went dark in a maintenance window as held, not as ok", async () => {
    const monitor = new MonitorHarness({ hosts: [{ id: "alpha" }] });
    await harnessAgent(monitor, "alpha")(T0);
    await say(monitor, "/maintenance alpha 2h", T0 + MINUTE);
    await monitor.alarmsUntil(T0 + 10 * MINUTE);
    const alpha = card(renderDashboard({ config: monitor.config, view: await dashboardOf(monitor, T0 + 10 * MINUTE) }), "alpha");
    expect(alpha.state).toBe("wait");
    expect(alpha.body).toContain("in maintenance: DARK");
    expect(alpha.body).toContain("held by maintenance until 24 Nov, 16:01 UTC");
    expect(alpha.body).not.toContain("confirming");
  });

  it("draws an incident that began seconds ago inside the week's bar, wide enough to see", async () => {
    const monitor = new MonitorHarness(TWO_HOSTS);
    const alpha = harnessAgent(monitor, "alpha");
    for (let at = T0; at <= T0 + 2 * MINUTE; at += 30 * SECOND) await alpha(at, { files: filesWith(at - 5 * SECOND) });
    const darkAfterMs = (monitor.config.hosts[0]?.darkAfterSeconds ?? 0) * SECOND;
    const darkAt = T0 + 2 * MINUTE + darkAfterMs;
    await monitor.alarmsUntil(darkAt + 2 * SECOND);
    const alphaCard = card(page(monitor, await dashboardOf(monitor, darkAt + 5 * SECOND)), "alpha");
    expect(alphaCard.state).toBe("bad");
    // Five seconds of a week is 0.006 of 700 units: drawn at the narrowest width, ending at the bar's right edge, not past it.
    const rects = [...alphaCard.body.matchAll(/<rect x="([\d.]+)" y="2" width="([\d.]+)" height="20" class="span dark"/g)].map((match) => [Number(match[1]), Number(match[2])]);
    expect(rects).toEqual([[696, 4]]);
    // The bar's left end is labelled with its date alone ("25 Nov", not "25 Nov,").
    expect(alphaCard.body).toMatch(/<figcaption><span>\d{1,2} [A-Z][a-z]{2}<\/span><span>now<\/span><\/figcaption>/);
  });

  it("escapes everything the host sends: a heartbeat status of markup is shown as text", async () => {
    const monitor = new MonitorHarness(TWO_HOSTS);
    const alpha = harnessAgent(monitor, "alpha");
    const hostile = `<img src=x onerror="alert(1)">`;
    for (const at of [T0, T0 + 30 * SECOND]) await alpha(at, { files: filesWith(at - SECOND, hostile) });
    const html = page(monitor, await dashboardOf(monitor, T0 + 31 * SECOND));
    expect(card(html, "alpha").conditions).toBe("failing");
    expect(html).not.toContain("<img");
    expect(html).toContain("&lt;img src=x onerror=");
  });

  it("draws an incident that a mute kept off the phone: recorded as silenced, then cleared, never sent", async () => {
    const monitor = new MonitorHarness(TWO_HOSTS);
    const alpha = harnessAgent(monitor, "alpha");
    await alpha(T0, { files: filesWith(T0 - SECOND) });
    await say(monitor, "/mute alpha 2h", T0 + SECOND);
    for (const at of [T0 + 30 * SECOND, T0 + 60 * SECOND]) await alpha(at, { files: filesWith(at - SECOND, "halted") });
    for (const at of [T0 + 40 * MINUTE, T0 + 41 * MINUTE]) await alpha(at, { files: filesWith(at - SECOND) });
    const html = page(monitor, await dashboardOf(monitor, T0 + 42 * MINUTE));
    const log = [...html.matchAll(/<li data-type="(\w+)">/g)].map((match) => match[1]);
    expect(log).toEqual(["cleared", "silenced", "mute"]);
    expect(spansOf(card(html, "alpha").body).map(([lane]) => lane)).toEqual(["failing"]);
    expect((await monitor.messages()).join("\n")).not.toContain("halted");
  });

  it("shows a host that never pinged as waiting, not as ok", async () => {
    const monitor = new MonitorHarness(TWO_HOSTS);
    await harnessAgent(monitor, "alpha")(T0);
    const html = page(monitor, await dashboardOf(monitor, T0 + SECOND));
    expect(card(html, "beta").state).toBe("wait");
    expect(card(html, "beta").body).toContain("waiting for first ping");
    expect(card(html, "alpha").state).toBe("ok");
  });
});

describe("timeline spans", () => {
  const state = (conditions: HostState["judgement"]["conditions"]): HostState =>
    ({ hostId: "alpha", judgement: { firstJudgedAt: 0, conditions } }) as unknown as HostState;
  const event = (at: number, type: string, kind: string): HistoryEvent => ({ at, hostId: "alpha", type, kind, detail: "", by: null });

  it("clips to the window, draws an open incident to now and a recovery without its page from the window's start", () => {
    const from = T0;
    const to = T0 + DAY;
    const spans = hostSpans(
      "alpha",
      [event(from - HOUR, "alert", "stale"), event(from + HOUR, "recovery", "stale"), event(from + 2 * HOUR, "recovery", "failing"), event(from + 3 * HOUR, "alert", "dark")],
      state({ dark: { openedAt: from + 3 * HOUR, detail: "", pagedAt: from + 3 * HOUR, seen: 1, lastSentAt: null, reminderDate: null } }),
      from,
      to,
    );
    expect(spans).toEqual([
      { lane: "stale", kind: "stale", from, to: from + HOUR, open: false },
      { lane: "failing", kind: "failing", from, to: from + 2 * HOUR, open: false },
      { lane: "dark", kind: "dark", from: from + 3 * HOUR, to, open: true },
    ]);
  });

  it("ends an incident the judgement no longer has at the host's next event, and ignores other hosts", () => {
    const spans = hostSpans(
      "alpha",
      [event(T0, "alert", "failing"), { ...event(T0 + MINUTE, "alert", "dark"), hostId: "beta" }, event(T0 + HOUR, "ack", "tripped")],
      state({}),
      T0 - DAY,
      T0 + DAY,
    );
    expect(spans).toEqual([{ lane: "failing", kind: "failing", from: T0, to: T0 + HOUR, open: false }]);
  });
});

describe("drawing spans at the bar's scale", () => {
  const span = (lane: Span["lane"], from: number, to: number): Span => ({ lane, kind: lane, from, to, open: false });

  it("merges spans of one lane closer than the resolution, counting them, and keeps lanes apart", () => {
    const drawn = mergeForDrawing([span("failing", 0, 10), span("failing", 15, 20), span("dark", 12, 14), span("failing", 100, 110)], 10);
    expect(drawn).toEqual([
      { lane: "failing", kind: "failing", from: 0, to: 20, open: false, count: 2, totalMs: 15 },
      { lane: "dark", kind: "dark", from: 12, to: 14, open: false, count: 1, totalMs: 2 },
      { lane: "failing", kind: "failing", from: 100, to: 110, open: false, count: 1, totalMs: 10 },
    ]);
  });

  it("coarsens a week of flapping until the bar has at most MAX_DRAWN marks, losing no time", () => {
    const flapping = Array.from({ length: 500 }, (_, index) => span("failing", index * 20 * MINUTE, index * 20 * MINUTE + 5 * MINUTE));
    const drawn = mergeForDrawing(flapping, (7 * DAY) / 700);
    expect(drawn.length).toBeLessThanOrEqual(MAX_DRAWN);
    expect(drawn.reduce((sum, mark) => sum + mark.count, 0)).toBe(500);
    expect(drawn.reduce((sum, mark) => sum + mark.totalMs, 0)).toBe(500 * 5 * MINUTE);
  });
});

/** The edge with this env at `now`. */
function fetchApp(environment: Env, request: Request, now = Date.now()): Promise<Response> {
  return Promise.resolve(createApp({ now: () => now }).fetch(request, environment));
}

function sessionCookieOf(response: Response): string {
  const header = response.headers.get("set-cookie") ?? "";
  const match = new RegExp(`${SESSION_COOKIE}=([^;]+)`).exec(header);
  if (match === null) throw new Error(`no session cookie in "${header}"`);
  return match[1] ?? "";
}

function withCookie(path: string, cookie: string): Request {
  return new Request(`https://witness.test${path}`, { headers: { cookie: `${SESSION_COOKIE}=${cookie}` } });
}

function signInForm(token: string): Request {
  return new Request("https://witness.test/status/sign-in", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token }).toString(),
  });
}

describe("signing in", () => {
  const environment = (): TestEnv => testEnv(TWO_HOSTS);

  it("shows the sign-in form and no host to a visitor without a session, a wrong cookie or a wrong bearer", async () => {
    const testEnvironment = environment();
    const token = testEnvironment.STATUS_TOKEN;
    const forged = await signPass(`${token}x`, "session", Date.now() + DAY);
    const expired = await signPass(token, "session", Date.now() - SECOND);
    const link = (await signPass(token, "link", Date.now() + DAY)).toString();
    for (const request of [
      new Request("https://witness.test/status"),
      withCookie("/status", forged),
      withCookie("/status", expired),
      withCookie("/status", link), // a link's pass is not a session
      withCookie("/status", "garbage"),
      new Request("https://witness.test/status", { headers: { authorization: "Bearer wrong" } }),
    ]) {
      const response = await fetchApp(testEnvironment, request);
      const body = await response.text();
      expect(response.status, request.headers.get("cookie") ?? "no cookie").toBe(401);
      expect(body).toContain('<form method="post" action="/status/sign-in">');
      expect(body).not.toContain("alpha");
      expect(response.headers.get("cache-control")).toBe("no-store");
    }
  });

  it("signs in with the token: a 303 and an HttpOnly, Secure, SameSite=Strict cookie that opens the page", async () => {
    const testEnvironment = environment();
    const wrong = await fetchApp(testEnvironment, signInForm("not-the-token"));
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("set-cookie")).toBeNull();
    expect(await wrong.text()).toContain("Wrong token");

    const response = await fetchApp(testEnvironment, signInForm(testEnvironment.STATUS_TOKEN));
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/status");
    const header = response.headers.get("set-cookie") ?? "";
    expect(header).toMatch(/HttpOnly/);
    expect(header).toMatch(/Secure/);
    expect(header).toMatch(/SameSite=Strict/);
    const cookie = sessionCookieOf(response);
    // Good for a week, not longer.
    expect(await verifyPass(testEnvironment.STATUS_TOKEN, "session", cookie, Date.now() + 6 * DAY)).not.toBeNull();
    expect(await verifyPass(testEnvironment.STATUS_TOKEN, "session", cookie, Date.now() + 8 * DAY)).toBeNull();

    const pageResponse = await fetchApp(testEnvironment, withCookie("/status", cookie));
    expect(pageResponse.status).toBe(200);
    const html = await pageResponse.text();
    expect(html).toContain('data-host="alpha"');
    expect(html).toContain('data-host="beta"');
    expect(html).toContain('http-equiv="refresh" content="30"');
    expect(pageResponse.headers.get("content-security-policy")).toContain("default-src 'none'");

    const out = await fetchApp(testEnvironment, new Request("https://witness.test/status/sign-out", { method: "POST", headers: { cookie: `${SESSION_COOKIE}=${cookie}` } }));
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(new RegExp(`${SESSION_COOKIE}=;.*Max-Age=0`));
  });

  it("signs in for a day from the bot's /status link, and refuses a link that expired or was altered", async () => {
    const testEnvironment = environment();
    const now = Date.now();
    const update = makeUpdate({ text: "/status" });
    expect((await postUpdate(testEnvironment, update, { now })).status).toBe(200);
    const replies = (await telegramCalls(testEnvironment)).filter((call) => call.method === "sendMessage");
    const text = textOf(replies.at(-1));
    const href = /<a href="([^"]+)">Status page<\/a>/.exec(text)?.[1]?.replace(/&amp;/g, "&");
    if (href === undefined) throw new Error(`no status link in ${text}`);
    const url = new URL(href);
    expect(url.origin).toBe("https://witness.test");
    expect(url.pathname).toBe("/status/sign-in");

    const opened = await fetchApp(testEnvironment, new Request(href), now + HOUR);
    expect(opened.status).toBe(200);
    // It moves on by itself (a SameSite=Strict cookie set on a cross-site redirect would not be sent).
    expect(await opened.text()).toContain('http-equiv="refresh" content="0;url=/status"');
    const cookie = sessionCookieOf(opened);
    expect(await verifyPass(testEnvironment.STATUS_TOKEN, "session", cookie, now + LINK_MS - MINUTE)).not.toBeNull();
    expect(await verifyPass(testEnvironment.STATUS_TOKEN, "session", cookie, now + LINK_MS + MINUTE)).toBeNull();
    expect((await fetchApp(testEnvironment, withCookie("/status", cookie), now + HOUR)).status).toBe(200);

    const late = await fetchApp(testEnvironment, new Request(href), now + LINK_MS + SECOND);
    expect(late.status).toBe(401);
    expect(await late.text()).toContain("wrong or has expired");
    const altered = href.replace(/\.([0-9a-f])/, (_match, digit: string) => `.${digit === "0" ? "1" : "0"}`);
    expect((await fetchApp(testEnvironment, new Request(altered), now)).status).toBe(401);
    const longer = await signInLink("https://witness.test", `${testEnvironment.STATUS_TOKEN}-other`, now);
    expect((await fetchApp(testEnvironment, new Request(longer), now)).status).toBe(401);
  });

  it("lets a session read the history as CSV, and refuses it without one", async () => {
    const testEnvironment = environment();
    const since = Date.now() - DAY;
    expect((await fetchApp(testEnvironment, new Request(`https://witness.test/v1/events.csv?since=${since}`))).status).toBe(401);
    const cookie = await signPass(testEnvironment.STATUS_TOKEN, "session", Date.now() + HOUR);
    const response = await fetchApp(testEnvironment, withCookie(`/v1/events.csv?since=${since}`, cookie));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/csv/);
    expect((await response.text()).split("\r\n")[0]).toBe("at,at_ms,host,type,kind,detail,by");
    const bad = await fetchApp(testEnvironment, withCookie("/v1/events?since=yesterday", cookie));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/^since: send Unix milliseconds/);
    expect((await fetchApp(testEnvironment, withCookie("/v1/events?format=xml", cookie))).status).toBe(400);
    expect((await fetchApp(testEnvironment, withCookie(`/v1/events?host=&since=${since}`, cookie))).status).toBe(200);
    const unknown = await fetchApp(testEnvironment, withCookie(`/v1/events?host=gamma&since=${since}`, cookie));
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: string }).error).toBe('unknown host "gamma"');
  });
});

describe("the history as CSV", () => {
  it("quotes commas, quotes and line breaks, and keeps a formula as text", () => {
    const csv = eventsCsv([
      { at: Date.UTC(2026, 11, 1, 3, 4, 5), hostId: "alpha", type: "alert", kind: "failing", detail: 'status "error", see\nlog', by: null },
      { at: Date.UTC(2026, 11, 1, 3, 5, 0), hostId: null, type: "mute", kind: null, detail: "=HYPERLINK(\"x\")", by: "@ann" },
    ]);
    expect(csv.split("\r\n")).toEqual([
      "at,at_ms,host,type,kind,detail,by",
      `2026-12-01T03:04:05.000Z,${Date.UTC(2026, 11, 1, 3, 4, 5)},alpha,alert,failing,"status ""error"", see\nlog",`,
      `2026-12-01T03:05:00.000Z,${Date.UTC(2026, 11, 1, 3, 5, 0)},,mute,,"'=HYPERLINK(""x"")",'@ann`,
      "",
    ]);
  });
});

describe("the public page and badges (opt-in, from the KV snapshot)", () => {
  function publicEnv(config: TestConfigInput): TestEnv {
    return testEnv(config, { kv: prefixedKv(env.WITNESS_KV, `public-${crypto.randomUUID()}/`) });
  }
  const snapshot = (publishedAt: number, hosts: Snapshot["hosts"]): Snapshot => ({
    publishedAt,
    lastCronAt: publishedAt,
    alarmAt: null,
    telegram: { lastDeliveredAt: null, permanentError: null, failingSince: null, undelivered: 0 },
    hosts,
  });

  it("is off unless the config opts in, and says which setting turns it on", async () => {
    const testEnvironment = publicEnv(TWO_HOSTS);
    const publicPage = await fetchApp(testEnvironment, new Request("https://witness.test/public"));
    expect(publicPage.status).toBe(404);
    expect(((await publicPage.json()) as { error: string }).error).toContain("publicStatus = true");
    const badge = await fetchApp(testEnvironment, new Request("https://witness.test/badge/alpha.svg"));
    expect(badge.status).toBe(404);
    expect(((await badge.json()) as { error: string }).error).toContain("publicBadges = true");
  });

  it("shows names and up or down only, and unknown once the snapshot is too old to speak for now", async () => {
    const now = Date.now();
    const testEnvironment = publicEnv({ hosts: [{ id: "alpha", name: "Alpha desk" }, { id: "beta" }], ...{} });
    const raw = { ...(testEnvironment.WITNESS_CONFIG as Record<string, unknown>), publicStatus: true, publicBadges: true };
    const opted: TestEnv = { ...testEnvironment, WITNESS_CONFIG: raw as object };
    await opted.WITNESS_KV.put(SNAPSHOT_KEY, JSON.stringify(snapshot(now - MINUTE, [
      { id: "alpha", conditions: [], lastPingAt: now - MINUTE },
      { id: "beta", conditions: ["dark"], lastPingAt: now - HOUR },
    ])));
    const response = await fetchApp(opted, new Request("https://witness.test/public"), now);
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toMatch(/data-public-host="Alpha desk">\s*<span>Alpha desk<\/span>\s*<span class="up">up<\/span>/);
    expect(html).toMatch(/data-public-host="beta">\s*<span>beta<\/span>\s*<span class="down">down<\/span>/);
    // Names and states only: no condition, detail or ping time.
    const body = html.slice(html.indexOf("<body>"));
    expect(body).not.toContain("dark");
    expect(body).not.toContain("alpha");

    const badge = await fetchApp(opted, new Request("https://witness.test/badge/beta.svg"), now);
    expect(badge.headers.get("content-type")).toMatch(/^image\/svg\+xml/);
    expect(await badge.text()).toContain('aria-label="beta: down"');
    expect((await fetchApp(opted, new Request("https://witness.test/badge/gamma.svg"), now)).status).toBe(404);

    const later = now + 2 * HOUR;
    expect(await (await fetchApp(opted, new Request("https://witness.test/badge/alpha.svg"), later)).text()).toContain('aria-label="Alpha desk: unknown"');
  });

  it("draws a badge whose name cannot break out of the SVG", () => {
    const svg = renderBadge(`a"><script>x</script>`, "up");
    expect(svg).not.toContain("<script>");
    expect(svg).toContain("&lt;script&gt;");
  });
});

describe("usage, counted by the monitor object", () => {
  it("counts each request the object serves, and the rows it writes, for today", async () => {
    const testEnvironment = testEnv(TWO_HOSTS);
    const cookie = await signPass(testEnvironment.STATUS_TOKEN, "session", Date.now() + HOUR);
    for (let index = 0; index < 3; index++) {
      const response = await fetchApp(testEnvironment, withCookie("/v1/status", cookie));
      expect(response.status).toBe(200);
    }
    const html = await (await fetchApp(testEnvironment, withCookie("/status", cookie))).text();
    // Three reads and this page: four requests today.
    const requests = /<tr data-resource="doRequests"><th scope="row">[^<]+<\/th><td class="">([\d,]+)/.exec(html)?.[1];
    expect(requests).toBe("4");
    const rows = /<tr data-resource="rowsWritten"><th scope="row">[^<]+<\/th><td class="">([\d,]+)/.exec(html)?.[1];
    expect(Number(rows?.replace(/,/g, ""))).toBeGreaterThan(0);
  });
});
