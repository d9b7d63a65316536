// The monitor object's promises, with time pinned: a change pages within the ping's own
// alarm, a deadline pages at the deadline, an alarm delivered twice or late or lost
// never pages twice or misses, a run that dies after sending repeats nothing, a healthy
// host costs about one row a ping, and nobody is paged dark for a time the monitor
// could not listen. Each call rebuilds the core from SQLite, as after an eviction.
import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Monitor } from "../../src/monitor/object.ts";
import type { PingBody } from "../../src/protocol.ts";
import { circuitFile, failTelegramNext, filesWith, makePingBody, T0, telegramCallsOf } from "./helpers.ts";
import { MonitorHarness } from "./monitor-harness.ts";
import { handleUpdate } from "../../src/phone/webhook.ts";
import { makeUpdate, parsedUpdate, say } from "./telegram-builders.ts";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
/** 30 s pings: darkAfter is 2 x 30 + 15 = 75 s; the alarm is armed 1 ms past it plus the 1 s batch window. */
const DARK_ALARM = 75 * SECOND + 1 + SECOND;

const agent = { version: "0.1.0", startedAt: T0 - HOUR, bootId: "boot-1", kind: "node" as const };

function pingAt(sentAt: number, seq: number, overrides: Partial<PingBody> = {}): PingBody {
  return makePingBody({ seq, sentAt, agent, files: filesWith(sentAt - 5 * SECOND), ...overrides });
}

const pausedFiles = (at: number) => filesWith(at - 5 * SECOND, "ok", circuitFile({ paused: true, reason: "drawdown 5%", since: at / 1000 }));

/** Pages only: the first run's "watching" notice is not a page. */
async function pages(monitor: MonitorHarness): Promise<string[]> {
  return (await monitor.messages()).filter((text) => !text.includes("is watching"));
}

describe("a change on the host pages within seconds, not at the next cron", () => {
  it("a tripped circuit arms the alarm for now; that alarm sends the page", async () => {
    const monitor = new MonitorHarness();
    await monitor.run(T0 - MINUTE, "cron");
    expect((await monitor.ping("alpha", pingAt(T0, 1, { files: pausedFiles(T0) }))).status).toBe(200);
    expect(monitor.armedAt).toBe(T0);
    await monitor.alarmsUntil(T0 + 2 * SECOND);
    expect(await pages(monitor)).toEqual([expect.stringContaining("<b>alpha</b> CIRCUIT TRIPPED: circuit paused: drawdown 5%")]);
  });

  it("a failing status pages on the second ping that shows it (flap damping), one interval later", async () => {
    const monitor = new MonitorHarness();
    await monitor.ping("alpha", pingAt(T0, 1, { files: filesWith(T0 - 5 * SECOND, "halted") }));
    await monitor.alarmsUntil(T0 + 29 * SECOND);
    expect(await pages(monitor)).toEqual([]);
    await monitor.ping("alpha", pingAt(T0 + 30 * SECOND, 2, { files: filesWith(T0 + 25 * SECOND, "halted") }));
    await monitor.alarmsUntil(T0 + 31 * SECOND);
    expect(await pages(monitor)).toEqual([expect.stringContaining("<b>alpha</b> FAILING: status &quot;halted&quot;")]);
  });
});

