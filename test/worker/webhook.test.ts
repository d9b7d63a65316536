// The Telegram webhook as the phone and Telegram see it. The door (secret header, JSON,
// the chat allowlist, strangers answered without touching the monitor) through the real
// app and the real monitor binding; every command and page button, update dedupe, and
// what acks and mutes do to later pages, on the monitor (MonitorHarness) at times the
// test sets. Assertions are the replies, the pages the stand-in received and the state
// the monitor stored.
import { describe, expect, it } from "vitest";
import { MAX_MESSAGE_CHARS } from "../../src/phone/messages.ts";
import { createApp } from "../../src/edge/routes.ts";
import { failTelegramNext, filesWith, MINUTE, T0, type TestConfigInput, type TestEnv, testEnv } from "./helpers.ts";
import { MonitorHarness } from "./monitor-harness.ts";
import {
  buttonData,
  concurrently,
  harnessAgent,
  keyboardOf,
  linesOf,
  makeCallback,
  makeUpdate,
  monitorHandled,
  monitorRows,
  OWNER_CHAT,
  pages,
  parsedUpdate,
  postUpdate,
  press,
  say,
  telegramCalls,
  textOf,
} from "./telegram-builders.ts";

const SECOND = 1000;
const HOUR = 60 * MINUTE;

/** The global test config's hosts (test-config.ts), which the real monitor binding watches. */
const TWO_HOSTS: TestConfigInput = { hosts: [{ id: "alpha" }, { id: "beta", allowRemotePause: true }] };

/** An edge env for the door: the global monitor binding, replies to this test's bot token at the stand-in. */
function doorEnv(config: TestConfigInput = TWO_HOSTS): TestEnv {
  return testEnv(config);
}

function twoHosts(): MonitorHarness {
  return new MonitorHarness(TWO_HOSTS);
}

/** Sends a command from the owner's chat and returns the one reply it got. */
async function command(monitor: MonitorHarness, text: string, now = T0): Promise<string> {
  const calls = await say(monitor, text, now);
  expect(calls.map((call) => call.method), text).toEqual(["sendMessage"]);
  expect(calls[0]?.payload.chat_id).toBe(OWNER_CHAT);
  return textOf(calls[0]);
}

describe("the webhook's door", () => {
  it("answers 401 without the secret header: nothing sent, the monitor never hears of it", async () => {
    const environment = doorEnv();
    const before = await monitorRows(environment);
    const update = makeUpdate({ text: "/mute alpha 2h" });
    const response = await postUpdate(environment, update, { secret: null });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ ok: false, error: expect.stringContaining("X-Telegram-Bot-Api-Secret-Token") });
    expect(await monitorHandled(environment, Number(update.update_id))).toBe(false);
    expect(await monitorRows(environment)).toEqual(before);
    expect(await telegramCalls(environment)).toEqual([]);
  });

  it("answers 401 to a wrong secret, and to an empty one, and the monitor never hears of them", async () => {
    const environment = doorEnv();
    const before = await monitorRows(environment);
    for (const secret of [`${environment.TELEGRAM_WEBHOOK_SECRET}x`, "", "secret"]) {
      const update = makeUpdate({ text: "/mute alpha 2h" });
      const response = await postUpdate(environment, update, { secret });
      expect(response.status).toBe(401);
      expect(await monitorHandled(environment, Number(update.update_id))).toBe(false);
    }
    expect(await monitorRows(environment)).toEqual(before);
    expect(await telegramCalls(environment)).toEqual([]);
  });

  it("answers 400 to a body that is not JSON, and 200 (ignored) to JSON that is not an update", async () => {
    const environment = doorEnv();
    const before = await monitorRows(environment);
    const broken = await postUpdate(environment, null, { rawBody: '{"update_id": 5, "message": {' });
    expect(broken.status).toBe(400);
    expect(await broken.json()).toMatchObject({ ok: false, error: "update is not JSON" });

    for (const body of ['{"hello": "world"}', "[1, 2]", '{"update_id": "seven"}', "42"]) {
      const ignored = await postUpdate(environment, null, { rawBody: body });
      expect(ignored.status).toBe(200);
      expect(await ignored.json()).toMatchObject({ ok: true, ignored: expect.any(String) });
    }
    expect(await monitorRows(environment)).toEqual(before);
    expect(await telegramCalls(environment)).toEqual([]);
  });

  it("does not obey a chat that is not on the allowlist: no reply, the monitor never hears of it", async () => {
    const environment = doorEnv();
    const before = await monitorRows(environment);
    for (const text of ["/mute alpha 2h", "/pause beta broker down", "/ack alpha", "/status"]) {
      const update = makeUpdate({ text, chatId: 999 });
      const response = await postUpdate(environment, update);
      expect(response.status).toBe(200);
      expect(await monitorHandled(environment, Number(update.update_id)), text).toBe(false);
    }
    expect(await monitorRows(environment)).toEqual(before);
    expect(await telegramCalls(environment)).toEqual([]);
  });

  it("does not obey a stranger's button press either, but stops the phone spinning", async () => {
    const environment = doorEnv();
    const before = await monitorRows(environment);
    const update = makeCallback({ data: "mute|alpha", chatId: 999 });
    const response = await postUpdate(environment, update);
    expect(response.status).toBe(200);
    expect(await monitorHandled(environment, Number(update.update_id))).toBe(false);
    expect(await monitorRows(environment)).toEqual(before);
    expect(await telegramCalls(environment)).toEqual([{ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "Not allowed." }) }]);
  });

  it("hands the owner's update to the monitor and makes the calls it returns", async () => {
    const environment = doorEnv();
    const update = makeUpdate({ text: "/help" });
    const response = await postUpdate(environment, update);
    expect(response.status).toBe(200);
    expect(await monitorHandled(environment, Number(update.update_id))).toBe(true);
    const calls = await telegramCalls(environment);
    expect(calls).toEqual([
      { method: "sendMessage", payload: expect.objectContaining({ chat_id: OWNER_CHAT, parse_mode: "HTML", text: expect.stringContaining("There is no remote resume") }) },
    ]);
  });

  it("obeys a chat listed in allowedChatIds, answering in that chat", async () => {
    const environment = doorEnv({ ...TWO_HOSTS, telegram: { allowedChatIds: ["-1001234"] } });
    const update = makeUpdate({ text: "/help", chatId: -1001234 });
    expect((await postUpdate(environment, update)).status).toBe(200);
    expect(await monitorHandled(environment, Number(update.update_id))).toBe(true);
    const calls = await telegramCalls(environment);
    expect(calls.map((call) => [call.method, call.payload.chat_id])).toEqual([["sendMessage", -1001234]]);
  });

  it("answers a redelivered update once", async () => {
    const environment = doorEnv();
    const update = makeUpdate({ text: "/help" });
    for (let delivery = 0; delivery < 3; delivery++) expect((await postUpdate(environment, update)).status).toBe(200);
    expect((await telegramCalls(environment)).map((call) => call.method)).toEqual(["sendMessage"]);
  });
});

