// The status page in a real browser: Debian's Chromium, driven by playwright-core, against
// the Worker's deploy build under wrangler dev with two hosts and their real agents, the
// Telegram stand-in on 127.0.0.1. A stranger sees the sign-in form and nothing else, the
// token and the bot's link sign in, a killed agent shows as DARK once the chat was paged
// and as a span on its timeline once it recovered, and a phone never scrolls sideways.
// Full-page screenshots go to screenshots/ (gitignored; docs/screenshots/ keeps copies).
// Without /usr/bin/chromium the file is skipped, except in CI (CI=true), where it fails:
// .ci/run installs chromium.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { z } from "zod";
import { ensureAgentBundle } from "../support/agent-process.ts";
import {
  DEMO_AGENT_INTERVAL_SECONDS,
  DEMO_CHAT_ID,
  DEMO_DARK_AFTER_SECONDS,
  DEMO_OPERATOR_USER_ID,
  type LocalStack,
  SILENCE_PAGES_DARK_SETTINGS,
  startLocalStack,
  waitUntil,
} from "../support/local-stack.ts";
import { eventLines } from "../support/phone.ts";
import { type TelegramUser, textUpdate } from "../support/telegram-updates.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Where each run writes its screenshots (gitignored); the README shows copies from docs/screenshots/. */
const SCREENSHOT_DIR = join(root, "screenshots");

const CHROMIUM = "/usr/bin/chromium";
const inCi = process.env.CI === "true";
const haveChromium = existsSync(CHROMIUM);
/**
 * As the machine notes run it: headless (Playwright adds --headless itself), no sandbox
 * (CI runs as root), and nothing that reaches past 127.0.0.1 (this network is closed).
 * Playwright starts every launch on a fresh temporary profile and refuses --user-data-dir.
 */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const STEADY = "desk-steady";
const DARK = "desk-dark";
const OWNER: TelegramUser = { id: DEMO_OPERATOR_USER_ID, is_bot: false, first_name: "Ann", username: "ann" };
const DARK_AFTER_MS = DEMO_DARK_AFTER_SECONDS * 1000;
const SCENARIO_TIMEOUT_MS = 150_000;

const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 }, locale: "en-US", timezoneId: "UTC", colorScheme: "light" };

let dir = "";
let stack: LocalStack | undefined;
let browser: Browser | undefined;
/** The desktop browser signed in with the token, for the scenarios after sign-in. */
let signedIn: Page | undefined;

function running(): LocalStack {
  if (stack === undefined) throw new Error("the local stack did not start (see beforeAll)");
  return stack;
}

function openBrowser(): Browser {
  if (browser === undefined) throw new Error("chromium did not start (see beforeAll)");
  return browser;
}

function signedInPage(): Page {
  if (signedIn === undefined) throw new Error("the sign-in scenario did not run or failed");
  return signedIn;
}

/**
 * The Worker as a person types it, at localhost (wrangler dev listens on 127.0.0.1, where
 * localhost resolves). The session cookie is Secure, and over plain http Chromium keeps
 * a Secure cookie only from a "potentially trustworthy" origin: localhost and 127.0.0.1
 * are (Chromium 156 keeps it on both), any other name or address would not.
 */
function pageUrl(path: string): string {
  return `http://localhost:${running().worker.port}${path}`;
}

async function newContext(options: BrowserContextOptions): Promise<BrowserContext> {
  return openBrowser().newContext(options);
}

/** Signs `page` in with the form, as the operator does with the token from wrangler secret put. */
async function signInWithForm(page: Page, token: string): Promise<void> {
  await page.goto(pageUrl("/status"));
  await page.locator("input#token").fill(token);
  await page.locator("form[action='/status/sign-in'] button[type=submit]").click();
  await page.waitForLoadState("load");
}

