// The remote kill switch from the monitor's side: /pause, Confirm, the ping answer
// handing the command to the agent, and what the monitor then tells the chat (applied,
// refused, or not applied by the deadline, each said once); who may pause, and what a
// second request or a Cancel may not undo. The agent here is a series of pings shaped
// like the real agent's (it reports a command's outcome once); time is what the test says.
import { describe, expect, it } from "vitest";
import type { PingBody } from "../../src/protocol.ts";
import { circuitFile, filesWith, MINUTE, T0, type TestConfigInput } from "./helpers.ts";
import { MonitorHarness } from "./monitor-harness.ts";
import { buttonData, harnessAgent, linesOf, OWNER, pages, press, reply, say, textOf } from "./telegram-builders.ts";

const SECOND = 1000;
/** A group chat the bot is in (its id differs from every user id). */
const OWNER_CHAT_GROUP = -1_001_234;

function betaMonitor(beta: Record<string, unknown> = {}, telegram: Record<string, unknown> = {}): MonitorHarness {
  const config: TestConfigInput = { hosts: [{ id: "beta", allowRemotePause: true, intervalSeconds: 60, ...beta }], telegram };
  return new MonitorHarness(config);
}

/** /pause from the phone; returns the Confirm and Cancel buttons' data. */
async function askPause(monitor: MonitorHarness, reason: string, at: number, hostId = "beta"): Promise<{ confirm: string; cancel: string; commandId: string }> {
  const calls = await say(monitor, `/pause ${hostId} ${reason}`, at);
  const [[confirm = "", cancel = ""] = []] = buttonData(calls[0]);
  const commandId = confirm.split("|")[2] ?? "";
  expect(commandId, textOf(calls[0])).not.toBe("");
  return { confirm, cancel, commandId };
}

/** /pause, then Confirm ten seconds later: returns the queued command's id. */
async function queuePause(monitor: MonitorHarness, reason: string, at: number): Promise<string> {
  const { confirm, commandId } = await askPause(monitor, reason, at);
  const confirmed = await press(monitor, confirm, at + 10 * SECOND);
  expect(confirmed.map(textOf)).toContain("Pause queued");
  return commandId;
}

/** The agent's files once it has written circuit.json paused for `commandId`. */
function pausedFiles(at: number, commandId: string, reason: string): PingBody["files"] {
  return filesWith(at - 30 * SECOND, "ok", circuitFile({ paused: true, reason: `remote: ${reason} (command ${commandId}, by @ann)`, since: at / 1000 }));
}

async function sentLines(monitor: MonitorHarness): Promise<string[]> {
  return linesOf(await monitor.messages());
}