describe("one update, once", () => {
  it("a redelivered update_id is handled once: the mute is not moved on, and nothing is answered twice", async () => {
    const monitor = twoHosts();
    const update = parsedUpdate(makeUpdate({ text: "/mute alpha 1h", updateId: 777 }));
    const first = await monitor.update(update, T0);
    expect(first.map(textOf)).toEqual([expect.stringContaining("muted until 15:00 UTC")]);
    const again = await monitor.update(update, T0 + 5 * MINUTE);
    expect(again).toEqual([]);
    expect((await monitor.host("alpha", T0 + 5 * MINUTE)).operator.mutedUntil).toBe(T0 + HOUR);
    // Another update with the same text is a new request, and is obeyed.
    await say(monitor, "/mute alpha 1h", T0 + 6 * MINUTE);
    expect((await monitor.host("alpha", T0 + 6 * MINUTE)).operator.mutedUntil).toBe(T0 + 66 * MINUTE);
  });

  it("a redelivered button press is handled once", async () => {
    const monitor = twoHosts();
    const press1 = parsedUpdate(makeCallback({ data: "mute|beta", updateId: 778 }));
    expect((await monitor.update(press1, T0)).map(textOf)).toContain("beta muted for 1 h");
    expect(await monitor.update(press1, T0 + 10 * MINUTE)).toEqual([]);
    expect((await monitor.host("beta", T0 + 10 * MINUTE)).operator.mutedUntil).toBe(T0 + HOUR);
  });
});