const PHONE_WIDTH = 390;
/** A phone-sized screen (an iPhone 14's CSS size) that honours the page's viewport meta tag. */
const PHONE: BrowserContextOptions = { ...DESKTOP, viewport: { width: PHONE_WIDTH, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

const Overflow = z.object({ scrollWidth: z.number(), innerWidth: z.number(), widest: z.array(z.string()) });

/**
 * How wide the page lays out against the window, and (for the failure message) the
 * elements that reach past the phone's right edge. A string, since this program has no
 * DOM types.
 */
async function overflow(page: Page): Promise<z.infer<typeof Overflow>> {
  const measured: unknown = await page.evaluate(`(() => {
    const widest = [...document.querySelectorAll("body *")]
      .filter((element) => element.getBoundingClientRect().right > ${PHONE_WIDTH} + 0.5)
      .slice(0, 5)
      .map((element) => element.tagName.toLowerCase() + (element.className ? "." + String(element.className).split(" ").join(".") : ""));
    return { scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, widest };
  })()`);
  return Overflow.parse(measured);
}

async function expectNoSidewaysScroll(page: Page): Promise<void> {
  const measured = await overflow(page);
  // A mobile viewport widens itself to content that does not fit (a 436 px table made
  // innerWidth 436), and then scrollWidth <= innerWidth holds on a page that is too
  // wide: the window must still be the phone's width.
  expect(measured, "the page is wider than the phone").toEqual({ scrollWidth: measured.scrollWidth, innerWidth: PHONE_WIDTH, widest: [] });
  expect(measured.scrollWidth).toBeLessThanOrEqual(measured.innerWidth);
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true, animations: "disabled" });
}

/** The phone's lines about `hostId`, waiting until there are `count` of them. */
function waitForLines(hostId: string, count: number, timeoutMs: number): Promise<string[]> {
  const lines = () => eventLines(running().messages(), hostId).map((line) => line.text);
  return waitUntil(`message line ${count} for ${hostId} (so far: ${JSON.stringify(lines())})`, timeoutMs, () => {
    const got = lines();
    return got.length >= count ? got : undefined;
  });
}

/**
 * The CSS pixels of `hostId`'s one dark span that show inside its timeline's bar: the
 * svg clips whatever is drawn past its edge.
 */
async function visibleDarkSpanWidth(page: Page, hostId: string): Promise<number> {
  const svg = await card(page, hostId).locator("figure.timeline svg").boundingBox();
  const span = await card(page, hostId).locator("figure.timeline svg rect.span.dark").boundingBox();
  if (svg === null || span === null) throw new Error(`${hostId}'s timeline or its dark span is not laid out`);
  return Math.min(span.x + span.width, svg.x + svg.width) - Math.max(span.x, svg.x);
}

function card(page: Page, hostId: string) {
  return page.locator(`article[data-host="${hostId}"]`);
}

if (!haveChromium && !inCi) {
  console.warn(`status-browser: skipped, ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it, and in CI its absence fails)`);
}