describe("a remote pause, followed up by the monitor", { timeout: 30_000 }, () => {
  it("is handed to the agent once confirmed, and its application is reported once", async () => {
    const monitor = betaMonitor();
    const agent = harnessAgent(monitor, "beta");
    await agent(T0);
    await monitor.run(T0 + 10 * SECOND, "cron");
    const commandId = await queuePause(monitor, "broker API down", T0 + 20 * SECOND);

    const handed = await agent(T0 + MINUTE);
    expect(handed.status === 200 && handed.commands).toEqual([expect.objectContaining({ id: commandId, reason: "broker API down", requestedBy: "@ann" })]);

    // The agent applied it and says so in its next ping, once (as the real agent does).
    const reported = await agent(T0 + 2 * MINUTE, {
      commandResult: { id: commandId, outcome: "applied", at: T0 + MINUTE + 2 * SECOND },
      files: pausedFiles(T0 + MINUTE + 2 * SECOND, commandId, "broker API down"),
    });
    expect(reported.status === 200 && reported.commands).toEqual([]);
    await monitor.alarmsUntil(T0 + 2 * MINUTE + 10 * SECOND);

    for (let minute = 3; minute <= 20; minute++) {
      const at = T0 + minute * MINUTE;
      const later = await agent(at, { files: pausedFiles(T0 + MINUTE + 2 * SECOND, commandId, "broker API down") });
      expect(later.status === 200 && later.commands, `ping at minute ${minute}`).toEqual([]);
      await monitor.alarmsUntil(at + 10 * SECOND);
    }

    const lines = await sentLines(monitor);
    expect(lines.filter((line) => line.includes(commandId) && !line.includes("CIRCUIT TRIPPED"))).toEqual([
      `⏸️ <b>beta</b> paused by remote command ${commandId}, applied at 14:01 UTC (host clock). Resume is a human edit of circuit.json on the host.`,
    ]);
    expect(lines.filter((line) => line.includes("CIRCUIT TRIPPED"))).toEqual([
      expect.stringContaining(`<b>beta</b> CIRCUIT TRIPPED: circuit paused: remote: broker API down (command ${commandId}, by @ann)`),
    ]);
    expect(lines.filter((line) => line.includes("NOT paused") || line.includes("not applied"))).toEqual([]);
  });

  it("still reports the application when the ping carrying the result is soon replaced by others", async () => {
    // Pinging every 10 s, the ping carrying the result is replaced within seconds; the
    // outcome must still be said once, and the command never handed out again.
    const monitor = betaMonitor({ intervalSeconds: 10 });
    const agent = harnessAgent(monitor, "beta");
    await agent(T0);
    const commandId = await queuePause(monitor, "maintenance", T0 + 2 * SECOND);
    const handed = await agent(T0 + 30 * SECOND);
    expect(handed.status === 200 && handed.commands).toHaveLength(1);
    await agent(T0 + 40 * SECOND, {
      commandResult: { id: commandId, outcome: "applied", at: T0 + 31 * SECOND },
      files: pausedFiles(T0 + 31 * SECOND, commandId, "maintenance"),
    });
    for (let second = 50; second <= 15 * 60; second += 10) {
      const at = T0 + second * SECOND;
      const answer = await agent(at, { files: pausedFiles(T0 + 31 * SECOND, commandId, "maintenance") });
      expect(answer.status === 200 && answer.commands, `ping at ${second} s`).toEqual([]);
      await monitor.alarmsUntil(at + 5 * SECOND);
    }
    const lines = await sentLines(monitor);
    expect(lines.filter((line) => line.includes(`remote command ${commandId}, applied at 14:00 UTC`))).toHaveLength(1);
    expect(lines.filter((line) => line.includes("has not applied"))).toEqual([]);
  });

  it("tells the chat that trading was NOT paused when the agent is not allowed to pause, once", async () => {
    const monitor = betaMonitor();
    const agent = harnessAgent(monitor, "beta");
    await agent(T0);
    const commandId = await queuePause(monitor, "risk limit", T0 + 20 * SECOND);
    const handed = await agent(T0 + MINUTE);
    expect(handed.status === 200 && handed.commands).toHaveLength(1);
    await agent(T0 + 2 * MINUTE, { commandResult: { id: commandId, outcome: "not_allowed", at: T0 + MINUTE + SECOND } });
    for (let minute = 2; minute <= 15; minute++) {
      const at = T0 + minute * MINUTE;
      if (minute > 2) {
        const later = await agent(at);
        expect(later.status === 200 && later.commands, `minute ${minute}`).toEqual([]);
      }
      await monitor.alarmsUntil(at + 10 * SECOND);
    }
    const lines = (await sentLines(monitor)).filter((line) => line.includes(commandId));
    expect(lines).toEqual([`⚠️ <b>beta</b> refused remote command ${commandId}: its agent runs without --allow-remote-pause. Trading was NOT paused.`]);
  });

  it("tells the chat the pause was not applied when no result arrives by the deadline, once, on the alarm", async () => {
    const monitor = betaMonitor();
    const agent = harnessAgent(monitor, "beta");
    await agent(T0);
    const confirmedAt = T0 + 30 * SECOND;
    const commandId = await queuePause(monitor, "broker API down", confirmedAt - 10 * SECOND);
    // An agent that takes the command but never answers (an older agent, or one that died).
    // The deadline is three pings and 15 s (195 s) after Confirm: the alarm fires then,
    // between two minutes' pings, not at the next cron.
    const reportedAt: number[] = [];
    for (let minute = 1; minute <= 20; minute++) {
      const at = T0 + minute * MINUTE;
      await agent(at);
      const before = (await sentLines(monitor)).length;
      await monitor.alarmsUntil(at + MINUTE - SECOND);
      const fresh = (await sentLines(monitor)).slice(before);
      if (fresh.some((line) => line.includes(`has not applied remote pause ${commandId}`))) reportedAt.push(minute);
    }
    expect(reportedAt).toEqual([3]);
    const lines = (await sentLines(monitor)).filter((line) => line.includes(commandId));
    expect(lines).toEqual([
      `⚠️ <b>beta</b> has not applied remote pause ${commandId} 3 min after it was confirmed (host dark, or agent without --allow-remote-pause?). Trading may NOT be paused; the command stays queued until 14:15 UTC.`,
    ]);
  });

  it("reports a pause the host applies after the chat was told it had not", async () => {
    const monitor = betaMonitor();
    const agent = harnessAgent(monitor, "beta");
    await agent(T0);
    const commandId = await queuePause(monitor, "broker API down", T0 + 20 * SECOND);
    // The host is unreachable for 8 minutes, then picks the still-queued command up.
    await monitor.alarmsUntil(T0 + 8 * MINUTE + 10 * SECOND);
    expect((await sentLines(monitor)).filter((line) => line.includes(`has not applied remote pause ${commandId}`))).toHaveLength(1);

    const handed = await agent(T0 + 9 * MINUTE);
    expect(handed.status === 200 && handed.commands.map((command) => command.id)).toEqual([commandId]);
    await agent(T0 + 10 * MINUTE, {
      commandResult: { id: commandId, outcome: "applied", at: T0 + 9 * MINUTE + SECOND },
      files: pausedFiles(T0 + 9 * MINUTE + SECOND, commandId, "broker API down"),
    });
    for (let minute = 10; minute <= 14; minute++) {
      if (minute > 10) await agent(T0 + minute * MINUTE, { files: pausedFiles(T0 + 9 * MINUTE + SECOND, commandId, "broker API down") });
      await monitor.alarmsUntil(T0 + minute * MINUTE + 10 * SECOND);
    }
    const lines = await sentLines(monitor);
    expect(lines.filter((line) => line.includes(`paused by remote command ${commandId}, applied at 14:09 UTC`))).toHaveLength(1);
  });

  it("works for a host id too long to fit in a button's 64 bytes of callback data", async () => {
    const longId = `trader-${"x".repeat(56)}`;
    const monitor = new MonitorHarness({ hosts: [{ id: longId, allowRemotePause: true }] });
    const { confirm, cancel } = await askPause(monitor, "disk full", T0, longId);
    for (const data of [confirm, cancel]) expect(new TextEncoder().encode(data).length, data).toBeLessThanOrEqual(64);

    expect((await press(monitor, confirm, T0 + 10 * SECOND)).map(textOf)).toContain("Pause queued");
    const handed = await harnessAgent(monitor, longId)(T0 + 20 * SECOND);
    expect(handed.status === 200 && handed.commands).toEqual([expect.objectContaining({ reason: "disk full" })]);
  });

  it("says a long host's pause request expired once it was cancelled", async () => {
    const longId = `trader-${"y".repeat(56)}`;
    const monitor = new MonitorHarness({ hosts: [{ id: longId, allowRemotePause: true }] });
    const { confirm, cancel } = await askPause(monitor, "disk full", T0, longId);
    expect((await press(monitor, cancel, T0 + 10 * SECOND)).map(textOf)).toContain("Cancelled");
    expect((await press(monitor, confirm, T0 + 20 * SECOND)).map(textOf)).toContain("This pause request expired; send /pause again.");
    expect((await monitor.host(longId, T0 + 20 * SECOND)).command).toBeNull();
  });
});

