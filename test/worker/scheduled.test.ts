// Cron ticks inside workerd against real (simulated) KV and the Telegram stand-in on
// 127.0.0.1: what reaches the phone, how often, in what order, and what KV spends.
import { createScheduledController, reset } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { computeBudget } from "../../src/budget.ts";
import type { PingBody } from "../../src/protocol.ts";
import { runTick } from "../../src/scheduled.ts";
import { Store } from "../../src/store.ts";
import worker from "../../src/index.ts";
import {
  circuitFile,
  countingKv,
  failingPutKv,
  failTelegramNext,
  filesWith,
  getStatus,
  laggingPingKv,
  makePingBody,
  makeRecord,
  MINUTE,
  ping,
  rawTestConfig,
  sentMessages,
  T0,
  type TestEnv,
  testConfig,
  testEnv,
  tick,
  useIsolatedKv,
} from "./helpers.ts";

const SECOND = 1000;
const WATCHING_ALPHA = "👋 <b>witness</b> is watching 1 host(s):\n• <b>alpha</b>: ping every 60 s, dark after 4 min";
const DARK_PAGE = "<b>witness</b>: 1 problem\n🔴 <b>alpha</b> DARK: no ping for 5 min (dark after 4 min)";
const DARK_OVER_AT_SIX_MINUTES =
  "<b>witness</b>: recovered\n✅ <b>alpha</b> DARK over after 6 min: pinging again (the agent reported no failed pushes: the gap was between it and the Worker)";

let kv: KVNamespace;

beforeEach(async () => {
  await reset();
  kv = useIsolatedKv();
});

/** Pings `hostId` at Worker time `at` with a fresh heartbeat (or the given files). */
async function pingAt(testEnvironment: Env, at: number, seq: number, overrides: Partial<PingBody> = {}, hostId = "alpha"): Promise<number> {
  const response = await ping(testEnvironment, hostId, makePingBody({ seq, sentAt: at, files: filesWith(at - 20 * SECOND), ...overrides }), at);
  return response.status;
}

/** Like pingAt, but a refusal fails the test with the Worker's own words. */
async function pingOk(testEnvironment: Env, at: number, seq: number): Promise<void> {
  const response = await ping(testEnvironment, "alpha", makePingBody({ seq, sentAt: at, files: filesWith(at - 20 * SECOND) }), at);
  if (response.status !== 200) throw new Error(`ping seq ${seq} at +${(at - T0) / 1000} s answered ${response.status}: ${await response.text()}`);
}

function darkPages(messages: readonly string[]): string[] {
  return messages.filter((text) => text.includes("DARK"));
}

/** Telegram HTML with only the tags witness writes, every & an entity, within 4096 characters. */
function expectSafeTelegramHtml(text: string): void {
  for (const tag of text.match(/<[^>]*>/g) ?? []) expect(tag).toMatch(/^<\/?(b|i|code)>$/);
  expect(text.replace(/&(amp|lt|gt|quot);/g, "")).not.toContain("&");
  expect(text.length).toBeLessThanOrEqual(4096);
}