describe.skipIf(!haveChromium && !inCi)("the status page in Chromium, against wrangler dev and real agents", () => {
  beforeAll(async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does when it is absent)`);
    dir = mkdtempSync(join(tmpdir(), "witness-browser-"));
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const bundle = await ensureAgentBundle(root, join(dir, "witness-agent.mjs"));
    const [started, launched] = await Promise.all([
      startLocalStack({
        root,
        dir: join(dir, "stack"),
        agentBundle: bundle,
        agentIntervalSeconds: DEMO_AGENT_INTERVAL_SECONDS,
        pipelineEveryMs: 2000,
        // The cron as npm start runs it: the page's Monitor section then reads as deployed.
        tickEveryMs: 15_000,
        prebuiltWorker: true,
        hosts: [
          { id: STEADY, dataDir: join(dir, "hosts", STEADY) },
          // Goes silent: see SILENCE_PAGES_DARK_SETTINGS (DARK alone, not STALE first).
          { id: DARK, dataDir: join(dir, "hosts", DARK), settings: SILENCE_PAGES_DARK_SETTINGS },
        ],
      }),
      chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS }),
    ]);
    stack = started;
    browser = launched;
    await waitUntil("both agents' first accepted ping", 30_000, async () => {
      const status = await started.worker.status();
      return status.hosts.every((entry) => entry.lastPingAt !== null) ? true : undefined;
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test("a stranger sees the sign-in form and no host; a wrong token gets the error, no cookie and still no host", async () => {
    const context = await newContext(DESKTOP);
    const page = await context.newPage();

    const first = await page.goto(pageUrl("/status"));
    expect(first?.status()).toBe(401);
    expect(await page.locator("input#token").count()).toBe(1);
    expect(await page.locator("[data-host]").count()).toBe(0);
    const strangerText = await page.locator("body").innerText();
    expect(strangerText).not.toContain(STEADY);
    expect(strangerText).not.toContain(DARK);

    await page.locator("input#token").fill(`${running().worker.secrets.STATUS_TOKEN}x`);
    const [answer] = await Promise.all([page.waitForResponse((response) => response.url().endsWith("/status/sign-in")), page.locator("button[type=submit]").click()]);
    expect(answer.status()).toBe(401);
    await page.waitForLoadState("load");
    expect(await page.locator("p.error[role=alert]").innerText()).toBe("Wrong token: use the STATUS_TOKEN set with wrangler secret put.");
    expect(await page.locator("[data-host]").count()).toBe(0);
    expect(await page.locator("body").innerText()).not.toContain(STEADY);
    expect(await context.cookies()).toEqual([]);

    // And going to the page again after the refusal: still the form.
    await page.goto(pageUrl("/status"));
    expect(await page.locator("[data-host]").count()).toBe(0);
    await context.close();
  });

  test("the sign-in page fits a phone: no sideways scroll", async () => {
    const context = await newContext(PHONE);
    const page = await context.newPage();
    await page.goto(pageUrl("/status"));
    await expectNoSidewaysScroll(page);
    await screenshot(page, "phone-sign-in");
    await context.close();
  });

  test("the token signs in with an HttpOnly, Secure, SameSite=Strict session, and both hosts show ok", async () => {
    const context = await newContext(DESKTOP);
    const page = await context.newPage();
    await signInWithForm(page, running().worker.secrets.STATUS_TOKEN);

    expect(new URL(page.url()).pathname).toBe("/status");
    const cookies = await context.cookies();
    expect(cookies.map(({ name, httpOnly, secure, sameSite, path }) => ({ name, httpOnly, secure, sameSite, path }))).toEqual([
      { name: "witness_session", httpOnly: true, secure: true, sameSite: "Strict", path: "/" },
    ]);
    // HttpOnly: no script on the page could read it.
    expect(await page.evaluate("document.cookie")).toBe("");
    expect(await page.locator("[data-host]").count()).toBe(2);
    expect(await card(page, STEADY).getAttribute("data-state")).toBe("ok");
    expect(await card(page, DARK).getAttribute("data-state")).toBe("ok");
    expect(await page.locator("[data-summary]").getAttribute("data-summary")).toBe("ok");
    signedIn = page;
  });

  test("the link in the bot's /status reply signs a fresh browser in and lands on the page", async () => {
    const local = running();
    const before = local.telegram.calls(local.worker.secrets.TELEGRAM_BOT_TOKEN).length;
    const answer = await local.worker.sendTelegramUpdate(textUpdate({ chatId: Number(DEMO_CHAT_ID), from: OWNER, text: "/status" }));
    expect(answer).toEqual({ status: 200, body: { ok: true } });
    const replies = local.telegram
      .calls(local.worker.secrets.TELEGRAM_BOT_TOKEN)
      .slice(before)
      .filter((call) => call.method === "sendMessage")
      .map((call) => String(call.payload.text));
    const href = replies.map((text) => /<a href="([^"]+)">Status page<\/a>/.exec(text)?.[1]).find((found) => found !== undefined);
    if (href === undefined) throw new Error(`no status page link in the /status reply: ${JSON.stringify(replies)}`);
    const link = href.replaceAll("&amp;", "&");
    // Signed for the origin the webhook was reached at (the helper posts to 127.0.0.1).
    expect(link).toMatch(new RegExp(`^${local.worker.url}/status/sign-in\\?link=\\d{13}\\.[0-9a-f]{64}$`));

    const context = await newContext(DESKTOP);
    const page = await context.newPage();
    await page.goto(link);
    // The sign-in page moves on to /status by itself (a meta refresh).
    await page.waitForURL(`${local.worker.url}/status`);
    await page.waitForLoadState("load");
    expect(await page.locator("[data-host]").count()).toBe(2);
    expect((await context.cookies()).map((cookie) => cookie.name)).toEqual(["witness_session"]);

    // A link whose signature was tampered with signs nobody in.
    const other = await newContext(DESKTOP);
    const forged = await other.newPage();
    const response = await forged.goto(link.replace(/.$/, (last) => (last === "0" ? "1" : "0")));
    expect(response?.status()).toBe(401);
    expect(await forged.locator("p.error[role=alert]").innerText()).toContain("This sign-in link is wrong or has expired");
    expect(await forged.locator("[data-host]").count()).toBe(0);
    await Promise.all([context.close(), other.close()]);
  });

  test(
    "a killed agent: once the chat was paged DARK its card is bad with the dark condition, the summary says trouble, and a phone still fits",
    async () => {
      const local = running();
      await local.host(DARK).stopAgent("kill");
      const [page] = await waitForLines(DARK, 1, DARK_AFTER_MS + 30_000);
      expect(page).toMatch(new RegExp(`^🔴 ${DARK} DARK: no ping for \\d+ s \\(dark after ${DEMO_DARK_AFTER_SECONDS} s\\)$`));

      const desktop = signedInPage();
      await desktop.reload();
      expect(await card(desktop, DARK).getAttribute("data-state")).toBe("bad");
      expect((await card(desktop, DARK).getAttribute("data-conditions"))?.split(" ")).toContain("dark");
      expect(await card(desktop, DARK).locator(".state").innerText()).toBe("DARK");
      expect(await card(desktop, STEADY).getAttribute("data-state")).toBe("ok");
      expect(await desktop.locator("[data-summary]").getAttribute("data-summary")).toBe("trouble");
      expect(await desktop.locator("[data-summary]").innerText()).toBe("1 of 2 host(s) need attention");
      // The open outage is drawn already, to "now".
      expect(await card(desktop, DARK).locator("figure.timeline svg rect.span.dark").count()).toBe(1);
      // A few seconds of a week's bar, still drawn where an eye can find it.
      expect(await visibleDarkSpanWidth(desktop, DARK)).toBeGreaterThanOrEqual(4);
      await screenshot(desktop, "desktop-dark");

      const phone = await newContext(PHONE);
      const small = await phone.newPage();
      await signInWithForm(small, local.worker.secrets.STATUS_TOKEN);
      expect(await card(small, DARK).getAttribute("data-state")).toBe("bad");
      expect(await visibleDarkSpanWidth(small, DARK)).toBeGreaterThanOrEqual(1.5);
      await expectNoSidewaysScroll(small);
      await screenshot(small, "phone-dark");
      await phone.close();
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "the agent restarted: after the recovery its card is ok again, its timeline has one dark span, and the log shows the page and the recovery",
    async () => {
      const local = running();
      local.host(DARK).startAgent();
      const lines = await waitForLines(DARK, 2, 30_000);
      expect(lines[1]).toMatch(new RegExp(`^✅ ${DARK} DARK over after (\\d+ s|\\d+ min): pinging again: agent restart$`));

      const desktop = signedInPage();
      await desktop.reload();
      expect(await card(desktop, DARK).getAttribute("data-state")).toBe("ok");
      expect(await card(desktop, DARK).getAttribute("data-conditions")).toBe("");
      expect(await desktop.locator("[data-summary]").getAttribute("data-summary")).toBe("ok");
      const spans = card(desktop, DARK).locator("figure.timeline svg rect.span.dark");
      expect(await spans.count()).toBe(1);
      expect(await spans.getAttribute("data-lane")).toBe("dark");
      expect(await visibleDarkSpanWidth(desktop, DARK)).toBeGreaterThanOrEqual(4);
      expect(await card(desktop, STEADY).locator("figure.timeline svg rect.span").count()).toBe(0);

      const rows = (type: string) => desktop.locator(`ol.log li[data-type="${type}"]`).filter({ hasText: DARK });
      expect(await rows("alert").count()).toBe(1);
      expect(await rows("recovery").count()).toBe(1);
      expect(await rows("alert").innerText()).toMatch(/paged DARK/);
      expect(await rows("recovery").innerText()).toMatch(/recovered DARK/);
      // Newest first: the recovery is listed above the page.
      const items = await desktop.locator("ol.log li").filter({ hasText: DARK }).all();
      const order = await Promise.all(items.map((item) => item.getAttribute("data-type")));
      expect(order.indexOf("recovery")).toBeLessThan(order.indexOf("alert"));
      await screenshot(desktop, "desktop-recovered");

      const phone = await newContext(PHONE);
      const small = await phone.newPage();
      await signInWithForm(small, local.worker.secrets.STATUS_TOKEN);
      await expectNoSidewaysScroll(small);
      await screenshot(small, "phone-recovered");
      await phone.close();
    },
    SCENARIO_TIMEOUT_MS,
  );
});