describe("dark, on the monitor's own alarm", () => {
  it("pages at darkAfter after the last ping, once, even when the alarm is delivered twice", async () => {
    const monitor = new MonitorHarness();
    await monitor.ping("alpha", pingAt(T0, 1));
    expect(monitor.armedAt).toBe(T0 + DARK_ALARM);
    await monitor.run(T0 + DARK_ALARM, "alarm");
    await monitor.run(T0 + DARK_ALARM, "alarm"); // at-least-once: the same alarm again
    await monitor.run(T0 + DARK_ALARM + 30 * SECOND, "alarm"); // and a late copy
    expect(await pages(monitor)).toEqual([expect.stringContaining("<b>alpha</b> DARK: no ping for 76 s (dark after 75 s)")]);
  });

  it("a ping just before the deadline wins over a stale alarm that fires right after it", async () => {
    const monitor = new MonitorHarness();
    await monitor.ping("alpha", pingAt(T0, 1));
    await monitor.ping("alpha", pingAt(T0 + 74 * SECOND, 2));
    // The alarm moved (it would have fired before the next ping could move it)...
    expect(monitor.armedAt).toBe(T0 + 74 * SECOND + DARK_ALARM);
    // ...but the old one may still be delivered (at-least-once): it finds nothing due.
    await monitor.run(T0 + DARK_ALARM, "alarm");
    expect(await pages(monitor)).toEqual([]);
  });

  it("a run that dies after sending (its re-arm throws) is retried without a second page", async () => {
    const monitor = new MonitorHarness();
    await monitor.ping("alpha", pingAt(T0, 1));
    monitor.failNextAlarmSet = true;
    await expect(monitor.run(T0 + DARK_ALARM, "alarm")).rejects.toThrow("injected: setAlarm failed");
    // The platform retries a thrown alarm after 2 s.
    await monitor.run(T0 + DARK_ALARM + 2 * SECOND, "alarm");
    await monitor.run(T0 + DARK_ALARM + 6 * SECOND, "alarm");
    expect(await pages(monitor)).toEqual([expect.stringContaining("<b>alpha</b> DARK")]);
  });

  it("if alarms are lost, the cron pages within one cron period of the deadline and repairs the alarm", async () => {
    const monitor = new MonitorHarness();
    await monitor.ping("alpha", pingAt(T0, 1));
    monitor.armedAt = null; // lost
    await monitor.run(T0 + 60 * SECOND, "cron");
    expect(await pages(monitor)).toEqual([]);
    await monitor.run(T0 + 120 * SECOND, "cron");
    expect(await pages(monitor)).toEqual([expect.stringContaining("<b>alpha</b> DARK: no ping for 2 min (dark after 75 s)")]);
    monitor.armedAt = null;
    const repaired = await monitor.with(T0 + 121 * SECOND, (core) => core.verifyAlarm());
    expect(repaired.repaired).toBe(true);
    expect(monitor.armedAt).toBeGreaterThan(T0 + 121 * SECOND);
  });

  it("an alarm stuck in the past is re-armed by the cron", async () => {
    const monitor = new MonitorHarness();
    await monitor.ping("alpha", pingAt(T0, 1));
    monitor.armedAt = T0 - 10 * MINUTE;
    const result = await monitor.with(T0 + 10 * SECOND, (core) => core.verifyAlarm());
    expect(result).toEqual({ alarmAt: T0 + DARK_ALARM, repaired: true });
  });

  it("hosts that go dark together share one page: a shared outage is one message", async () => {
    const monitor = new MonitorHarness({ hosts: [{ id: "alpha" }, { id: "beta" }, { id: "gamma" }] });
    await monitor.ping("alpha", pingAt(T0, 1));
    await monitor.ping("beta", pingAt(T0 + 300, 1));
    await monitor.ping("gamma", pingAt(T0 + 700, 1));
    await monitor.alarmsUntil(T0 + 3 * MINUTE);
    const dark = await pages(monitor);
    expect(dark).toHaveLength(1);
    expect(dark[0]).toMatch(/^<b>witness<\/b>: 3 problems\n.*alpha.*DARK.*\n.*beta.*DARK.*\n.*gamma.*DARK/);
  });
});

describe("what a healthy host costs", () => {
  it("one host pinging every 30 s: one row a ping, the alarm moved every other ping, never an alarm run", async () => {
    const monitor = new MonitorHarness();
    await monitor.ping("alpha", pingAt(T0, 1));
    const rowsBefore = monitor.rowsWritten;
    const setsBefore = monitor.alarmSets.length;
    const pings = 40;
    for (let i = 1; i <= pings; i++) {
      const at = T0 + i * 30 * SECOND;
      // The alarm never came due between pings: nothing woke the monitor for nothing.
      expect(monitor.armedAt).toBeGreaterThan(at);
      await monitor.ping("alpha", pingAt(at, i + 1));
    }
    expect((monitor.rowsWritten - rowsBefore) / pings).toBe(1);
    expect((monitor.alarmSets.length - setsBefore) / pings).toBe(0.5);
  });

  it("twenty hosts at 30 s: about one row a ping in all (alarm moves under 0.1 a ping)", async () => {
    const hosts = Array.from({ length: 20 }, (_, i) => ({ id: `host-${i}` }));
    const monitor = new MonitorHarness({ hosts });
    const seq = new Map<string, number>();
    const pingAll = async (round: number) => {
      for (const [index, host] of hosts.entries()) {
        const at = T0 + round * 30 * SECOND + index * 1500;
        const next = (seq.get(host.id) ?? 0) + 1;
        seq.set(host.id, next);
        expect((await monitor.ping(host.id, pingAt(at, next))).status).toBe(200);
      }
    };
    await pingAll(0);
    const setsBefore = monitor.alarmSets.length;
    const rowsBefore = monitor.rowsWritten;
    for (let round = 1; round <= 10; round++) await pingAll(round);
    const pings = 10 * hosts.length;
    expect((monitor.rowsWritten - rowsBefore) / pings).toBe(1);
    expect((monitor.alarmSets.length - setsBefore) / pings).toBeLessThan(0.1);
  });
});

