// The Telegram webhook as the phone and Telegram see it: the secret header, the chat
// allowlist, update dedupe, every command and page button, what acks and mutes do to
// later pages, and the test-message route. Assertions are the replies the Bot API
// stand-in received and the KV keys that were (or were not) written.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/routes.ts";
import { filesWith, kvContents, MINUTE, sentMessages, T0, type TestConfigInput, type TestEnv, testEnv, tick, failTelegramNext } from "./helpers.ts";
import {
  agentFor,
  buttonData,
  callWatcher,
  isolatedKv,
  keyboardOf,
  makeCallback,
  makeUpdate,
  OWNER_CHAT,
  postUpdate,
  telegramCalls,
} from "./telegram-builders.ts";

const SECOND = 1000;
const HOUR = 60 * MINUTE;

const TWO_HOSTS: TestConfigInput = { hosts: [{ id: "alpha" }, { id: "beta", allowRemotePause: true }] };

function freshEnv(config: TestConfigInput = TWO_HOSTS): TestEnv {
  return testEnv(config, { kv: isolatedKv(env.WITNESS_KV) });
}

/** Sends a command from the owner's chat and returns the one reply it got. */
async function command(environment: TestEnv, text: string, now = T0): Promise<string> {
  const watch = callWatcher(environment);
  await watch();
  const response = await postUpdate(environment, makeUpdate({ text }), { now });
  expect(response.status).toBe(200);
  const calls = await watch();
  expect(calls.map((call) => call.method)).toEqual(["sendMessage"]);
  expect(calls[0]?.payload.chat_id).toBe(OWNER_CHAT);
  return String(calls[0]?.payload.text);
}

async function keysOf(environment: TestEnv): Promise<string[]> {
  return Object.keys(await kvContents(environment.WITNESS_KV)).sort();
}

async function operatorState(environment: TestEnv, hostId: string): Promise<{ acked: Array<{ incidentId: string; by: string; at: number }>; mutedUntil: number | null }> {
  const text = await environment.WITNESS_KV.get(`op:${hostId}`);
  if (text === null) throw new Error(`no op:${hostId} key`);
  return JSON.parse(text) as { acked: Array<{ incidentId: string; by: string; at: number }>; mutedUntil: number | null };
}

/** Both hosts ping each minute (status per host and minute) and the cron ticks 10 s later. */
async function runMinutes(
  environment: TestEnv,
  minutes: { from: number; to: number },
  status: (hostId: string, minute: number) => string,
  agents: Record<string, (at: number, overrides?: Parameters<ReturnType<typeof agentFor>>[1]) => Promise<Response>>,
): Promise<void> {
  for (let minute = minutes.from; minute <= minutes.to; minute++) {
    const at = T0 + minute * MINUTE;
    for (const [hostId, agent] of Object.entries(agents)) {
      const response = await agent(at, { files: filesWith(at - 30 * SECOND, status(hostId, minute)) });
      expect(response.status).toBe(200);
    }
    await tick(environment, at + 10 * SECOND);
  }
}