describe("a pause already on its way", () => {
  it("a second /pause while a confirmed pause is queued neither replaces nor cancels it, and says one is pending", async () => {
    const monitor = betaMonitor();
    const agent = harnessAgent(monitor, "beta");
    await agent(T0);
    const commandId = await queuePause(monitor, "broker API down", T0 + 10 * SECOND);

    const second = await say(monitor, "/pause beta risk limit", T0 + 30 * SECOND);
    expect(second.map(textOf)).toEqual([
      `⏸️ A pause for <b>beta</b> is already queued (command ${commandId}, by @ann); it stays queued until the host applies it or it expires at 14:15 UTC.`,
    ]);
    expect(buttonData(second[0])).toEqual([]);
    expect((await monitor.host("beta", T0 + 30 * SECOND)).command).toMatchObject({ command: { id: commandId, reason: "broker API down" }, confirmedAt: T0 + 20 * SECOND });
    const handed = await agent(T0 + MINUTE);
    expect(handed.status === 200 && handed.commands.map((command) => [command.id, command.reason])).toEqual([[commandId, "broker API down"]]);
  });

  it("the Pause button on a repeat page while a confirmed pause is queued says one is pending and queues nothing new", async () => {
    const monitor = betaMonitor();
    const agent = harnessAgent(monitor, "beta");
    // Failing for two pings pages (with a Pause button); 30 minutes on it repeats.
    await agent(T0, { files: filesWith(T0 - 30 * SECOND, "error") });
    await agent(T0 + MINUTE, { files: filesWith(T0 + 30 * SECOND, "error") });
    await monitor.alarmsUntil(T0 + MINUTE + 5 * SECOND);
    let commandId = "";
    // Confirmed at 20 min, the pause stays queued for 15 min: over the repeat at 31 min.
    for (let minute = 2; minute <= 32; minute++) {
      if (minute === 20) commandId = await queuePause(monitor, "broker API down", T0 + 19 * MINUTE + 30 * SECOND);
      await agent(T0 + minute * MINUTE, { files: filesWith(T0 + minute * MINUTE - 30 * SECOND, "error") });
      await monitor.alarmsUntil(T0 + minute * MINUTE + 30 * SECOND);
    }
    const repeat = (await pages(monitor)).filter((call) => textOf(call).includes("still FAILING")).at(-1);
    expect(buttonData(repeat)).toContainEqual(expect.arrayContaining(["pause|beta"]));

    const calls = await press(monitor, "pause|beta", T0 + 32 * MINUTE + 40 * SECOND);
    const sent = calls.filter((call) => call.method === "sendMessage");
    expect(sent.map(textOf)).toEqual([expect.stringContaining(`A pause for <b>beta</b> is already queued (command ${commandId}`)]);
    expect(buttonData(sent[0])).toEqual([]);
    expect((await monitor.host("beta", T0 + 33 * MINUTE)).command).toMatchObject({ command: { id: commandId, reason: "broker API down" }, confirmedAt: T0 + 19 * MINUTE + 40 * SECOND });
  });

  it("Cancel removes only the request its button belongs to: not a newer one, not a confirmed one", async () => {
    const monitor = betaMonitor();
    const first = await askPause(monitor, "maintenance", T0);
    const second = await askPause(monitor, "risk limit", T0 + 10 * SECOND);
    expect(second.commandId).not.toBe(first.commandId);

    // The older prompt's Cancel: the newer request stays, and can still be confirmed.
    await press(monitor, first.cancel, T0 + 20 * SECOND);
    expect((await monitor.host("beta", T0 + 20 * SECOND)).command?.command.id).toBe(second.commandId);
    expect((await press(monitor, second.confirm, T0 + 30 * SECOND)).map(textOf)).toContain("Pause queued");

    // Cancel on the confirmed prompt says it cannot, and leaves the pause queued.
    const late = await press(monitor, second.cancel, T0 + 40 * SECOND);
    expect(late.map(textOf)).toEqual(["Already confirmed: the pause stays queued. Resuming is a human edit on the host."]);
    // And the first prompt's Cancel again, after that: still nothing removed.
    await press(monitor, first.cancel, T0 + 50 * SECOND);
    expect((await monitor.host("beta", T0 + 50 * SECOND)).command).toMatchObject({ command: { id: second.commandId }, confirmedAt: T0 + 30 * SECOND });
  });
});