describe("a silence counts only while the monitor could listen", () => {
  it("after three hours unreachable (a quota ran out), nobody is paged dark for that time; the chat hears why", async () => {
    const monitor = new MonitorHarness({ hosts: [{ id: "alpha" }, { id: "beta" }] });
    await monitor.run(T0 - MINUTE, "cron");
    await monitor.ping("alpha", pingAt(T0, 1));
    await monitor.ping("beta", pingAt(T0 + SECOND, 1));
    // Nothing reaches the monitor until T0 + 3 h: no ping, no alarm, no cron.
    await monitor.ping("alpha", pingAt(T0 + 3 * HOUR, 2));
    await monitor.run(T0 + 3 * HOUR + SECOND, "cron");
    expect(await pages(monitor)).toEqual([expect.stringMatching(/could not be reached for 3\.0 h .*Silence during that time is not counted/)]);
    // beta stays silent after the monitor hears again: dark, counted from then.
    await monitor.ping("alpha", pingAt(T0 + 3 * HOUR + 30 * SECOND, 3));
    await monitor.ping("alpha", pingAt(T0 + 3 * HOUR + 60 * SECOND, 4));
    await monitor.alarmsUntil(T0 + 3 * HOUR + 80 * SECOND);
    const dark = (await pages(monitor)).filter((text) => text.includes("DARK"));
    expect(dark).toEqual([expect.stringContaining("<b>beta</b> DARK: no ping for 76 s since the monitor could listen again (dark after 75 s; last ping 3.0 h ago)")]);
  });
});

describe("delivery to Telegram", () => {
  it("pages wait in order while Telegram fails, then go out once each", async () => {
    const monitor = new MonitorHarness();
    await monitor.run(T0 - MINUTE, "cron");
    await failTelegramNext(monitor.env, [{ status: 502 }, { status: 502 }, { status: 502 }]);
    await monitor.ping("alpha", pingAt(T0, 1, { files: pausedFiles(T0) }));
    await monitor.alarmsUntil(T0 + 2 * SECOND);
    for (let i = 1; i < 20; i++) {
      await monitor.ping("alpha", pingAt(T0 + i * 30 * SECOND, i + 1));
      await monitor.run(T0 + i * 30 * SECOND + SECOND, "cron");
    }
    const sent = await pages(monitor);
    expect(sent).toEqual([expect.stringContaining("CIRCUIT TRIPPED: circuit paused"), expect.stringContaining("CIRCUIT TRIPPED over after")]);
  });

  it("a permanent error (the bot was removed) keeps the pages, turns health red and stops the dead-man ping", async () => {
    const monitor = new MonitorHarness();
    await failTelegramNext(monitor.env, [{ status: 403, description: "Forbidden: bot was kicked from the group chat" }]);
    await monitor.ping("alpha", pingAt(T0, 1, { files: pausedFiles(T0) }));
    const report = await monitor.run(T0 + SECOND, "cron");
    expect(report).toMatchObject({ deliveryOk: false, permanentError: "403 Forbidden: bot was kicked from the group chat", undelivered: 2 });
    const snapshot = JSON.parse((await monitor.env.WITNESS_KV.get("snapshot")) ?? "null") as { telegram: { permanentError: string | null } };
    expect(snapshot.telegram.permanentError).toBe("403 Forbidden: bot was kicked from the group chat");
  });

  it("a group that became a supergroup: pages follow the new chat, which is told once what to change", async () => {
    const monitor = new MonitorHarness();
    await failTelegramNext(monitor.env, [{ status: 400, description: "Bad Request: group chat was upgraded to a supergroup chat", migrateToChatId: -1001234 }]);
    await monitor.ping("alpha", pingAt(T0, 1, { files: pausedFiles(T0) }));
    await monitor.run(T0 + SECOND, "cron");
    await monitor.ping("alpha", pingAt(T0 + 30 * SECOND, 2));
    await monitor.alarmsUntil(T0 + 32 * SECOND);
    const sends = (await telegramCallsOf(monitor.env)).filter((call) => call.method === "sendMessage");
    // The refused first try is not recorded by the stand-in; everything after goes to the new chat.
    expect(sends.length).toBeGreaterThanOrEqual(3);
    expect(new Set(sends.map((call) => call.payload.chat_id))).toEqual(new Set(["-1001234"]));
    const texts = sends.map((call) => String(call.payload.text));
    expect(texts.filter((text) => text.includes("became a supergroup"))).toEqual([
      expect.stringContaining('set <code>telegram.chatId = "-1001234"</code> in wrangler.toml'),
    ]);
  });
});