describe("the webhook's door", () => {
  it("answers 401 without the secret header and writes nothing", async () => {
    const environment = freshEnv();
    await environment.WITNESS_KV.put("op:alpha", JSON.stringify({ acked: [], mutedUntil: null }));
    const before = await kvContents(environment.WITNESS_KV);
    const response = await postUpdate(environment, makeUpdate({ text: "/mute alpha 2h" }), { now: T0, secret: null });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ ok: false, error: expect.stringContaining("X-Telegram-Bot-Api-Secret-Token") });
    expect(await kvContents(environment.WITNESS_KV)).toEqual(before);
    expect(await telegramCalls(environment)).toEqual([]);
  });

  it("answers 401 to a wrong secret, and to an empty one, and writes nothing", async () => {
    const environment = freshEnv();
    for (const secret of [`${environment.TELEGRAM_WEBHOOK_SECRET}x`, "", "secret"]) {
      const response = await postUpdate(environment, makeUpdate({ text: "/mute alpha 2h" }), { now: T0, secret });
      expect(response.status).toBe(401);
    }
    expect(await kvContents(environment.WITNESS_KV)).toEqual({});
    expect(await telegramCalls(environment)).toEqual([]);
  });

  it("answers 400 to a body that is not JSON, and 200 (ignored) to JSON that is not an update", async () => {
    const environment = freshEnv();
    const broken = await postUpdate(environment, null, { now: T0, rawBody: '{"update_id": 5, "message": {' });
    expect(broken.status).toBe(400);
    expect(await broken.json()).toMatchObject({ ok: false, error: "update is not JSON" });

    for (const body of ['{"hello": "world"}', "[1, 2]", '{"update_id": "seven"}', "42"]) {
      const ignored = await postUpdate(environment, null, { now: T0, rawBody: body });
      expect(ignored.status).toBe(200);
      expect(await ignored.json()).toMatchObject({ ok: true, ignored: expect.any(String) });
    }
    expect(await kvContents(environment.WITNESS_KV)).toEqual({});
    expect(await telegramCalls(environment)).toEqual([]);
  });

  it("does not obey a chat that is not on the allowlist: no key written, no reply", async () => {
    const environment = freshEnv();
    for (const text of ["/mute alpha 2h", "/pause beta broker down", "/ack alpha", "/status"]) {
      const response = await postUpdate(environment, makeUpdate({ text, chatId: 999 }), { now: T0 });
      expect(response.status).toBe(200);
    }
    expect(await kvContents(environment.WITNESS_KV)).toEqual({});
    expect(await telegramCalls(environment)).toEqual([]);
  });

  it("does not obey a stranger's button press either, but stops the phone spinning", async () => {
    const environment = freshEnv();
    const response = await postUpdate(environment, makeCallback({ data: "mute|alpha", chatId: 999 }), { now: T0 });
    expect(response.status).toBe(200);
    expect(await kvContents(environment.WITNESS_KV)).toEqual({});
    expect(await telegramCalls(environment)).toEqual([
      { method: "answerCallbackQuery", payload: expect.objectContaining({ text: "Not allowed." }) },
    ]);
  });

  it("obeys a chat listed in allowedChatIds, answering in that chat", async () => {
    const environment = freshEnv({ ...TWO_HOSTS, telegram: { allowedChatIds: ["-1001234"] } });
    await postUpdate(environment, makeUpdate({ text: "/mute alpha 30m", chatId: -1001234 }), { now: T0 });
    expect((await operatorState(environment, "alpha")).mutedUntil).toBe(T0 + 30 * MINUTE);
    const calls = await telegramCalls(environment);
    expect(calls.map((call) => call.payload.chat_id)).toEqual([-1001234]);
  });

  it("handles a redelivered update_id once", async () => {
    const environment = freshEnv();
    const update = makeUpdate({ text: "/mute alpha 1h", updateId: 777 });
    const first = await postUpdate(environment, update, { now: T0 });
    const again = await postUpdate(environment, update, { now: T0 + 5 * MINUTE });
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ duplicate: true });
    expect(await sentMessages(environment)).toEqual([expect.stringContaining("muted until 15:00 UTC")]);
    // The redelivery did not move the mute on by five minutes.
    expect((await operatorState(environment, "alpha")).mutedUntil).toBe(T0 + HOUR);
    expect(await keysOf(environment)).toEqual(["op:alpha", "tg-update:777"]);
  });
});