describe("who may pause trading", () => {
  const STRANGER = { id: 99, is_bot: false, first_name: "Bob", username: "bob" };

  it("with telegram.allowedUserIds set, refuses /pause from anyone else, naming who and the setting, and queues nothing", async () => {
    const monitor = betaMonitor({}, { allowedUserIds: [4242] });
    const refused = await reply(monitor, "/pause beta broker down", T0, { from: STRANGER, chatId: OWNER_CHAT_GROUP });
    expect(refused).toBe(
      "Refused: @bob (user id 99) may not pause trading; add the id to telegram.allowedUserIds in wrangler.toml to allow it.",
    );
    expect((await monitor.host("beta", T0)).command).toBeNull();
    // The listed user may, even from a group chat.
    const allowed = await say(monitor, "/pause beta broker down", T0 + SECOND, { from: OWNER, chatId: OWNER_CHAT_GROUP });
    expect(textOf(allowed[0])).toContain("Pause trading on <b>beta</b>?");
  });

  it("with telegram.allowedUserIds set, refuses the Pause and Confirm buttons from anyone else", async () => {
    const monitor = betaMonitor({}, { allowedUserIds: ["4242"] });
    const pause = await press(monitor, "pause|beta", T0, { from: STRANGER });
    expect(pause.map((call) => [call.method, textOf(call)])).toEqual([
      ["answerCallbackQuery", "Not allowed to pause"],
      ["sendMessage", "Refused: @bob (user id 99) may not pause trading; add the id to telegram.allowedUserIds in wrangler.toml to allow it."],
    ]);
    expect((await monitor.host("beta", T0)).command).toBeNull();

    // The owner asks; the stranger presses Confirm on the owner's prompt.
    const { confirm, commandId } = await askPause(monitor, "maintenance", T0 + SECOND);
    const confirmed = await press(monitor, confirm, T0 + 2 * SECOND, { from: STRANGER });
    expect(confirmed.map(textOf)).toEqual(["Not allowed to pause"]);
    expect((await monitor.host("beta", T0 + 2 * SECOND)).command).toMatchObject({ command: { id: commandId }, confirmedAt: null });
    const handed = await harnessAgent(monitor, "beta")(T0 + 10 * SECOND);
    expect(handed.status === 200 && handed.commands).toEqual([]);
  });

  it("with telegram.allowedUserIds empty, refuses /pause from a group chat and allows it from a private one", async () => {
    const monitor = betaMonitor();
    const refused = await reply(monitor, "/pause beta broker down", T0, { chatId: OWNER_CHAT_GROUP });
    expect(refused).toBe(
      "Refused: pausing from a group needs telegram.allowedUserIds in wrangler.toml (@ann is user id 4242); or send /pause in a private chat with the bot.",
    );
    expect((await monitor.host("beta", T0)).command).toBeNull();
    const group = await press(monitor, "pause|beta", T0 + SECOND, { chatId: OWNER_CHAT_GROUP });
    expect(group.map(textOf)).toEqual(["Not allowed to pause", expect.stringContaining("Refused: pausing from a group")]);
    expect((await monitor.host("beta", T0 + SECOND)).command).toBeNull();

    // A private chat: Telegram gives it the user's own id.
    const privateChat = await say(monitor, "/pause beta broker down", T0 + 2 * SECOND, { chatId: OWNER.id });
    expect(textOf(privateChat[0])).toContain("Pause trading on <b>beta</b>?");
    expect((await monitor.host("beta", T0 + 2 * SECOND)).command).toMatchObject({ command: { reason: "broker down" }, confirmedAt: null });
  });
});