describe("the Durable Object itself (real clock, real alarm)", () => {
  it("its own alarm delivers what a ping queued, and its state survives an eviction", { timeout: 30_000 }, async () => {
    const stub = env.MONITOR.getByName(`object-${crypto.randomUUID()}`);
    const now = Date.now();
    const body = makePingBody({ seq: 1, sentAt: now, agent: { ...agent, startedAt: now - HOUR }, files: pausedFiles(now) });
    const outcome = await stub.acceptPing("alpha", body, now);
    expect(outcome.status).toBe(200);
    const alarmAt = await runInDurableObject(stub, (_instance: Monitor, state) => state.storage.getAlarm());
    expect(alarmAt).not.toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await evictDurableObject(stub);
    const view = await stub.view();
    const alpha = view.hosts.find((host) => host.hostId === "alpha");
    expect(alpha?.judgement.conditions.tripped?.detail).toMatch(/^circuit paused: drawdown 5% since /);
    // The global test config points Telegram at a closed port: the page waits, in order,
    // attempted by the object's own alarm (which also ran by itself on the real clock).
    expect(view.outbox).toHaveLength(2);
    expect(view.outbox[0]?.attempts).toBeGreaterThanOrEqual(1);
    expect(view.outbox[1]?.attempts).toBe(0);
    expect(view.outbox[0]?.lastError).toMatch(/^network: /);
    expect(view.meta.lastAlarmAt).not.toBeNull();
  });
});

describe("a stopped cron is not mistaken for a deaf monitor", () => {
  it("with the cron gone, hosts that all fall silent still page dark at their deadline", async () => {
    const monitor = new MonitorHarness({ hosts: [{ id: "alpha", darkAfterSeconds: 13 * 60 }, { id: "beta", darkAfterSeconds: 13 * 60 }] });
    await monitor.run(T0 - HOUR, "cron"); // the cron's last visit, an hour before
    // The hosts go on pinging for that hour (the monitor hears them), then both fall silent.
    let seq = 0;
    for (let at = T0 - HOUR + 30 * SECOND; at <= T0; at += 30 * SECOND) {
      seq++;
      await monitor.ping("alpha", pingAt(at, seq));
      await monitor.ping("beta", pingAt(at + SECOND, seq));
    }
    await monitor.alarmsUntil(T0 + 20 * MINUTE);
    const dark = (await pages(monitor)).filter((text) => text.includes("DARK"));
    expect(dark).toEqual([expect.stringMatching(/alpha<\/b> DARK: no ping for 13 min.*\n.*beta<\/b> DARK/)]);
    expect((await pages(monitor)).some((text) => text.includes("could not be reached"))).toBe(false);
  });
});