describe("commands", () => {
  it("/help lists the commands and says there is no remote resume", async () => {
    const monitor = twoHosts();
    const help = await command(monitor, "/help");
    for (const name of ["/status", "/ack", "/mute", "/unmute", "/maintenance", "/pause"]) expect(help).toContain(name);
    expect(help).toContain("There is no remote resume");
    expect(await command(monitor, "/help@witness_bot")).toBe(help);
  });

  it("/status shows every host, or one, and names the hosts when asked for an unknown one", async () => {
    const monitor = twoHosts();
    await harnessAgent(monitor, "alpha")(T0);
    await monitor.run(T0 + 10 * SECOND, "cron");

    const all = await command(monitor, "/status", T0 + 20 * SECOND);
    expect(all).toContain("🟢 <b>alpha</b>: ok");
    expect(all).toContain('last ping 20 s ago; heartbeat "ok", 50 s old');
    expect(all).toContain("circuit missing (green); clock skew 0.0 s");
    expect(all).toContain("<b>beta</b>");
    expect(all).toContain("cron last ran 10 s ago");

    const one = await command(monitor, "/status alpha", T0 + 20 * SECOND);
    expect(one).toContain("<b>alpha</b>");
    expect(one).not.toContain("beta");

    expect(await command(monitor, "/status gamma", T0 + 20 * SECOND)).toBe('unknown host "gamma"; hosts: alpha, beta');
  });

  it("/status for a host that never pinged says it waits for its first ping and when it will page dark", async () => {
    const monitor = new MonitorHarness({ hosts: [{ id: "alpha" }, { id: "beta", intervalSeconds: 60 }] });
    await monitor.run(T0, "cron");
    await harnessAgent(monitor, "alpha")(T0 + 5 * SECOND);
    const status = await command(monitor, "/status beta", T0 + 20 * SECOND);
    // beta: darkAfter 2 × 60 s + 15 s after the monitor began listening at T0 (14:00:00).
    expect(status).toBe(
      "<b>witness status</b>\n⏳ <b>beta</b>: waiting for its first ping; pages DARK at 14:02 UTC if none arrives\ncron last ran 20 s ago",
    );
    // And it does page dark then, not before.
    await monitor.alarmsUntil(T0 + 2 * MINUTE + 14 * SECOND);
    expect((await monitor.messages()).filter((text) => text.includes("<b>beta</b> DARK"))).toEqual([]);
    await monitor.alarmsUntil(T0 + 3 * MINUTE);
    expect((await monitor.messages()).filter((text) => text.includes("<b>beta</b> DARK"))).toHaveLength(1);
  });

  it("/status with 50 hosts is split into messages Telegram accepts, each host whole in one of them", async () => {
    const hosts = Array.from({ length: 50 }, (_, index) => ({ id: `trading-host-${String(index).padStart(2, "0")}-with-a-long-name` }));
    const monitor = new MonitorHarness({ hosts });
    for (const host of hosts) {
      await harnessAgent(monitor, host.id)(T0, { files: filesWith(T0 - 30 * SECOND, "ok", { state: "ok", size: 2, mtime: T0, text: '{"paused": true, "reason": "a long reason written by the watchdog for the operator to read in full", "since": 1795389457.66}' }) });
    }
    const calls = await say(monitor, "/status", T0 + 20 * SECOND);
    expect(calls.length).toBeGreaterThan(1);
    expect(calls.every((call) => call.method === "sendMessage" && call.payload.chat_id === OWNER_CHAT)).toBe(true);
    const texts = calls.map(textOf);
    for (const text of texts) expect(text.length).toBeLessThanOrEqual(4096);
    expect(MAX_MESSAGE_CHARS).toBeLessThanOrEqual(4096);
    for (const host of hosts) {
      const holding = texts.filter((text) => text.includes(`<b>${host.id}</b>`));
      expect(holding, host.id).toHaveLength(1);
      // The host's block is not cut in two: its circuit line is in the same message.
      const block = holding[0]?.split(`<b>${host.id}</b>`)[1]?.split("<b>trading-host-")[0] ?? "";
      expect(block, host.id).toContain("circuit PAUSED: a long reason");
    }
    expect(texts.at(-1)).toContain("cron has not run yet");
  });

  it("/status shows a mute and an open condition", async () => {
    const monitor = twoHosts();
    const alpha = harnessAgent(monitor, "alpha");
    await alpha(T0, { files: filesWith(T0 - 30 * SECOND, "error") });
    await alpha(T0 + MINUTE, { files: filesWith(T0 + 30 * SECOND, "error") });
    await command(monitor, "/mute alpha 2h", T0 + 80 * SECOND);
    const status = await command(monitor, "/status alpha", T0 + 90 * SECOND);
    expect(status).toContain("🔴 <b>alpha</b>: failing");
    expect(status).toContain("muted until 16:01 UTC");
  });

  it("/ack says so when nothing is open, and gives a usage line without a host", async () => {
    const monitor = twoHosts();
    expect(await command(monitor, "/ack alpha")).toBe("Nothing to acknowledge on <b>alpha</b>.");
    expect(await command(monitor, "/ack")).toBe("usage: /ack <host>");
    expect(await command(monitor, "/ack gamma")).toBe('unknown host "gamma"; hosts: alpha, beta');
    expect((await monitor.host("alpha", T0)).operator.acked).toEqual([]);
  });

  it("/ack acknowledges an open, paged incident by who and when", async () => {
    const monitor = twoHosts();
    const alpha = harnessAgent(monitor, "alpha");
    await alpha(T0, { files: filesWith(T0 - 30 * SECOND, "error") });
    await alpha(T0 + MINUTE, { files: filesWith(T0 + 30 * SECOND, "error") });
    await monitor.alarmsUntil(T0 + MINUTE + 5 * SECOND);
    expect(linesOf(await monitor.messages())).toContainEqual(expect.stringContaining("<b>alpha</b> FAILING"));

    const reply = await command(monitor, "/ack alpha", T0 + 2 * MINUTE);
    expect(reply).toContain("Acknowledged failing on <b>alpha</b> (@ann)");
    expect(reply).toContain("the recovery will still be sent");
    expect((await monitor.host("alpha", T0 + 2 * MINUTE)).operator.acked).toEqual([
      { incidentId: expect.stringMatching(/^alpha:failing:/), by: "@ann", at: T0 + 2 * MINUTE },
    ]);
  });

  it("/mute takes a duration; a missing, bad, zero or too long one gets the usage line", async () => {
    const monitor = twoHosts();
    expect(await command(monitor, "/mute alpha 2h")).toBe("🔕 <b>alpha</b> muted until 16:00 UTC by @ann. The end of the mute will be announced.");
    expect((await monitor.host("alpha", T0)).operator).toMatchObject({ mutedUntil: T0 + 2 * HOUR, mutedBy: "@ann" });

    for (const bad of ["/mute beta", "/mute beta soon", "/mute beta 2x", "/mute beta 0", "/mute beta 0m", "/mute beta 8d", "/mute beta -5"]) {
      expect(await command(monitor, bad), bad).toMatch(/^usage: \/mute &lt;host&gt; &lt;duration&gt;/);
    }
    expect(await command(monitor, "/mute gamma 1h")).toBe('unknown host "gamma"; hosts: alpha, beta');
    expect(await command(monitor, "/mute")).toBe("usage: /mute <host> <duration, e.g. 1h>");
    expect((await monitor.host("beta", T0)).operator.mutedUntil).toBeNull();
  });

  it("/mute accepts minutes, hours, days and combinations", async () => {
    const monitor = twoHosts();
    for (const [text, ms] of [
      ["90", 90 * MINUTE],
      ["45m", 45 * MINUTE],
      ["1h30m", 90 * MINUTE],
      ["1d", 24 * HOUR],
      ["7d", 7 * 24 * HOUR],
    ] as const) {
      await command(monitor, `/mute alpha ${text}`);
      expect((await monitor.host("alpha", T0)).operator.mutedUntil, text).toBe(T0 + ms);
    }
  });

  it("/maintenance takes a duration like /mute (at most 7d) or off; a bad one gets the usage line", async () => {
    const monitor = twoHosts();
    expect(await command(monitor, "/maintenance alpha 2h")).toBe(
      "🛠 <b>alpha</b> in maintenance until 16:00 UTC (@ann): DARK and STALE are recorded, not paged. If it is still down when the window ends, it pages then. /maintenance alpha off ends it.",
    );
    expect((await monitor.host("alpha", T0)).operator.maintenance).toEqual([{ from: T0, until: T0 + 2 * HOUR, by: "@ann" }]);
    for (const bad of ["/maintenance beta", "/maintenance beta soon", "/maintenance beta 0", "/maintenance beta 8d", "/maintenance beta -5"]) {
      expect(await command(monitor, bad), bad).toMatch(/^usage: \/maintenance &lt;host&gt; &lt;duration&gt;, e\.g\. 30m, 2h, 1d \(at most 7d\), or \/maintenance &lt;host&gt; off$/);
    }
    expect(await command(monitor, "/maintenance gamma 1h")).toBe('unknown host "gamma"; hosts: alpha, beta');
    expect(await command(monitor, "/maintenance")).toBe("usage: /maintenance <host> <duration, e.g. 2h, or off>");
    expect((await monitor.host("beta", T0)).operator.maintenance).toEqual([]);
    // A longer one is dated; a second /maintenance replaces the window set from the phone.
    expect(await command(monitor, "/maintenance alpha 3d", T0 + MINUTE)).toContain("in maintenance until 2026-11-27 14:01 UTC");
    expect((await monitor.host("alpha", T0 + MINUTE)).operator.maintenance).toEqual([
      { from: T0, until: T0 + MINUTE, by: "@ann" },
      { from: T0 + MINUTE, until: T0 + MINUTE + 3 * 24 * HOUR, by: "@ann" },
    ]);
  });

  it("/maintenance off ends a phone window now, and says when there was none or the window is the config's", async () => {
    const monitor = new MonitorHarness({ hosts: [{ id: "alpha" }, { id: "beta", maintenance: [{ days: ["tue"], from: "13:00", to: "18:00", timezone: "UTC" }] }] });
    expect(await command(monitor, "/maintenance alpha off")).toBe("<b>alpha</b> is not in maintenance.");
    await command(monitor, "/maintenance alpha 2h");
    expect(await command(monitor, "/maintenance alpha off", T0 + 10 * MINUTE)).toBe("🛠 <b>alpha</b> out of maintenance (@ann): a DARK or STALE still there pages now.");
    expect((await monitor.host("alpha", T0 + 10 * MINUTE)).operator.maintenance).toEqual([{ from: T0, until: T0 + 10 * MINUTE, by: "@ann" }]);
    const history = await monitor.with(T0 + 10 * MINUTE, async (core) => core.events({ hostId: "alpha", since: 0 }));
    expect(history.map((event) => [event.type, event.by, event.detail])).toEqual([
      ["maintenance", "@ann", "until 2026-11-24T16:00Z"],
      ["maintenance_end", "@ann", "ended from the phone"],
    ]);
    expect(await command(monitor, "/maintenance beta off")).toBe(
      "<b>beta</b> is in a maintenance window from wrangler.toml until 18:00 UTC; /maintenance off ends only windows set from the phone.",
    );
  });

  it("/status shows a host in maintenance until when, and who set it", async () => {
    const monitor = new MonitorHarness({ hosts: [{ id: "alpha" }, { id: "beta", maintenance: [{ days: ["tue"], from: "13:00", to: "18:00", timezone: "UTC" }] }] });
    await harnessAgent(monitor, "alpha")(T0);
    await harnessAgent(monitor, "beta")(T0);
    await command(monitor, "/maintenance alpha 90m", T0 + SECOND);
    const status = await command(monitor, "/status", T0 + 20 * SECOND);
    expect(status).toContain("  🛠 maintenance until 15:30 UTC (set by @ann): DARK and STALE not paged");
    expect(status).toContain("  🛠 maintenance until 18:00 UTC (from wrangler.toml): DARK and STALE not paged");
    expect(await command(monitor, "/status alpha", T0 + 90 * MINUTE + SECOND)).not.toContain("maintenance");
  });

  it("/unmute ends a mute now, and says when there was none", async () => {
    const monitor = twoHosts();
    expect(await command(monitor, "/unmute alpha")).toBe("<b>alpha</b> is not muted.");
    await command(monitor, "/mute alpha 2h");
    expect(await command(monitor, "/unmute alpha", T0 + 10 * MINUTE)).toBe("🔔 <b>alpha</b> unmuted.");
    expect((await monitor.host("alpha", T0 + 10 * MINUTE)).operator.mutedUntil).toBe(T0 + 10 * MINUTE);
    expect(await command(monitor, "/unmute alpha", T0 + 11 * MINUTE)).toBe("<b>alpha</b> is not muted.");
    expect(await command(monitor, "/unmute")).toBe("usage: /unmute <host>");
  });

  it("/pause needs a reason, and explains how to allow remote pause on a host that does not", async () => {
    const monitor = twoHosts();
    expect(await command(monitor, "/pause beta")).toBe("usage: /pause &lt;host&gt; &lt;reason&gt;, e.g. /pause trader-1 broker API down");
    const refused = await command(monitor, "/pause alpha broker API down");
    expect(refused).toContain("Remote pause is off for <b>alpha</b>");
    expect(refused).toContain("allowRemotePause = true");
    expect(refused).toContain("--allow-remote-pause");
    expect((await monitor.host("alpha", T0)).command).toBeNull();
    expect((await monitor.host("beta", T0)).command).toBeNull();
  });

  it("/pause on an allowed host asks to confirm, and the command is not handed out before that", async () => {
    const monitor = twoHosts();
    const [prompt] = await say(monitor, "/pause beta broker API down", T0);
    expect(prompt?.method).toBe("sendMessage");
    expect(textOf(prompt)).toContain("Pause trading on <b>beta</b>?\nReason: broker API down");
    const stored = (await monitor.host("beta", T0)).command;
    expect(stored).toMatchObject({ command: { type: "pause", reason: "broker API down", requestedBy: "@ann" }, confirmedAt: null });
    const id = stored?.command.id ?? "";
    expect(buttonData(prompt)).toEqual([[`pausec|beta|${id}`, `pausex|beta|${id}`]]);
    expect(keyboardOf(prompt)?.inline_keyboard[0]?.map((button) => button.text)).toEqual(["⏸️ Confirm pause", "Cancel"]);

    const pinged = await harnessAgent(monitor, "beta")(T0 + 30 * SECOND);
    expect(pinged).toMatchObject({ status: 200, commands: [] });
  });

  it("answers an unknown command with a pointer to /help, and ignores messages without text", async () => {
    const monitor = twoHosts();
    expect(await command(monitor, "/resume beta")).toBe("unknown command /resume; /help lists what I answer");
    const sticker = makeUpdate({ text: "x" });
    const message = sticker.message as Record<string, unknown>;
    delete message.text;
    message.sticker = { file_id: "abc" };
    expect(await monitor.update(parsedUpdate(sticker), T0)).toEqual([]);
  });
});