describe("a host that goes dark is paged exactly once", () => {
  it("on ticks every minute", async () => {
    const testEnvironment = testEnv();
    expect(await pingAt(testEnvironment, T0, 1)).toBe(200);
    for (let minute = 0; minute <= 20; minute++) await tick(testEnvironment, T0 + minute * MINUTE + 10 * SECOND);
    expect(await sentMessages(testEnvironment)).toEqual([WATCHING_ALPHA, DARK_PAGE]);
  });

  it("when every tick runs twice with the same now", async () => {
    const testEnvironment = testEnv();
    await pingAt(testEnvironment, T0, 1);
    for (let minute = 0; minute <= 20; minute++) {
      await tick(testEnvironment, T0 + minute * MINUTE + 10 * SECOND);
      await tick(testEnvironment, T0 + minute * MINUTE + 10 * SECOND);
    }
    expect(await sentMessages(testEnvironment)).toEqual([WATCHING_ALPHA, DARK_PAGE]);
  });

  it("when ticks run late, are skipped, or come in a burst", async () => {
    const testEnvironment = testEnv();
    await pingAt(testEnvironment, T0, 1);
    for (const at of [10, 290, 295, 420, 421, 421, 422, 900, 1500, 1500].map((seconds) => T0 + seconds * SECOND)) {
      await tick(testEnvironment, at);
    }
    const messages = await sentMessages(testEnvironment);
    expect(darkPages(messages)).toEqual(["<b>witness</b>: 1 problem\n🔴 <b>alpha</b> DARK: no ping for 7 min (dark after 4 min)"]);
    expect(messages).toHaveLength(2);
  });

  it("and hears once that it is back, with what the agent said about the gap", async () => {
    const testEnvironment = testEnv();
    await pingAt(testEnvironment, T0, 1);
    for (let minute = 0; minute <= 8; minute++) await tick(testEnvironment, T0 + minute * MINUTE + 10 * SECOND);
    const outage = { since: T0 + 30 * SECOND, until: T0 + 9 * MINUTE, failures: 17 };
    expect(await pingAt(testEnvironment, T0 + 9 * MINUTE, 2, { lastPushOutage: outage })).toBe(200);
    for (let minute = 9; minute <= 12; minute++) await tick(testEnvironment, T0 + minute * MINUTE + 10 * SECOND);
    expect(await sentMessages(testEnvironment)).toEqual([
      WATCHING_ALPHA,
      DARK_PAGE,
      "<b>witness</b>: recovered\n✅ <b>alpha</b> DARK over after 9 min: pinging again after a network partition: pushes failed for 9 min (17 attempts), boot id unchanged",
    ]);
  });

  it("through the deployed scheduled handler on the real clock", async () => {
    const testEnvironment = testEnv({ timing: { confirmSeconds: 0, settleSeconds: 0 } });
    const now = Date.now();
    await new Store(kv).putPingRecord(makeRecord({ receivedAt: now - 10 * MINUTE }));
    await worker.scheduled(createScheduledController({ scheduledTime: now, cron: "* * * * *" }), testEnvironment);
    expect(await sentMessages(testEnvironment)).toEqual([
      WATCHING_ALPHA,
      "<b>witness</b>: 1 problem\n🔴 <b>alpha</b> DARK: no ping for 10 min (dark after 4 min)",
    ]);
    const status = await getStatus(testEnvironment, Date.now());
    expect(status.lastTickAt).toBeGreaterThanOrEqual(now);
    expect(status.undelivered).toEqual([]);
  });
});