describe("what a careful review found", () => {
  it("a host already dark stays dark across a time the monitor could not listen: no false recovery", async () => {
    const monitor = new MonitorHarness({ hosts: [{ id: "alpha" }, { id: "beta" }] });
    await monitor.run(T0 - MINUTE, "cron");
    await monitor.ping("alpha", pingAt(T0, 1));
    await monitor.ping("beta", pingAt(T0 + SECOND, 1));
    for (let i = 1; i <= 6; i++) {
      await monitor.ping("alpha", pingAt(T0 + i * 30 * SECOND, i + 1));
      await monitor.run(T0 + i * 30 * SECOND + SECOND, "cron");
    }
    expect((await pages(monitor)).filter((text) => text.includes("beta"))).toEqual([expect.stringContaining("<b>beta</b> DARK")]);
    // Nothing reaches the monitor for an hour, then alpha pings and the cron runs.
    await monitor.ping("alpha", pingAt(T0 + HOUR, 8));
    await monitor.run(T0 + HOUR + SECOND, "cron");
    const beta = (await pages(monitor)).filter((text) => text.includes("beta"));
    // Still dark (repeated as unacknowledged), never "over".
    expect(beta.some((text) => text.includes("DARK over"))).toBe(false);
    expect(beta.at(-1)).toContain("<b>beta</b> still DARK (unacknowledged)");
    expect((await monitor.host("beta", T0 + HOUR + 2 * SECOND)).judgement.conditions.dark).toBeDefined();
    // Only beta itself ends it.
    await monitor.ping("beta", pingAt(T0 + HOUR + 10 * SECOND, 2));
    await monitor.alarmsUntil(T0 + HOUR + 12 * SECOND);
    expect((await pages(monitor)).filter((text) => text.includes("beta")).at(-1)).toContain("<b>beta</b> DARK over after");
  });

  it("a host that rebooted with a wrong clock is paged SKEWED, never DARK, while its refused pings keep coming", async () => {
    const monitor = new MonitorHarness();
    await monitor.ping("alpha", pingAt(T0, 1));
    const rebooted = { version: "0.1.0", startedAt: T0 + 50 * SECOND - 2 * HOUR, bootId: "boot-2", kind: "node" as const };
    for (let i = 0; i < 8; i++) {
      const at = T0 + 60 * SECOND + i * 30 * SECOND;
      const body = makePingBody({ seq: i + 1, sentAt: at - 2 * HOUR, agent: rebooted, files: filesWith(at - 2 * HOUR - 5 * SECOND) });
      const outcome = await monitor.with(at, (core) => core.refuseForClock({ hostId: "alpha", body, sentAt: body.sentAt }));
      expect(outcome).toEqual({ status: 401, replay: null });
      await monitor.alarmsUntil(at + 29 * SECOND);
    }
    const sent = await pages(monitor);
    expect(sent.some((text) => text.includes("DARK"))).toBe(false);
    expect(sent).toEqual([expect.stringContaining("<b>alpha</b> CLOCK SKEW: host clock is 7200 s behind; its pings are refused until it is fixed (enable NTP on the host)")]);
  });

  it("a host added to a long-running monitor gets its full grace from the deploy that added it", async () => {
    const monitor = new MonitorHarness({ hosts: [{ id: "alpha" }] });
    await monitor.run(T0, "cron");
    monitor.reconfigure({ hosts: [{ id: "alpha" }, { id: "gamma" }] });
    const deployedAt = T0 + 30 * 24 * HOUR;
    await monitor.ping("alpha", pingAt(deployedAt, 1));
    await monitor.run(deployedAt + 10 * SECOND, "cron");
    await monitor.run(deployedAt + 70 * SECOND, "cron");
    expect((await pages(monitor)).filter((text) => text.includes("gamma"))).toEqual([]);
    await monitor.alarmsUntil(deployedAt + 80 * SECOND);
    expect((await pages(monitor)).filter((text) => text.includes("gamma"))).toEqual([
      expect.stringContaining("<b>gamma</b> DARK: never pinged since the monitor started watching 76 s ago"),
    ]);
  });

  it("an observation that has not paged is not published: a flapping file spends no KV writes", async () => {
    const monitor = new MonitorHarness();
    await monitor.run(T0 - MINUTE, "cron");
    await monitor.ping("alpha", pingAt(T0, 1, { files: filesWith(T0 - 5 * SECOND, "degraded") }));
    await monitor.run(T0 + SECOND, "cron");
    const snapshot = JSON.parse((await monitor.env.WITNESS_KV.get("snapshot")) ?? "null") as { hosts: Array<{ id: string; conditions: string[] }> };
    expect(snapshot.hosts).toEqual([expect.objectContaining({ id: "alpha", conditions: [] })]);
  });

  it("Telegram failing retriably for five minutes counts as pages not delivered: no dead-man ping, health says so", async () => {
    const monitor = new MonitorHarness();
    await failTelegramNext(monitor.env, Array.from({ length: 40 }, () => ({ status: 502 })));
    await monitor.ping("alpha", pingAt(T0, 1, { files: pausedFiles(T0) }));
    let report = await monitor.run(T0 + SECOND, "cron");
    expect(report.deliveryOk).toBe(true);
    for (let i = 1; i <= 6; i++) {
      await monitor.ping("alpha", pingAt(T0 + i * 60 * SECOND, i + 1, { files: pausedFiles(T0) }));
      report = await monitor.run(T0 + i * 60 * SECOND + SECOND, "cron");
    }
    expect(report).toMatchObject({ deliveryOk: false, permanentError: null });
  });
});