describe("page buttons", () => {
  /**
   * Pages alpha and beta DARK in one message (both fall silent at once, so one alarm
   * judges both) and returns the page as the stand-in received it.
   */
  async function pageBoth(monitor: MonitorHarness) {
    const agents = { alpha: harnessAgent(monitor, "alpha"), beta: harnessAgent(monitor, "beta") };
    for (const agent of Object.values(agents)) await agent(T0);
    await monitor.alarmsUntil(T0 + 2 * MINUTE - SECOND);
    const page = (await pages(monitor)).find((call) => textOf(call).includes("2 problems"));
    expect(page, "the page of both hosts").toBeDefined();
    expect(buttonData(page)).toEqual([
      ["ack|alpha", "mute|alpha", "maint|alpha"],
      ["ack|beta", "mute|beta", "pause|beta", "maint|beta"],
    ]);
    const keyboard = keyboardOf(page);
    if (keyboard === undefined) throw new Error("the page has no buttons");
    return { keyboard, agents };
  }

  it("Acknowledge answers the press and edits the host's row to who acknowledged and when", async () => {
    const monitor = twoHosts();
    const { keyboard } = await pageBoth(monitor);
    const calls = await press(monitor, "ack|alpha", T0 + 3 * MINUTE, { messageId: 900, keyboard });
    expect(calls).toEqual([
      { method: "answerCallbackQuery", payload: expect.objectContaining({ text: "Acknowledged alpha" }) },
      {
        method: "editMessageReplyMarkup",
        payload: {
          chat_id: OWNER_CHAT,
          message_id: 900,
          reply_markup: {
            inline_keyboard: [[{ text: "✔️ alpha acked by @ann at 14:03 UTC", callback_data: "noop|alpha" }], keyboard.inline_keyboard[1]],
          },
        },
      },
    ]);
    expect((await monitor.host("alpha", T0 + 3 * MINUTE)).operator.acked).toEqual([
      { incidentId: expect.stringMatching(/^alpha:dark:/), by: "@ann", at: T0 + 3 * MINUTE },
    ]);
  });

  it("Acknowledge on a page whose incident is over says there is nothing to acknowledge", async () => {
    const monitor = twoHosts();
    const { keyboard, agents } = await pageBoth(monitor);
    await agents.alpha(T0 + 2 * MINUTE);
    await monitor.alarmsUntil(T0 + 2 * MINUTE + 10 * SECOND);
    const calls = await press(monitor, "ack|alpha", T0 + 3 * MINUTE, { keyboard });
    expect(calls[0]).toEqual({ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "Nothing to acknowledge on alpha." }) });
    expect(JSON.stringify(calls)).not.toContain("acked by");
  });

  it("Mute 1 h mutes the host, answers, and edits the row to who muted it until when", async () => {
    const monitor = twoHosts();
    const { keyboard } = await pageBoth(monitor);
    const calls = await press(monitor, "mute|beta", T0 + 5 * MINUTE, { messageId: 901, keyboard });
    expect(calls[0]).toEqual({ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "beta muted for 1 h" }) });
    expect(calls[1]?.method).toBe("editMessageReplyMarkup");
    expect(keyboardOf(calls[1])?.inline_keyboard).toEqual([
      keyboard.inline_keyboard[0],
      [{ text: "🔕 beta muted by @ann until 15:05 UTC", callback_data: "noop|beta" }],
    ]);
    expect((await monitor.host("beta", T0 + 5 * MINUTE)).operator).toMatchObject({ mutedUntil: T0 + 65 * MINUTE, mutedBy: "@ann" });
  });

  it("Maintenance 2 h puts the host in maintenance, answers, edits the row, records who; the page does not repeat", async () => {
    const monitor = twoHosts();
    const { keyboard } = await pageBoth(monitor);
    const calls = await press(monitor, "maint|alpha", T0 + 2 * MINUTE, { messageId: 904, keyboard });
    expect(calls[0]).toEqual({ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "alpha in maintenance for 2 h" }) });
    expect(keyboardOf(calls[1])?.inline_keyboard).toEqual([
      [{ text: "🛠 alpha in maintenance (@ann) until 16:02 UTC", callback_data: "noop|alpha" }],
      keyboard.inline_keyboard[1],
    ]);
    expect((await monitor.host("alpha", T0 + 2 * MINUTE)).operator.maintenance).toEqual([{ from: T0 + 2 * MINUTE, until: T0 + 2 * MINUTE + 2 * HOUR, by: "@ann" }]);
    const history = await monitor.with(T0 + 2 * MINUTE, async (core) => core.events({ hostId: "alpha", since: 0 }));
    expect(history.filter((event) => event.type === "maintenance")).toEqual([
      { at: T0 + 2 * MINUTE, hostId: "alpha", type: "maintenance", kind: null, detail: "until 2026-11-24T16:02Z", by: "@ann" },
    ]);
    // The unacknowledged DARK would repeat 30 min after its page; in maintenance it does not (beta's does).
    await monitor.alarmsUntil(T0 + 40 * MINUTE);
    const repeats = (await pages(monitor)).map(textOf).filter((text) => text.includes("still DARK"));
    expect(repeats).toEqual([expect.not.stringContaining("alpha")]);
    expect(repeats[0]).toContain("<b>beta</b> still DARK");
  });

  it("Pause trading asks to confirm; Confirm queues it for the agent; a later Cancel cannot undo it", async () => {
    const monitor = twoHosts();
    const { keyboard, agents } = await pageBoth(monitor);
    const [answer, prompt] = await press(monitor, "pause|beta", T0 + 2 * MINUTE, { keyboard });
    expect(answer).toEqual({ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "Confirm below" }) });
    expect(prompt?.method).toBe("sendMessage");
    expect(textOf(prompt)).toContain("Pause trading on <b>beta</b>?\nReason: from the phone by @ann");
    const [[confirm = "", cancel = ""] = []] = buttonData(prompt);
    expect(confirm).toMatch(/^pausec\|beta\|\w+$/);
    const commandId = confirm.split("|")[2];

    expect(await agents.beta(T0 + 2 * MINUTE + 5 * SECOND, { files: filesWith(T0 + 2 * MINUTE, "error") })).toMatchObject({ commands: [] });

    const confirmed = await press(monitor, confirm, T0 + 3 * MINUTE, { messageId: 902 });
    expect(confirmed[0]).toEqual({ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "Pause queued" }) });
    expect(confirmed[1]).toEqual({
      method: "editMessageText",
      payload: expect.objectContaining({
        chat_id: OWNER_CHAT,
        message_id: 902,
        text: `⏸️ Pause for <b>beta</b> queued by @ann at 14:03 UTC (command ${commandId}); waiting for the host to apply it.`,
      }),
    });
    expect(await agents.beta(T0 + 3 * MINUTE + 5 * SECOND, { files: filesWith(T0 + 3 * MINUTE, "error") })).toMatchObject({
      commands: [{ id: commandId, type: "pause", reason: "from the phone by @ann", requestedBy: "@ann" }],
    });

    // Cancel on the same prompt, after Confirm, must not claim what it cannot do.
    const late = await press(monitor, cancel, T0 + 4 * MINUTE, { messageId: 902 });
    expect(textOf(late[0])).toMatch(/already confirmed/i);
    expect(JSON.stringify(late)).not.toContain("cancelled");
    expect((await monitor.host("beta", T0 + 4 * MINUTE)).command).toMatchObject({ command: { id: commandId }, confirmedAt: T0 + 3 * MINUTE });
  });

  it("Cancel before Confirm removes the request, and a later Confirm says it expired", async () => {
    const monitor = twoHosts();
    const [prompt] = await say(monitor, "/pause beta maintenance", T0);
    const [[confirm = "", cancel = ""] = []] = buttonData(prompt);

    const cancelled = await press(monitor, cancel, T0 + MINUTE, { messageId: 903 });
    expect(cancelled[0]).toEqual({ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "Cancelled" }) });
    expect(cancelled[1]).toEqual({ method: "editMessageText", payload: expect.objectContaining({ message_id: 903, text: "Pause for <b>beta</b> cancelled by @ann." }) });
    expect((await monitor.host("beta", T0 + MINUTE)).command).toBeNull();

    const expired = await press(monitor, confirm, T0 + 2 * MINUTE, { messageId: 903 });
    expect(textOf(expired[0])).toBe("This pause request expired; send /pause again.");
    expect((await monitor.host("beta", T0 + 2 * MINUTE)).command).toBeNull();
  });

  it("Confirm after the request's ten minutes says it expired, and nothing is handed out", async () => {
    const monitor = twoHosts();
    const [prompt] = await say(monitor, "/pause beta maintenance", T0);
    const [[confirm = ""] = []] = buttonData(prompt);
    const calls = await press(monitor, confirm, T0 + 10 * MINUTE, { messageId: 904 });
    expect(calls[0]).toEqual({ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "This pause request expired; send /pause again." }) });
    expect(calls[1]).toEqual({ method: "editMessageText", payload: expect.objectContaining({ message_id: 904, text: "⏸️ Pause request for <b>beta</b> expired." }) });
    expect(await harnessAgent(monitor, "beta")(T0 + 10 * MINUTE + 5 * SECOND)).toMatchObject({ commands: [] });
  });

  it("a button for an unknown host is answered, and changes nothing", async () => {
    const monitor = twoHosts();
    expect(await press(monitor, "mute|gamma", T0)).toEqual([{ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "Unknown host." }) }]);
    for (const hostId of ["alpha", "beta"]) expect((await monitor.host(hostId, T0)).operator.mutedUntil).toBeNull();
  });
});