describe("a host whose agent cannot pause", () => {
  /** beta pages FAILING (two pings say "error"), its agent of the given kind; returns the page's buttons. */
  async function failingPage(monitor: MonitorHarness, kind: "node" | "shell"): Promise<string[][]> {
    const agent = harnessAgent(monitor, "beta", { agent: { version: "0.1.0", startedAt: T0 - 3_600_000, bootId: "boot-1", kind } });
    await agent(T0, { files: filesWith(T0 - 30 * SECOND, "error") });
    await agent(T0 + MINUTE, { files: filesWith(T0 + 30 * SECOND, "error") });
    await monitor.alarmsUntil(T0 + MINUTE + 5 * SECOND);
    const page = (await pages(monitor)).filter((call) => textOf(call).includes("<b>beta</b> FAILING")).at(-1);
    expect(page, "the failing page").toBeDefined();
    return buttonData(page);
  }

  it("/pause says why it cannot work when the host's agent is the shell agent, and queues nothing", async () => {
    const monitor = betaMonitor();
    await failingPage(monitor, "shell");
    const refused = await reply(monitor, "/pause beta broker down", T0 + 2 * MINUTE);
    expect(refused).toBe(
      "Remote pause cannot work for <b>beta</b>: its agent is the shell agent, which cannot write circuit.json. Run the Node agent with --allow-remote-pause there.",
    );
    expect((await monitor.host("beta", T0 + 2 * MINUTE)).command).toBeNull();
  });

  it("offers no Pause trading button on the pages of a host whose agent is the shell agent", async () => {
    const monitor = betaMonitor();
    expect(await failingPage(monitor, "shell")).toEqual([["ack|beta", "mute|beta"]]);
  });

  it("offers the button on the pages of the same host with the Node agent", async () => {
    const monitor = betaMonitor();
    expect(await failingPage(monitor, "node")).toEqual([["ack|beta", "mute|beta", "pause|beta"]]);
  });
});