describe("maintenance windows, on the monitor's alarm", () => {
  // No cron runs in these tests: with none ever seen, a long quiet stretch between alarms
  // is not taken for the monitor being unreachable (that has its own tests above).
  /** Tuesdays 14:01-15:00 UTC: T0 (Tue 14:00 UTC) is a minute before one opens. */
  const WINDOW = { days: ["tue"], from: "14:01", to: "15:00", timezone: "UTC" };
  const WINDOW_END = T0 + HOUR;

  it("a host going dark in a configured window pages once, at the window's end, saying so; the alarm is armed for that end", async () => {
    const monitor = new MonitorHarness({ hosts: [{ id: "alpha", maintenance: [WINDOW] }] });
    await monitor.ping("alpha", pingAt(T0, 1));
    expect(monitor.armedAt).toBe(T0 + DARK_ALARM);
    await monitor.alarmsUntil(T0 + DARK_ALARM);
    expect(await pages(monitor)).toEqual([]);
    // Held: the next wake is the window's end (plus the batch window), not a repeat or a loop.
    expect(monitor.armedAt).toBe(WINDOW_END + SECOND);
    expect((await monitor.host("alpha", T0 + 2 * MINUTE)).judgement.conditions.dark).toMatchObject({ pagedAt: null, heldAt: T0 + DARK_ALARM, heldUntil: WINDOW_END });
    await monitor.alarmsUntil(WINDOW_END + 2 * SECOND);
    expect(await pages(monitor)).toEqual([expect.stringContaining("<b>alpha</b> DARK: no ping for 60 min (dark after 75 s) (maintenance window ended 15:00 UTC)")]);
    await monitor.alarmsUntil(WINDOW_END + 29 * MINUTE);
    expect(await pages(monitor)).toHaveLength(1);
    // The history has the held page and the real one; the held one was never sent.
    const history = await monitor.with(WINDOW_END + 29 * MINUTE, async (core) => core.events({ hostId: "alpha", since: 0 }));
    expect(history.map((event) => [event.type, event.kind])).toEqual([
      ["held", "dark"],
      ["alert", "dark"],
    ]);
    expect(history[0]?.detail).toBe("no ping for 76 s (dark after 75 s) (maintenance until 15:00 UTC)");
  });

  it("a host back before the window ends is never paged: its dark spell is in the history only", async () => {
    // Pings every 10 min: dark after 2 × 600 + 15 s, at 14:20:15, inside the window.
    const monitor = new MonitorHarness({ hosts: [{ id: "alpha", intervalSeconds: 600, maintenance: [WINDOW] }] });
    await monitor.ping("alpha", pingAt(T0, 1));
    await monitor.alarmsUntil(T0 + 25 * MINUTE);
    expect((await monitor.host("alpha", T0 + 25 * MINUTE)).judgement.conditions.dark?.heldAt).toBe(T0 + 1215 * SECOND + 1 + SECOND);
    for (let i = 0; i < 10; i++) {
      await monitor.ping("alpha", pingAt(T0 + 30 * MINUTE + i * 10 * MINUTE, i + 2));
      await monitor.alarmsUntil(T0 + 39 * MINUTE + i * 10 * MINUTE);
    }
    expect(await pages(monitor)).toEqual([]);
    const history = await monitor.with(T0 + 2 * HOUR, async (core) => core.events({ hostId: "alpha", since: 0 }));
    expect(history.map((event) => event.type)).toEqual(["held", "cleared"]);
  });

  it("/maintenance from the phone holds a host that goes dark, and it pages when that window ends", async () => {
    const monitor = new MonitorHarness();
    await monitor.ping("alpha", pingAt(T0, 1));
    await say(monitor, "/maintenance alpha 2h", T0 + SECOND);
    await monitor.alarmsUntil(T0 + 2 * HOUR);
    expect(await pages(monitor)).toEqual([]);
    await monitor.alarmsUntil(T0 + 2 * HOUR + 2 * SECOND);
    expect(await pages(monitor)).toEqual([expect.stringContaining("<b>alpha</b> DARK: no ping for 2.0 h (dark after 75 s) (maintenance window ended 16:00 UTC)")]);
    const history = await monitor.with(T0 + 2 * HOUR + 2 * SECOND, async (core) => core.events({ hostId: "alpha", since: 0 }));
    expect(history.map((event) => [event.type, event.by])).toEqual([
      ["maintenance", "@ann"],
      ["held", null],
      ["alert", null],
    ]);
  });

  it("/maintenance off ends the window now, and a host still dark pages then", async () => {
    const monitor = new MonitorHarness();
    await monitor.ping("alpha", pingAt(T0, 1));
    await say(monitor, "/maintenance alpha 2h", T0 + SECOND);
    await monitor.alarmsUntil(T0 + 30 * MINUTE);
    expect(await pages(monitor)).toEqual([]);
    await say(monitor, "/maintenance alpha off", T0 + 30 * MINUTE);
    expect(monitor.armedAt).toBe(T0 + 30 * MINUTE);
    await monitor.alarmsUntil(T0 + 30 * MINUTE + 2 * SECOND);
    expect(await pages(monitor)).toEqual([expect.stringContaining("<b>alpha</b> DARK: no ping for 30 min (dark after 75 s) (maintenance window ended 14:30 UTC)")]);
    // The end that was planned pages nothing more.
    await monitor.alarmsUntil(T0 + 2 * HOUR + 2 * SECOND);
    expect((await pages(monitor)).filter((text) => text.includes("maintenance window ended"))).toHaveLength(1);
  });

  it("/maintenance off pages on the very alarm it arms, in an object that was not evicted in between", async () => {
    // One core throughout (the Durable Object as deployed): its alarm judges only hosts
    // that are due, so the hand-ended window must make the host due now.
    const monitor = new MonitorHarness();
    await monitor.ping("alpha", pingAt(T0, 1));
    await say(monitor, "/maintenance alpha 2h", T0 + SECOND);
    await monitor.alarmsUntil(T0 + 10 * MINUTE);
    const at = T0 + 30 * MINUTE;
    await monitor.with(at, async (core) => {
      await core.run("alarm");
      await handleUpdate(parsedUpdate(makeUpdate({ text: "/maintenance alpha off" })), monitor.config, core, at);
      await core.run("alarm");
    });
    expect(await pages(monitor)).toEqual([expect.stringContaining("(maintenance window ended 14:30 UTC)")]);
  });

  it("a held page is not published: readers see what paged, and the free plan's KV writes are kept", async () => {
    const monitor = new MonitorHarness({ plan: "free", hosts: [{ id: "alpha", maintenance: [WINDOW] }] });
    await monitor.ping("alpha", pingAt(T0, 1));
    await monitor.run(T0 + SECOND, "alarm");
    const publishedAt = async (now: number) => monitor.with(now, async (core) => core.monitorMeta().lastPublishedAt);
    expect(await publishedAt(T0 + SECOND)).toBe(T0 + SECOND);
    await monitor.alarmsUntil(T0 + DARK_ALARM);
    expect((await monitor.host("alpha", T0 + 2 * MINUTE)).judgement.conditions.dark?.heldAt).toBe(T0 + DARK_ALARM);
    expect(await publishedAt(T0 + 2 * MINUTE)).toBe(T0 + SECOND);
  });

  it("failing still pages inside a window", async () => {
    const monitor = new MonitorHarness({ hosts: [{ id: "alpha", maintenance: [WINDOW] }] });
    await monitor.ping("alpha", pingAt(T0 + 2 * MINUTE, 1, { files: filesWith(T0 + 2 * MINUTE - 5 * SECOND, "halted") }));
    await monitor.ping("alpha", pingAt(T0 + 2 * MINUTE + 30 * SECOND, 2, { files: filesWith(T0 + 2 * MINUTE + 25 * SECOND, "halted") }));
    await monitor.alarmsUntil(T0 + 3 * MINUTE);
    expect(await pages(monitor)).toEqual([expect.stringContaining("<b>alpha</b> FAILING: status &quot;halted&quot;")]);
  });
});