describe("acks and mutes arriving back to back", () => {
  /** alpha pages FAILING; returns its agent. */
  async function failingAlpha(monitor: MonitorHarness) {
    const alpha = harnessAgent(monitor, "alpha");
    await alpha(T0, { files: filesWith(T0 - 30 * SECOND, "error") });
    await alpha(T0 + MINUTE, { files: filesWith(T0 + 30 * SECOND, "error") });
    await monitor.alarmsUntil(T0 + MINUTE + 5 * SECOND);
    return alpha;
  }
  const BOB = { id: 99, is_bot: false, first_name: "Bob", username: "bob" };

  it("an ack and a mute of the same host handled at once both take effect", async () => {
    const monitor = twoHosts();
    await failingAlpha(monitor);
    const at = T0 + 2 * MINUTE;
    const [ack, mute] = await concurrently(monitor, [makeCallback({ data: "ack|alpha" }), makeUpdate({ text: "/mute alpha 2h", from: BOB })], at);
    expect(ack?.map(textOf)).toContain("Acknowledged alpha");
    expect(mute?.map(textOf)).toEqual([expect.stringContaining("muted until 16:02 UTC by @bob")]);
    const operator = (await monitor.host("alpha", at)).operator;
    expect(operator.acked).toEqual([{ incidentId: expect.stringMatching(/^alpha:failing:/), by: "@ann", at }]);
    expect(operator).toMatchObject({ mutedUntil: at + 2 * HOUR, mutedBy: "@bob" });
  });

  it("a mute and then an ack, one request after the other in the same millisecond, both take effect", async () => {
    const monitor = twoHosts();
    await failingAlpha(monitor);
    const at = T0 + 2 * MINUTE;
    await press(monitor, "mute|alpha", at);
    await say(monitor, "/ack alpha", at, { from: BOB });
    const operator = (await monitor.host("alpha", at)).operator;
    expect(operator.acked).toEqual([{ incidentId: expect.stringMatching(/^alpha:failing:/), by: "@bob", at }]);
    expect(operator).toMatchObject({ mutedUntil: at + HOUR, mutedBy: "@ann" });
  });

  it("two acks of the same host at once: the incident is acknowledged once, and both are told so", async () => {
    const monitor = twoHosts();
    await failingAlpha(monitor);
    const at = T0 + 2 * MINUTE;
    const replies = await concurrently(monitor, [makeUpdate({ text: "/ack alpha" }), makeUpdate({ text: "/ack alpha", from: BOB })], at);
    expect(replies.map((calls) => calls.map(textOf))).toEqual([
      [expect.stringContaining("Acknowledged failing on <b>alpha</b> (@ann)")],
      [expect.stringContaining("Acknowledged failing on <b>alpha</b> (@bob)")],
    ]);
    expect((await monitor.host("alpha", at)).operator.acked).toEqual([{ incidentId: expect.stringMatching(/^alpha:failing:/), by: "@ann", at }]);
  });

  it("acks of two hosts on one page, at once, both take effect", async () => {
    const monitor = twoHosts();
    const agents = { alpha: harnessAgent(monitor, "alpha"), beta: harnessAgent(monitor, "beta") };
    for (const at of [T0, T0 + MINUTE]) for (const agent of Object.values(agents)) await agent(at, { files: filesWith(at - 30 * SECOND, "error") });
    await monitor.alarmsUntil(T0 + MINUTE + 5 * SECOND);
    const at = T0 + 2 * MINUTE;
    await concurrently(monitor, [makeCallback({ data: "ack|alpha" }), makeCallback({ data: "ack|beta", from: BOB })], at);
    expect((await monitor.host("alpha", at)).operator.acked).toHaveLength(1);
    expect((await monitor.host("beta", at)).operator.acked).toEqual([{ incidentId: expect.stringMatching(/^beta:failing:/), by: "@bob", at }]);
  });
});