describe("commands", () => {
  it("/help lists the commands and says there is no remote resume", async () => {
    const environment = freshEnv();
    const help = await command(environment, "/help");
    for (const name of ["/status", "/ack", "/mute", "/unmute", "/pause"]) expect(help).toContain(name);
    expect(help).toContain("There is no remote resume");
    expect(await command(environment, "/help@witness_bot")).toBe(help);
  });

  it("/status shows every host, or one, and names the hosts when asked for an unknown one", async () => {
    const environment = freshEnv();
    await agentFor(environment, "alpha")(T0);
    await tick(environment, T0 + 10 * SECOND);

    const all = await command(environment, "/status", T0 + 20 * SECOND);
    expect(all).toContain("🟢 <b>alpha</b>: ok");
    expect(all).toContain('last stored ping 20 s ago; heartbeat "ok", 50 s old');
    expect(all).toContain("circuit missing (green)");
    expect(all).toContain("<b>beta</b>");
    expect(all).toContain("never pinged");
    expect(all).toContain("cron last recorded 10 s ago");

    const one = await command(environment, "/status alpha", T0 + 20 * SECOND);
    expect(one).toContain("<b>alpha</b>");
    expect(one).not.toContain("beta");

    const unknown = await command(environment, "/status gamma", T0 + 20 * SECOND);
    expect(unknown).toBe('unknown host "gamma"; hosts: alpha, beta');
  });

  it("/status shows a mute and an open condition", async () => {
    const environment = freshEnv();
    await agentFor(environment, "alpha")(T0, { files: filesWith(T0 - 30 * SECOND, "error") });
    await tick(environment, T0 + 10 * SECOND);
    await command(environment, "/mute alpha 2h", T0 + 20 * SECOND);
    const status = await command(environment, "/status alpha", T0 + 30 * SECOND);
    expect(status).toContain("🔴 <b>alpha</b>: failing");
    expect(status).toContain("muted until 16:00 UTC");
  });

  it("/ack says so when nothing is open, and gives a usage line without a host", async () => {
    const environment = freshEnv();
    expect(await command(environment, "/ack alpha")).toBe("Nothing to acknowledge on <b>alpha</b>.");
    expect(await command(environment, "/ack")).toBe("usage: /ack <host>");
    expect(await command(environment, "/ack gamma")).toBe('unknown host "gamma"; hosts: alpha, beta');
    expect(await keysOf(environment)).not.toContain("op:alpha");
  });

  it("/ack acknowledges an open, paged incident by who and when", async () => {
    const environment = freshEnv();
    await agentFor(environment, "alpha")(T0, { files: filesWith(T0 - 30 * SECOND, "error") });
    await tick(environment, T0 + 10 * SECOND);
    expect((await sentMessages(environment)).at(-1)).toContain("<b>alpha</b> FAILING");

    const reply = await command(environment, "/ack alpha", T0 + MINUTE);
    expect(reply).toContain("Acknowledged failing on <b>alpha</b> (@ann)");
    expect(reply).toContain("the recovery will still be sent");
    const state = await operatorState(environment, "alpha");
    expect(state.acked).toEqual([{ incidentId: expect.stringMatching(/^alpha:failing:/), by: "@ann", at: T0 + MINUTE }]);
  });

  it("/mute takes a duration; a missing, bad, zero or too long one gets the usage line", async () => {
    const environment = freshEnv();
    expect(await command(environment, "/mute alpha 2h")).toBe(
      "🔕 <b>alpha</b> muted until 16:00 UTC by @ann. The end of the mute will be announced.",
    );
    expect(await operatorState(environment, "alpha")).toMatchObject({ mutedUntil: T0 + 2 * HOUR, mutedBy: "@ann" });

    for (const bad of ["/mute beta", "/mute beta soon", "/mute beta 2x", "/mute beta 0", "/mute beta 0m", "/mute beta 8d", "/mute beta -5"]) {
      expect(await command(environment, bad), bad).toMatch(/^usage: \/mute &lt;host&gt; &lt;duration&gt;/);
    }
    expect(await command(environment, "/mute gamma 1h")).toBe('unknown host "gamma"; hosts: alpha, beta');
    expect(await command(environment, "/mute")).toBe("usage: /mute <host> <duration, e.g. 1h>");
    expect(await keysOf(environment)).not.toContain("op:beta");
  });

  it("/mute accepts minutes, hours, days and combinations", async () => {
    const environment = freshEnv();
    for (const [text, ms] of [
      ["90", 90 * MINUTE],
      ["45m", 45 * MINUTE],
      ["1h30m", 90 * MINUTE],
      ["1d", 24 * HOUR],
      ["7d", 7 * 24 * HOUR],
    ] as const) {
      await command(environment, `/mute alpha ${text}`);
      expect((await operatorState(environment, "alpha")).mutedUntil, text).toBe(T0 + ms);
    }
  });

  it("/unmute ends a mute now, and says when there was none", async () => {
    const environment = freshEnv();
    expect(await command(environment, "/unmute alpha")).toBe("<b>alpha</b> is not muted.");
    await command(environment, "/mute alpha 2h");
    expect(await command(environment, "/unmute alpha", T0 + 10 * MINUTE)).toBe("🔔 <b>alpha</b> unmuted.");
    expect((await operatorState(environment, "alpha")).mutedUntil).toBe(T0 + 10 * MINUTE);
    expect(await command(environment, "/unmute alpha", T0 + 11 * MINUTE)).toBe("<b>alpha</b> is not muted.");
    expect(await command(environment, "/unmute")).toBe("usage: /unmute <host>");
  });

  it("/pause needs a reason, and explains how to allow remote pause on a host that does not", async () => {
    const environment = freshEnv();
    expect(await command(environment, "/pause beta")).toBe(
      "usage: /pause &lt;host&gt; &lt;reason&gt;, e.g. /pause trader-1 broker API down",
    );
    const refused = await command(environment, "/pause alpha broker API down");
    expect(refused).toContain("Remote pause is off for <b>alpha</b>");
    expect(refused).toContain("allowRemotePause = true");
    expect(refused).toContain("--allow-remote-pause");
    expect(await keysOf(environment)).toEqual(expect.not.arrayContaining(["cmd:alpha", "cmd:beta"]));
  });

  it("/pause on an allowed host asks to confirm, and the command is not handed out before that", async () => {
    const environment = freshEnv();
    const watch = callWatcher(environment);
    await postUpdate(environment, makeUpdate({ text: "/pause beta broker API down" }), { now: T0 });
    const [prompt] = await watch();
    expect(prompt?.method).toBe("sendMessage");
    expect(String(prompt?.payload.text)).toContain("Pause trading on <b>beta</b>?\nReason: broker API down");
    const stored = JSON.parse((await environment.WITNESS_KV.get("cmd:beta")) ?? "null") as {
      command: { id: string; reason: string; requestedBy: string };
      confirmedAt: number | null;
    };
    expect(stored).toMatchObject({ command: { type: "pause", reason: "broker API down", requestedBy: "@ann" }, confirmedAt: null });
    expect(buttonData(prompt)).toEqual([[`pausec|beta|${stored.command.id}`, `pausex|beta|${stored.command.id}`]]);
    expect(keyboardOf(prompt)?.inline_keyboard[0]?.map((button) => button.text)).toEqual(["⏸️ Confirm pause", "Cancel"]);

    const pinged = await agentFor(environment, "beta")(T0 + 30 * SECOND);
    expect(await pinged.json()).toMatchObject({ ok: true, commands: [] });
  });

  it("answers an unknown command with a pointer to /help, and ignores messages without text", async () => {
    const environment = freshEnv();
    expect(await command(environment, "/resume beta")).toBe("unknown command /resume; /help lists what I answer");
    const sticker = makeUpdate({ text: "x" });
    const message = sticker.message as Record<string, unknown>;
    delete message.text;
    message.sticker = { file_id: "abc" };
    expect((await postUpdate(environment, sticker, { now: T0 })).status).toBe(200);
    expect(await sentMessages(environment)).toHaveLength(1);
  });
});