describe("delivery never loses a page", () => {
  it("429 (retry_after honoured) then 500 then 200: delivered once, in order with a later page", async () => {
    const testEnvironment = testEnv();
    await pingAt(testEnvironment, T0, 1);
    await tick(testEnvironment, T0 + 10 * SECOND);
    for (let minute = 1; minute <= 4; minute++) await tick(testEnvironment, T0 + minute * MINUTE + 10 * SECOND);

    await failTelegramNext(testEnvironment, [{ status: 429, retryAfterSeconds: 1 }, { status: 500 }]);
    const sleeps: number[] = [];
    const summary = await runTick(testEnvironment, {
      now: () => T0 + 5 * MINUTE + 10 * SECOND,
      fetch: (input, init) => fetch(input, init),
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    expect(summary).toMatchObject({ delivered: 1, undelivered: 0 });
    // Telegram's retry_after, then backoff after the 500 (tests run without the settle wait).
    expect(sleeps).toEqual([1_000, 2_000]);

    await pingAt(testEnvironment, T0 + 6 * MINUTE, 2);
    await tick(testEnvironment, T0 + 6 * MINUTE + 10 * SECOND);
    expect(await sentMessages(testEnvironment)).toEqual([
      WATCHING_ALPHA,
      DARK_PAGE,
      DARK_OVER_AT_SIX_MINUTES,
    ]);
  });

  it("a retry_after longer than a tick can wait is honoured on a later tick, not slept through", async () => {
    const testEnvironment = testEnv();
    await pingAt(testEnvironment, T0, 1, { files: filesWith(T0 - 20 * SECOND, "halted") });
    await failTelegramNext(testEnvironment, [{ status: 429, retryAfterSeconds: 60 }]);
    const sleeps: number[] = [];
    const summary = await runTick(testEnvironment, {
      now: () => T0 + 10 * SECOND,
      fetch: (input, init) => fetch(input, init),
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    expect(summary).toMatchObject({ delivered: 0, undelivered: 2 });
    expect(sleeps).toEqual([]);
    expect(await sentMessages(testEnvironment)).toEqual([]);
    await tick(testEnvironment, T0 + MINUTE + 10 * SECOND);
    expect(await sentMessages(testEnvironment)).toEqual([WATCHING_ALPHA, '<b>witness</b>: 1 problem\n🔴 <b>alpha</b> FAILING: status &quot;halted&quot;']);
  });

  it("a page that fails three times in a tick waits in KV and goes out before the next one", async () => {
    const testEnvironment = testEnv();
    await pingAt(testEnvironment, T0, 1);
    for (let minute = 0; minute <= 4; minute++) await tick(testEnvironment, T0 + minute * MINUTE + 10 * SECOND);
    await failTelegramNext(testEnvironment, [{ status: 500 }, { status: 502 }, { status: 503 }]);
    await tick(testEnvironment, T0 + 5 * MINUTE + 10 * SECOND);
    expect(await sentMessages(testEnvironment)).toEqual([WATCHING_ALPHA]);
    expect((await getStatus(testEnvironment, T0 + 5 * MINUTE + 20 * SECOND)).undelivered).toEqual([
      { id: `${T0 + 5 * MINUTE + 10 * SECOND}-0`, createdAt: T0 + 5 * MINUTE + 10 * SECOND, attempts: 3, lastError: "503 Internal Server Error" },
    ]);

    await pingAt(testEnvironment, T0 + 6 * MINUTE, 2);
    await tick(testEnvironment, T0 + 6 * MINUTE + 10 * SECOND);
    expect(await sentMessages(testEnvironment)).toEqual([
      WATCHING_ALPHA,
      DARK_PAGE,
      DARK_OVER_AT_SIX_MINUTES,
    ]);
  });

  it("Telegram down for many ticks: pages kept in KV, visible on /v1/status, delivered in order when it returns", async () => {
    const testEnvironment = testEnv();
    await pingAt(testEnvironment, T0, 1);
    await tick(testEnvironment, T0 + 10 * SECOND);
    await failTelegramNext(testEnvironment, Array.from({ length: 45 }, () => ({ status: 502 })));

    for (let minute = 1; minute <= 8; minute++) await tick(testEnvironment, T0 + minute * MINUTE + 10 * SECOND);
    // The host comes back reporting a failure, and keeps pinging from then on.
    const minuteWithPing = async (minute: number) => {
      await pingAt(testEnvironment, T0 + minute * MINUTE, minute, { files: filesWith(T0 + 9 * MINUTE, "halted") });
      await tick(testEnvironment, T0 + minute * MINUTE + 10 * SECOND);
    };
    for (let minute = 9; minute <= 12; minute++) await minuteWithPing(minute);

    const status = await getStatus(testEnvironment, T0 + 12 * MINUTE + 20 * SECOND);
    expect(status.undelivered.map((message) => message.id)).toEqual([`${T0 + 5 * MINUTE + 10 * SECOND}-0`, `${T0 + 9 * MINUTE + 10 * SECOND}-0`]);
    expect(status.undelivered[0]).toMatchObject({ attempts: expect.any(Number), lastError: "502 Internal Server Error" });
    expect(status.undelivered[0]?.attempts).toBeGreaterThanOrEqual(1);
    expect(await sentMessages(testEnvironment)).toEqual([WATCHING_ALPHA]);

    for (let minute = 13; minute <= 20; minute++) await minuteWithPing(minute);
    expect(await sentMessages(testEnvironment)).toEqual([
      WATCHING_ALPHA,
      DARK_PAGE,
      '<b>witness</b>: 1 problem\n✅ <b>alpha</b> DARK over after 9 min: pinging again (the agent reported no failed pushes: the gap was between it and the Worker)\n🔴 <b>alpha</b> FAILING: status &quot;halted&quot;',
    ]);
    expect((await getStatus(testEnvironment, T0 + 20 * MINUTE + 20 * SECOND)).undelivered).toEqual([]);
  });

  it.each([
    [403, "Forbidden: bot was blocked by the user"],
    [400, "Bad Request: chat not found"],
  ])("%i %s is a permanent error on /v1/status, and the pages are kept", async (code, description) => {
    const testEnvironment = testEnv();
    await pingAt(testEnvironment, T0, 1);
    await failTelegramNext(testEnvironment, [{ status: code, description }, { status: code, description }]);
    await tick(testEnvironment, T0 + 10 * SECOND);
    await pingAt(testEnvironment, T0 + MINUTE, 2, { files: filesWith(T0 + 50 * SECOND, "halted") });
    await tick(testEnvironment, T0 + MINUTE + 10 * SECOND);

    const status = await getStatus(testEnvironment, T0 + MINUTE + 20 * SECOND);
    expect(status.telegram?.permanentError).toBe(`${code} ${description}`);
    expect(status.undelivered).toHaveLength(2);
    expect(await sentMessages(testEnvironment)).toEqual([]);

    // The operator unblocks the bot: everything kept goes out, in order, and the error clears.
    await tick(testEnvironment, T0 + 2 * MINUTE + 10 * SECOND);
    expect(await sentMessages(testEnvironment)).toEqual([WATCHING_ALPHA, '<b>witness</b>: 1 problem\n🔴 <b>alpha</b> FAILING: status &quot;halted&quot;']);
    expect((await getStatus(testEnvironment, T0 + 2 * MINUTE + 20 * SECOND)).telegram?.permanentError).toBeNull();
  });
});

describe("KV as it really is", () => {
  it("a cron reading a ping record 90 s old sends no false page", async () => {
    const testEnvironment = testEnv();
    const store = new Store(kv);
    for (let minute = 0; minute <= 30; minute++) {
      const now = T0 + minute * MINUTE;
      const receivedAt = now - 90 * SECOND;
      await store.putPingRecord(makeRecord({ receivedAt, body: { seq: minute + 1, files: filesWith(receivedAt - 40 * SECOND) } }));
      await tick(testEnvironment, now);
    }
    expect(await sentMessages(testEnvironment)).toEqual([WATCHING_ALPHA]);
  });

  it.each([
    ["free", 90],
    ["paid", 90],
    ["free", 150],
  ] as const)("a healthy host pinging every minute through the route, the cron reading KV %s-plan with %i s of lag: no page in 3 h", async (plan, lagSeconds) => {
    let clock = T0;
    const lagging = laggingPingKv(kv, lagSeconds * SECOND, () => clock);
    const routeEnv = testEnv({ plan }, { kv: lagging.writer });
    const cronEnv: TestEnv = { ...routeEnv, WITNESS_KV: lagging.reader };
    for (let minute = 0; minute < 180; minute++) {
      clock = T0 + minute * MINUTE;
      await pingOk(routeEnv, clock, minute + 1);
      clock += 30 * SECOND;
      await tick(cronEnv, clock);
    }
    const messages = await sentMessages(cronEnv);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/^👋 <b>witness<\/b> is watching 1 host\(s\)/);
  }, 60_000);

  it("a KV write failure says once that the monitor is degraded, never that the host is dark", async () => {
    const failing = { now: false };
    const testEnvironment = testEnv({}, { kv: failingPutKv(kv, failing) });
    await pingAt(testEnvironment, T0, 1);
    await tick(testEnvironment, T0 + 10 * SECOND);

    failing.now = true;
    const pingStatuses: number[] = [];
    for (let minute = 1; minute <= 15; minute++) {
      pingStatuses.push(await pingAt(testEnvironment, T0 + minute * MINUTE, minute + 1));
      const summary = await tick(testEnvironment, T0 + minute * MINUTE + 10 * SECOND);
      expect(summary.outcome).not.toBe("misconfigured");
    }
    // Paid plan: every ping is a refresh write, and every one fails with a clear 503.
    expect(new Set(pingStatuses)).toEqual(new Set([503]));

    failing.now = false;
    for (let minute = 16; minute <= 20; minute++) {
      expect(await pingAt(testEnvironment, T0 + minute * MINUTE, minute + 1)).toBe(200);
      await tick(testEnvironment, T0 + minute * MINUTE + 10 * SECOND);
    }
    const messages = await sentMessages(testEnvironment);
    expect(darkPages(messages)).toEqual([]);
    const degraded = messages.filter((text) => text.includes("degraded"));
    expect(degraded).toHaveLength(1);
    expect(degraded[0]).toContain("⚠️ <b>witness is degraded</b>: Workers KV is failing (write failed: KV PUT failed: 429 Too Many Requests)");
    expect(degraded[0]).toContain('no "dark" pages will be sent');
    // And the operator hears once that it is over.
    expect(messages.filter((text) => text.startsWith("✅ <b>witness</b>: Workers KV"))).toEqual([
      "✅ <b>witness</b>: Workers KV answers again after 15 min; judging resumed.",
    ]);
  });

  it("a simulated day of pings every 60 s at the free plan's defaults stays within the predicted writes", async () => {
    const counting = countingKv(kv);
    const config = { plan: "free" as const, alerts: { digestAt: "08:00" } };
    const testEnvironment = testEnv(config, { kv: counting.kv });
    const parsed = testConfig(config);
    const budget = computeBudget(parsed);
    expect(parsed.timing.refreshSeconds).toBe(600);

    for (let minute = 0; minute < 1440; minute++) {
      const at = T0 + minute * MINUTE;
      await pingOk(testEnvironment, at, minute + 1);
      await tick(testEnvironment, at + 30 * SECOND);
    }
    const pingWrites = counting.puts.filter((key) => key === "ping:alpha").length;
    const cronWrites = counting.puts.filter((key) => key === "cron:state").length;
    expect(counting.puts.length).toBe(pingWrites + cronWrites);
    // One refresh every 600 s, and the first write: 145 at most, no change writes at all.
    expect(pingWrites).toBeLessThanOrEqual(86_400 / parsed.timing.refreshSeconds + 1);
    // The tick record every 600 s, plus the first tick and the digest (each state + delivered).
    expect(cronWrites).toBeLessThanOrEqual(86_400 / parsed.timing.tickRecordSeconds + 4);
    expect(pingWrites).toBeLessThanOrEqual(budget.hosts[0]?.writes ?? 0);
    expect(counting.puts.length).toBeLessThanOrEqual(budget.total.writes);
    expect(counting.puts.length).toBeLessThan(1000);

    const messages = await sentMessages(testEnvironment);
    expect(messages[0]).toMatch(/^👋 <b>witness<\/b> is watching 1 host/);
    expect(messages.slice(1)).toEqual([expect.stringMatching(/^☀️ <b>witness daily<\/b>: all quiet\./)]);
  }, 180_000);
});

describe("misconfiguration", () => {
  it("pages once that the monitor is misconfigured over several ticks, and once that it is fixed", async () => {
    const bad = { ...rawTestConfig(), hosts: [{ id: "alpha", intervalSeconds: 5 }] };
    const badEnv = testEnv({}, { rawConfig: bad });
    for (let minute = 0; minute < 6; minute++) {
      const summary = await tick(badEnv, T0 + minute * MINUTE);
      expect(summary.outcome).toBe("misconfigured");
    }
    const messages = await sentMessages(badEnv);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(
      /^⚠️ <b>witness is misconfigured<\/b> and is not watching any host\.\nWITNESS_CONFIG\.hosts\.0\.intervalSeconds: .*\nFix wrangler\.toml/,
    );

    const fixedEnv: TestEnv = { ...badEnv, WITNESS_CONFIG: rawTestConfig() };
    await tick(fixedEnv, T0 + 6 * MINUTE);
    await tick(fixedEnv, T0 + 7 * MINUTE);
    expect((await sentMessages(badEnv)).slice(1)).toEqual(["✅ <b>witness</b>: configuration valid again; watching 1 host(s)."]);
  });
});

describe("what one tick sends", () => {
  it("one message listing every change for several hosts", async () => {
    const testEnvironment = testEnv({ hosts: [{ id: "alpha" }, { id: "beta" }, { id: "gamma" }] });
    await pingAt(testEnvironment, T0, 1, { files: filesWith(T0 - 20 * SECOND, "halted") }, "alpha");
    await pingAt(testEnvironment, T0, 1, { files: filesWith(T0 - 20 * SECOND, "ok", circuitFile({ paused: true, reason: "max drawdown" })) }, "beta");
    await pingAt(testEnvironment, T0, 1, {}, "gamma");
    await tick(testEnvironment, T0 + 10 * SECOND);
    await pingAt(testEnvironment, T0 + MINUTE, 2, {}, "alpha");
    await pingAt(testEnvironment, T0 + MINUTE, 2, {}, "beta");
    await pingAt(testEnvironment, T0 + MINUTE, 2, { files: { heartbeat: { state: "empty", size: 0 }, circuit: { state: "missing" } } }, "gamma");
    await tick(testEnvironment, T0 + MINUTE + 10 * SECOND);

    const messages = await sentMessages(testEnvironment);
    expect(messages.slice(1)).toEqual([
      [
        "<b>witness</b>: 2 problems",
        "🔴 <b>alpha</b> FAILING: status &quot;halted&quot;",
        "🔴 <b>beta</b> CIRCUIT TRIPPED: circuit paused: max drawdown",
      ].join("\n"),
      [
        "<b>witness</b>: 1 problem",
        "✅ <b>alpha</b> FAILING over after 1 min: status &quot;ok&quot; again",
        "✅ <b>beta</b> CIRCUIT TRIPPED over after 1 min: circuit.json removed: trading resumed",
        "🔴 <b>gamma</b> HEARTBEAT UNREADABLE: heartbeat.json empty: the file is empty (0 bytes: a crash mid-write?)",
      ].join("\n"),
    ]);
  });

  it("host-supplied HTML arrives escaped", async () => {
    const testEnvironment = testEnv();
    const files = {
      heartbeat: { state: "ok" as const, text: JSON.stringify({ at: (T0 - 20 * SECOND) / 1000, status: '<b>&"', note: "</b><a href='x'>" }) },
      circuit: circuitFile({ paused: true, reason: '<script>alert(1)</script> & "drawdown"' }),
    };
    await pingAt(testEnvironment, T0, 1, { files });
    await tick(testEnvironment, T0 + 10 * SECOND);
    const page = (await sentMessages(testEnvironment))[1] ?? "";
    expect(page).toContain(
      '🔴 <b>alpha</b> FAILING: status &quot;&lt;b&gt;&amp;&quot;&quot; {&quot;note&quot;:&quot;&lt;/b&gt;&lt;a href=\'x\'&gt;&quot;}',
    );
    expect(page).toContain("🔴 <b>alpha</b> CIRCUIT TRIPPED: circuit paused: &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;drawdown&quot;");
    expectSafeTelegramHtml(page);
  });

  it("splits what would not fit in 4096 characters, losing no line, the watching notice included", async () => {
    const hostIds = Array.from({ length: 100 }, (_, index) => `host-${String(index).padStart(3, "0")}`);
    const testEnvironment = testEnv({ hosts: hostIds.map((id) => ({ id })) });
    const reason = (id: string) => `${id} <${"x".repeat(440)}>`;
    for (const id of hostIds) {
      await pingAt(testEnvironment, T0, 1, { files: filesWith(T0 - 20 * SECOND, "ok", circuitFile({ paused: true, reason: reason(id) })) }, id);
    }
    await tick(testEnvironment, T0 + 10 * SECOND);
    const messages = await sentMessages(testEnvironment);
    for (const text of messages) expectSafeTelegramHtml(text);
    const all = messages.join("\n");
    for (const id of hostIds) {
      expect(all.split(`• <b>${id}</b>: ping every 60 s`)).toHaveLength(2);
      expect(all.split(`🔴 <b>${id}</b> CIRCUIT TRIPPED: circuit paused: ${id} &lt;${"x".repeat(440)}&gt;`)).toHaveLength(2);
    }
    const pages = messages.filter((text) => text.startsWith("<b>witness</b>: 100 problems"));
    expect(pages.length).toBeGreaterThan(10);
    expect(pages.slice(1).every((text) => text.startsWith("<b>witness</b>: 100 problems (continued)\n"))).toBe(true);
  }, 30_000);
});