// An hour and more of minutes, each a ping and the alarms due by then.
describe("acknowledged and muted pages, on the monitor's alarm", { timeout: 60_000 }, () => {
  /** Each host pings every minute (status per host and minute); the alarms due run 10 s later. */
  async function runMinutes(
    monitor: MonitorHarness,
    minutes: { from: number; to: number },
    status: (hostId: string, minute: number) => string,
    agents: Record<string, ReturnType<typeof harnessAgent>>,
  ): Promise<void> {
    for (let minute = minutes.from; minute <= minutes.to; minute++) {
      const at = T0 + minute * MINUTE;
      for (const [hostId, agent] of Object.entries(agents)) await agent(at, { files: filesWith(at - 30 * SECOND, status(hostId, minute)) });
      await monitor.alarmsUntil(at + 10 * SECOND);
    }
  }

  function slowHosts(): MonitorHarness {
    return new MonitorHarness({ hosts: [{ id: "alpha", intervalSeconds: 60 }, { id: "beta", allowRemotePause: true, intervalSeconds: 60 }] });
  }

  it("an acknowledged incident stops repeating, and its recovery still arrives", async () => {
    const monitor = slowHosts();
    const agents = { alpha: harnessAgent(monitor, "alpha"), beta: harnessAgent(monitor, "beta") };
    const failingUntil = 45;
    const status = (_host: string, minute: number) => (minute < failingUntil ? "error" : "ok");
    await runMinutes(monitor, { from: 0, to: 2 }, status, agents);
    await command(monitor, "/ack alpha", T0 + 2 * MINUTE + 30 * SECOND);
    await runMinutes(monitor, { from: 3, to: failingUntil + 1 }, status, agents);

    const lines = linesOf(await monitor.messages());
    // beta, not acknowledged, repeats every 30 minutes; alpha does not.
    expect(lines.filter((line) => line.includes("still FAILING"))).toEqual([expect.stringContaining("<b>beta</b> still FAILING")]);
    // Recovered on the second clean ping in a row (minute 46), as the page took two bad ones.
    expect(lines.filter((line) => line.includes("FAILING over"))).toEqual([
      expect.stringContaining("<b>alpha</b> FAILING over after 46 min"),
      expect.stringContaining("<b>beta</b> FAILING over after 46 min"),
    ]);
  });

  it("a mute swallows the host's pages (only that host's), and its end is announced once with what is open", async () => {
    const monitor = slowHosts();
    const agents = { alpha: harnessAgent(monitor, "alpha"), beta: harnessAgent(monitor, "beta") };
    await command(monitor, "/mute alpha 1h", T0 - 30 * SECOND);
    await runMinutes(monitor, { from: 0, to: 80 }, () => "error", agents);

    const messages = await monitor.messages();
    expect(messages.filter((text) => text.includes("no longer muted"))).toEqual([
      expect.stringContaining("🔔 <b>alpha</b> is no longer muted (open: failing)."),
    ]);
    const muteEndIndex = messages.findIndex((text) => text.includes("no longer muted"));
    const alphaLinesBefore = linesOf(messages.slice(0, muteEndIndex)).filter((line) => line.includes("<b>alpha</b>"));
    expect(alphaLinesBefore.filter((line) => /FAILING/.test(line))).toEqual([]);
    expect(messages.some((text) => text.includes("<b>beta</b> FAILING"))).toBe(true);
  });

  it("the end of a mute is said at the minute it ends, with what recovered while muted, even with no ping then", async () => {
    const monitor = slowHosts();
    const alpha = harnessAgent(monitor, "alpha");
    await alpha(T0, { files: filesWith(T0 - 30 * SECOND, "error") });
    await alpha(T0 + MINUTE, { files: filesWith(T0 + 30 * SECOND, "error") });
    await monitor.alarmsUntil(T0 + MINUTE + 5 * SECOND);
    expect(linesOf(await monitor.messages())).toContainEqual(expect.stringContaining("<b>alpha</b> FAILING"));
    await command(monitor, "/mute alpha 30m", T0 + 2 * MINUTE);
    // It recovers while muted: the recovery is swallowed with the rest.
    for (let minute = 3; minute <= 31; minute++) await alpha(T0 + minute * MINUTE, { files: filesWith(T0 + minute * MINUTE - 30 * SECOND, "ok") });
    await monitor.alarmsUntil(T0 + 31 * MINUTE + 30 * SECOND);
    const before = (await monitor.messages()).length;
    expect(linesOf(await monitor.messages()).filter((line) => line.includes("FAILING over"))).toEqual([]);

    // The mute ends at 14:32; the alarm says so then (the next ping is not before 14:33).
    const fired = await monitor.alarmsUntil(T0 + 32 * MINUTE + 5 * SECOND);
    expect(fired.some((at) => at >= T0 + 32 * MINUTE)).toBe(true);
    expect((await monitor.messages()).slice(before)).toEqual([
      expect.stringContaining("🔔 <b>alpha</b> is no longer muted (all clear; recovered while muted: failing)."),
    ]);
  });

  it("the end of a mute names what is still open and what opened while muted", async () => {
    const monitor = slowHosts();
    const alpha = harnessAgent(monitor, "alpha");
    const tripped = { state: "ok" as const, size: 2, mtime: T0, text: '{"paused": true, "reason": "drawdown", "since": 1795389457.66}' };
    await alpha(T0, { files: filesWith(T0 - 30 * SECOND, "error") });
    await alpha(T0 + MINUTE, { files: filesWith(T0 + 30 * SECOND, "error") });
    await monitor.alarmsUntil(T0 + MINUTE + 5 * SECOND);
    await command(monitor, "/mute alpha 30m", T0 + 2 * MINUTE);
    for (let minute = 3; minute <= 33; minute++) {
      await alpha(T0 + minute * MINUTE, { files: filesWith(T0 + minute * MINUTE - 30 * SECOND, "error", tripped) });
      await monitor.alarmsUntil(T0 + minute * MINUTE + 10 * SECOND);
    }
    const notices = (await monitor.messages()).filter((text) => text.includes("no longer muted"));
    expect(notices).toEqual([expect.stringContaining("🔔 <b>alpha</b> is no longer muted (open: failing, tripped; new while muted: tripped).")]);
  });

  it("/unmute is announced by the monitor, once", async () => {
    const monitor = slowHosts();
    const agents = { alpha: harnessAgent(monitor, "alpha") };
    await command(monitor, "/mute alpha 2h", T0 - 30 * SECOND);
    await runMinutes(monitor, { from: 0, to: 3 }, () => "ok", agents);
    await command(monitor, "/unmute alpha", T0 + 3 * MINUTE + 30 * SECOND);
    await runMinutes(monitor, { from: 4, to: 8 }, () => "ok", agents);
    const unmuted = (await monitor.messages()).filter((text) => text.includes("no longer muted"));
    expect(unmuted).toEqual([expect.stringContaining("🔔 <b>alpha</b> is no longer muted (all clear).")]);
  });
});