describe("page buttons", () => {
  /** Pages alpha and beta as failing and returns the page as the stand-in received it. */
  async function pageBoth(environment: TestEnv) {
    const watch = callWatcher(environment);
    const agents = { alpha: agentFor(environment, "alpha"), beta: agentFor(environment, "beta") };
    for (const agent of Object.values(agents)) await agent(T0, { files: filesWith(T0 - 30 * SECOND, "error") });
    await tick(environment, T0 + 10 * SECOND);
    const page = (await watch()).filter((call) => call.method === "sendMessage").at(-1);
    expect(String(page?.payload.text)).toContain("2 problems");
    expect(buttonData(page)).toEqual([
      ["ack|alpha", "mute|alpha"],
      ["ack|beta", "mute|beta", "pause|beta"],
    ]);
    const keyboard = keyboardOf(page);
    if (keyboard === undefined) throw new Error("the page has no buttons");
    return { watch, keyboard, agents };
  }

  it("Acknowledge answers the press and edits the host's row to who acknowledged and when", async () => {
    const environment = freshEnv();
    const { watch, keyboard } = await pageBoth(environment);
    await postUpdate(environment, makeCallback({ data: "ack|alpha", messageId: 900, keyboard }), { now: T0 + 3 * MINUTE });
    const calls = await watch();
    expect(calls).toEqual([
      { method: "answerCallbackQuery", payload: expect.objectContaining({ text: "Acknowledged alpha" }) },
      {
        method: "editMessageReplyMarkup",
        payload: {
          chat_id: OWNER_CHAT,
          message_id: 900,
          reply_markup: {
            inline_keyboard: [
              [{ text: "✔️ alpha acked by @ann at 14:03 UTC", callback_data: "noop|alpha" }],
              keyboard.inline_keyboard[1],
            ],
          },
        },
      },
    ]);
    expect((await operatorState(environment, "alpha")).acked).toEqual([
      { incidentId: expect.stringMatching(/^alpha:failing:/), by: "@ann", at: T0 + 3 * MINUTE },
    ]);
  });

  it("Acknowledge on a page whose incident is over says there is nothing to acknowledge", async () => {
    const environment = freshEnv();
    const { watch, keyboard, agents } = await pageBoth(environment);
    await agents.alpha(T0 + MINUTE, { files: filesWith(T0 + 30 * SECOND, "ok") });
    await tick(environment, T0 + MINUTE + 10 * SECOND);
    await watch();
    await postUpdate(environment, makeCallback({ data: "ack|alpha", keyboard }), { now: T0 + 2 * MINUTE });
    const calls = await watch();
    expect(calls[0]).toEqual({ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "Nothing to acknowledge on alpha." }) });
    expect(JSON.stringify(calls)).not.toContain("acked by");
  });

  it("Mute 1 h mutes the host, answers, and edits the row to who muted it until when", async () => {
    const environment = freshEnv();
    const { watch, keyboard } = await pageBoth(environment);
    await postUpdate(environment, makeCallback({ data: "mute|beta", messageId: 901, keyboard }), { now: T0 + 5 * MINUTE });
    const calls = await watch();
    expect(calls[0]).toEqual({ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "beta muted for 1 h" }) });
    expect(calls[1]?.method).toBe("editMessageReplyMarkup");
    expect(keyboardOf(calls[1])?.inline_keyboard).toEqual([
      keyboard.inline_keyboard[0],
      [{ text: "🔕 beta muted by @ann until 15:05 UTC", callback_data: "noop|beta" }],
    ]);
    expect(await operatorState(environment, "beta")).toMatchObject({ mutedUntil: T0 + 65 * MINUTE, mutedBy: "@ann" });
  });

  it("Pause trading asks to confirm; Confirm queues it for the agent; Cancel removes it", async () => {
    const environment = freshEnv();
    const { watch, keyboard, agents } = await pageBoth(environment);
    await postUpdate(environment, makeCallback({ data: "pause|beta", keyboard }), { now: T0 + MINUTE });
    const [answer, prompt] = await watch();
    expect(answer).toEqual({ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "Confirm below" }) });
    expect(prompt?.method).toBe("sendMessage");
    expect(String(prompt?.payload.text)).toContain("Pause trading on <b>beta</b>?\nReason: from the phone by @ann");
    const [[confirm = "", cancel = ""] = []] = buttonData(prompt);
    expect(confirm).toMatch(/^pausec\|beta\|\w+$/);
    const commandId = confirm.split("|")[2];

    const agent = agents.beta;
    expect(await (await agent(T0 + MINUTE + 5 * SECOND)).json()).toMatchObject({ commands: [] });

    await postUpdate(environment, makeCallback({ data: confirm, messageId: 902 }), { now: T0 + 2 * MINUTE });
    const confirmed = await watch();
    expect(confirmed[0]).toEqual({ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "Pause queued" }) });
    expect(confirmed[1]).toEqual({
      method: "editMessageText",
      payload: expect.objectContaining({
        chat_id: OWNER_CHAT,
        message_id: 902,
        text: `⏸️ Pause for <b>beta</b> queued by @ann at 14:02 UTC (command ${commandId}); waiting for the host to apply it.`,
      }),
    });
    expect(await (await agent(T0 + 2 * MINUTE + 5 * SECOND)).json()).toMatchObject({
      commands: [{ id: commandId, type: "pause", reason: "from the phone by @ann", requestedBy: "@ann" }],
    });

    // Cancel on the same prompt, after Confirm, must not claim what it cannot do.
    await postUpdate(environment, makeCallback({ data: cancel, messageId: 902 }), { now: T0 + 3 * MINUTE });
    const late = await watch();
    expect(late[0]?.payload.text).toMatch(/already confirmed/i);
    expect(JSON.stringify(late)).not.toContain("cancelled");
    expect(await environment.WITNESS_KV.get("cmd:beta")).not.toBeNull();
  });

  it("Cancel before Confirm deletes the request, and a later Confirm says it expired", async () => {
    const environment = freshEnv();
    const watch = callWatcher(environment);
    await postUpdate(environment, makeUpdate({ text: "/pause beta maintenance" }), { now: T0 });
    const [[confirm = "", cancel = ""] = []] = buttonData((await watch())[0]);

    await postUpdate(environment, makeCallback({ data: cancel, messageId: 903 }), { now: T0 + MINUTE });
    const cancelled = await watch();
    expect(cancelled[0]).toEqual({ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "Cancelled" }) });
    expect(cancelled[1]).toEqual({
      method: "editMessageText",
      payload: expect.objectContaining({ message_id: 903, text: "Pause for <b>beta</b> cancelled by @ann." }),
    });
    expect(await environment.WITNESS_KV.get("cmd:beta")).toBeNull();

    await postUpdate(environment, makeCallback({ data: confirm, messageId: 903 }), { now: T0 + 2 * MINUTE });
    const expired = await watch();
    expect(expired[0]?.payload.text).toBe("This pause request expired; send /pause again.");
    expect(await environment.WITNESS_KV.get("cmd:beta")).toBeNull();
  });

  it("Confirm after the request's ten minutes says it expired, and nothing is handed out", async () => {
    const environment = freshEnv();
    const watch = callWatcher(environment);
    await postUpdate(environment, makeUpdate({ text: "/pause beta maintenance" }), { now: T0 });
    const [[confirm = ""] = []] = buttonData((await watch())[0]);
    await postUpdate(environment, makeCallback({ data: confirm, messageId: 904 }), { now: T0 + 10 * MINUTE });
    const calls = await watch();
    expect(calls[0]).toEqual({ method: "answerCallbackQuery", payload: expect.objectContaining({ text: "This pause request expired; send /pause again." }) });
    expect(calls[1]).toEqual({
      method: "editMessageText",
      payload: expect.objectContaining({ message_id: 904, text: "⏸️ Pause request for <b>beta</b> expired." }),
    });
    expect(await (await agentFor(environment, "beta")(T0 + 10 * MINUTE + 5 * SECOND)).json()).toMatchObject({ commands: [] });
  });

  it("a button for an unknown host is answered, and changes nothing", async () => {
    const environment = freshEnv();
    await postUpdate(environment, makeCallback({ data: "mute|gamma" }), { now: T0 });
    expect(await telegramCalls(environment)).toEqual([
      { method: "answerCallbackQuery", payload: expect.objectContaining({ text: "Unknown host." }) },
    ]);
    expect(await keysOf(environment)).not.toContain("op:gamma");
  });
});