describe("POST /v1/telegram/test", () => {
  async function postTest(environment: TestEnv, authorization?: string): Promise<Response> {
    const app = createApp({ now: () => T0 });
    return app.fetch(
      new Request("https://witness.test/v1/telegram/test", { method: "POST", headers: authorization === undefined ? {} : { authorization } }),
      environment,
    );
  }

  it("refuses without the status token", async () => {
    const environment = doorEnv();
    expect((await postTest(environment)).status).toBe(401);
    expect((await postTest(environment, "Bearer wrong")).status).toBe(401);
    expect(await telegramCalls(environment)).toEqual([]);
  });

  it("sends the test message to the configured chat", async () => {
    const environment = doorEnv();
    const response = await postTest(environment, `Bearer ${environment.STATUS_TOKEN}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, sentTo: "4242" });
    expect(await telegramCalls(environment)).toEqual([
      {
        method: "sendMessage",
        payload: expect.objectContaining({ chat_id: "4242", text: expect.stringContaining("test message: the Worker reaches this chat. Watching 2 host(s)") }),
      },
    ]);
  });

  it("answers 502 naming the bot token and chat id when Telegram refuses", async () => {
    const environment = doorEnv();
    await failTelegramNext(environment, [{ status: 403, description: "Forbidden: bot was blocked by the user" }]);
    const response = await postTest(environment, `Bearer ${environment.STATUS_TOKEN}`);
    expect(response.status).toBe(502);
    const body = (await response.json()) as { ok: boolean; error: string };
    expect(body.ok).toBe(false);
    expect(body.error).toContain("403 Forbidden: bot was blocked by the user");
    expect(body.error).toContain("TELEGRAM_BOT_TOKEN");
    expect(body.error).toContain("telegram.chatId");
  });
});