// An hour and more of minutes, each a ping and a tick: slower than the default 5 s.
describe("acknowledged and muted pages, through the cron", { timeout: 60_000 }, () => {
  it("an acknowledged incident stops repeating, and its recovery still arrives", async () => {
    const environment = freshEnv();
    const agents = { alpha: agentFor(environment, "alpha"), beta: agentFor(environment, "beta") };
    const failingUntil = 45;
    const status = (_host: string, minute: number) => (minute < failingUntil ? "error" : "ok");
    await runMinutes(environment, { from: 0, to: 2 }, status, agents);
    await command(environment, "/ack alpha", T0 + 2 * MINUTE + 30 * SECOND);
    await runMinutes(environment, { from: 3, to: failingUntil + 1 }, status, agents);

    const messages = await sentMessages(environment);
    const lines = messages.flatMap((text) => text.split("\n"));
    // beta, not acknowledged, repeats every 30 minutes; alpha does not.
    expect(lines.filter((line) => line.includes("still FAILING"))).toEqual([
      expect.stringContaining("<b>beta</b> still FAILING (unacknowledged)"),
    ]);
    expect(lines.filter((line) => line.includes("FAILING over"))).toEqual([
      expect.stringContaining("<b>alpha</b> FAILING over after 45 min"),
      expect.stringContaining("<b>beta</b> FAILING over after 45 min"),
    ]);
  });

  it("a mute swallows the host's pages (only that host's), and its end is announced once", async () => {
    const environment = freshEnv();
    const agents = { alpha: agentFor(environment, "alpha"), beta: agentFor(environment, "beta") };
    await command(environment, "/mute alpha 1h", T0 - 30 * SECOND);
    await runMinutes(environment, { from: 0, to: 80 }, () => "error", agents);

    const messages = await sentMessages(environment);
    const unmuted = messages.filter((text) => text.includes("no longer muted"));
    expect(unmuted).toEqual([expect.stringContaining("🔔 <b>alpha</b> is no longer muted (still open: failing).")]);
    // The notice comes with the first tick after the hour, not before.
    const muteEndIndex = messages.findIndex((text) => text.includes("no longer muted"));
    const alphaLinesBefore = messages.slice(0, muteEndIndex).flatMap((text) => text.split("\n")).filter((line) => line.includes("<b>alpha</b>"));
    expect(alphaLinesBefore.filter((line) => /FAILING/.test(line))).toEqual([]);
    expect(messages.some((text) => text.includes("<b>beta</b> FAILING"))).toBe(true);
  });

  it("/unmute is announced by the next tick, once", async () => {
    const environment = freshEnv();
    const agents = { alpha: agentFor(environment, "alpha") };
    await command(environment, "/mute alpha 2h", T0 - 30 * SECOND);
    await runMinutes(environment, { from: 0, to: 3 }, () => "ok", agents);
    await command(environment, "/unmute alpha", T0 + 3 * MINUTE + 30 * SECOND);
    await runMinutes(environment, { from: 4, to: 8 }, () => "ok", agents);
    const unmuted = (await sentMessages(environment)).filter((text) => text.includes("no longer muted"));
    expect(unmuted).toEqual([expect.stringContaining("🔔 <b>alpha</b> is no longer muted (all clear).")]);
  });
});

describe("POST /v1/telegram/test", () => {
  async function postTest(environment: TestEnv, authorization?: string): Promise<Response> {
    const app = createApp({ now: () => T0 });
    return app.fetch(
      new Request("https://witness.test/v1/telegram/test", {
        method: "POST",
        headers: authorization === undefined ? {} : { authorization },
      }),
      environment,
    );
  }

  it("refuses without the status token", async () => {
    const environment = freshEnv();
    expect((await postTest(environment)).status).toBe(401);
    expect((await postTest(environment, "Bearer wrong")).status).toBe(401);
    expect(await telegramCalls(environment)).toEqual([]);
  });

  it("sends the test message to the configured chat", async () => {
    const environment = freshEnv();
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
    const environment = freshEnv();
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
