// The remote kill switch from the Worker's side: /pause, Confirm, the ping route handing
// the command to the agent, and what the cron then tells the chat: applied, refused,
// or not applied by the deadline, each said once. The agent here is a series of
// signed pings shaped like the real agent's (it reports a command's outcome once).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { PingBody } from "../../src/protocol.ts";
import { circuitFile, filesWith, MINUTE, sentMessages, T0, type TestConfigInput, type TestEnv, testEnv, tick } from "./helpers.ts";
import { agentFor, buttonData, callWatcher, isolatedKv, makeCallback, makeUpdate, postUpdate } from "./telegram-builders.ts";

const SECOND = 1000;

function freshEnv(beta: Record<string, unknown> = {}): TestEnv {
  const config: TestConfigInput = { hosts: [{ id: "beta", allowRemotePause: true, ...beta }] };
  return testEnv(config, { kv: isolatedKv(env.WITNESS_KV) });
}

/** /pause from the phone, then Confirm: returns the queued command's id. */
async function queuePause(environment: TestEnv, reason: string, at: number): Promise<string> {
  const watch = callWatcher(environment);
  await watch();
  await postUpdate(environment, makeUpdate({ text: `/pause beta ${reason}` }), { now: at });
  const [[confirm = ""] = []] = buttonData((await watch()).find((call) => call.method === "sendMessage"));
  const commandId = confirm.split("|")[2] ?? "";
  expect(commandId).not.toBe("");
  await postUpdate(environment, makeCallback({ data: confirm }), { now: at + 10 * SECOND });
  expect((await watch()).map((call) => call.payload.text)).toContain("Pause queued");
  return commandId;
}

interface Accepted {
  ok: boolean;
  commands: Array<{ id: string; reason: string }>;
}

/** The agent's files once it has written circuit.json paused for `commandId`. */
function pausedFiles(at: number, commandId: string, reason: string): PingBody["files"] {
  return filesWith(at - 30 * SECOND, "ok", circuitFile({ paused: true, reason: `remote: ${reason} (command ${commandId}, by @ann)`, since: at / 1000 }));
}

function linesOf(messages: string[]): string[] {
  return messages.flatMap((text) => text.split("\n"));
}

describe("a remote pause, followed up by the cron", { timeout: 30_000 }, () => {
  it("is handed to the agent once confirmed, and its application is reported once", async () => {
    const environment = freshEnv();
    const agent = agentFor(environment, "beta");
    await agent(T0);
    await tick(environment, T0 + 10 * SECOND);
    const commandId = await queuePause(environment, "broker API down", T0 + 20 * SECOND);

    const handed = (await (await agent(T0 + MINUTE)).json()) as Accepted;
    expect(handed.commands).toEqual([expect.objectContaining({ id: commandId, reason: "broker API down", requestedBy: "@ann" })]);

    // The agent applied it and says so in its next ping, once (as the real agent does).
    const reported = await agent(T0 + 2 * MINUTE, {
      commandResult: { id: commandId, outcome: "applied", at: T0 + MINUTE + 2 * SECOND },
      files: pausedFiles(T0 + MINUTE + 2 * SECOND, commandId, "broker API down"),
    });
    expect(((await reported.json()) as Accepted).commands).toEqual([]);
    await tick(environment, T0 + 2 * MINUTE + 10 * SECOND);

    for (let minute = 3; minute <= 20; minute++) {
      const at = T0 + minute * MINUTE;
      const later = (await (await agent(at, { files: pausedFiles(T0 + MINUTE + 2 * SECOND, commandId, "broker API down") })).json()) as Accepted;
      expect(later.commands, `ping at minute ${minute}`).toEqual([]);
      await tick(environment, at + 10 * SECOND);
    }

    const lines = linesOf(await sentMessages(environment));
    expect(lines.filter((line) => line.includes(commandId) && !line.includes("CIRCUIT TRIPPED"))).toEqual([
      `⏸️ <b>beta</b> paused by remote command ${commandId}, applied at 14:01 UTC (host clock). Resume is a human edit of circuit.json on the host.`,
    ]);
    expect(lines.filter((line) => line.includes("CIRCUIT TRIPPED"))).toEqual([
      expect.stringContaining(`<b>beta</b> CIRCUIT TRIPPED: circuit paused: remote: broker API down (command ${commandId}, by @ann)`),
    ]);
    expect(lines.filter((line) => line.includes("NOT paused") || line.includes("not applied"))).toEqual([]);
  });

  it("still reports the application when the agent's result ping is overwritten before the next tick", async () => {
    // Pinging every 10 s, the ping carrying the result is replaced within seconds; the
    // cron, a minute apart (and reading through KV's lag), must not miss it.
    const environment = freshEnv({ intervalSeconds: 10 });
    const agent = agentFor(environment, "beta");
    await agent(T0);
    await tick(environment, T0 + 5 * SECOND);
    const commandId = await queuePause(environment, "maintenance", T0 + 10 * SECOND);
    expect(((await (await agent(T0 + 30 * SECOND)).json()) as Accepted).commands).toHaveLength(1);
    await agent(T0 + 40 * SECOND, {
      commandResult: { id: commandId, outcome: "applied", at: T0 + 31 * SECOND },
      files: pausedFiles(T0 + 31 * SECOND, commandId, "maintenance"),
    });
    for (let second = 50; second <= 15 * 60; second += 10) {
      const at = T0 + second * SECOND;
      const answer = (await (await agent(at, { files: pausedFiles(T0 + 31 * SECOND, commandId, "maintenance") })).json()) as Accepted;
      expect(answer.commands, `ping at ${second} s`).toEqual([]);
      if (second % 60 === 0) await tick(environment, at + 5 * SECOND);
    }
    const lines = linesOf(await sentMessages(environment));
    expect(lines.filter((line) => line.includes(`remote command ${commandId}, applied at 14:00 UTC`))).toHaveLength(1);
    expect(lines.filter((line) => line.includes("has not applied"))).toEqual([]);
  });

  it("tells the chat that trading was NOT paused when the agent is not allowed to pause, once", async () => {
    const environment = freshEnv();
    const agent = agentFor(environment, "beta");
    await agent(T0);
    await tick(environment, T0 + 10 * SECOND);
    const commandId = await queuePause(environment, "risk limit", T0 + 20 * SECOND);
    expect(((await (await agent(T0 + MINUTE)).json()) as Accepted).commands).toHaveLength(1);
    await agent(T0 + 2 * MINUTE, { commandResult: { id: commandId, outcome: "not_allowed", at: T0 + MINUTE + SECOND } });
    for (let minute = 2; minute <= 15; minute++) {
      const at = T0 + minute * MINUTE;
      if (minute > 2) expect(((await (await agent(at)).json()) as Accepted).commands, `minute ${minute}`).toEqual([]);
      await tick(environment, at + 10 * SECOND);
    }
    const lines = linesOf(await sentMessages(environment)).filter((line) => line.includes(commandId));
    expect(lines).toEqual([
      `⚠️ <b>beta</b> refused remote command ${commandId}: its agent runs without --allow-remote-pause. Trading was NOT paused.`,
    ]);
  });

  it("tells the chat the pause was not applied when no result arrives by the deadline, once", async () => {
    const environment = freshEnv();
    const agent = agentFor(environment, "beta");
    await agent(T0);
    await tick(environment, T0 + 10 * SECOND);
    const confirmedAt = T0 + 30 * SECOND;
    const commandId = await queuePause(environment, "broker API down", confirmedAt - 10 * SECOND);
    // An agent that takes the command but never answers (an older agent, or one that died).
    // The deadline: 3 pings (3 min) + KV lag (1 min) + cron period (1 min) = 5 min after
    // Confirm (at 0:30), so the tick at 6:10 is the first past it.
    const reportedAt: number[] = [];
    for (let minute = 1; minute <= 20; minute++) {
      const at = T0 + minute * MINUTE;
      await agent(at);
      const before = linesOf(await sentMessages(environment)).length;
      await tick(environment, at + 10 * SECOND);
      const fresh = linesOf(await sentMessages(environment)).slice(before);
      if (fresh.some((line) => line.includes(`has not applied remote pause ${commandId}`))) reportedAt.push(minute);
    }
    expect(reportedAt).toEqual([6]);
    const lines = linesOf(await sentMessages(environment)).filter((line) => line.includes(commandId));
    expect(lines).toEqual([
      `⚠️ <b>beta</b> has not applied remote pause ${commandId} 6 min after it was confirmed (host dark, or agent without --allow-remote-pause?). Trading may NOT be paused; the command stays queued until 14:15 UTC.`,
    ]);
  });

  it("reports a pause the host applies after the chat was told it had not", async () => {
    const environment = freshEnv();
    const agent = agentFor(environment, "beta");
    await agent(T0);
    await tick(environment, T0 + 10 * SECOND);
    const commandId = await queuePause(environment, "broker API down", T0 + 20 * SECOND);
    // The host is unreachable for 8 minutes, then picks the still-queued command up.
    for (let minute = 1; minute <= 8; minute++) await tick(environment, T0 + minute * MINUTE + 10 * SECOND);
    expect(linesOf(await sentMessages(environment)).filter((line) => line.includes(`has not applied remote pause ${commandId}`))).toHaveLength(1);

    const handed = (await (await agent(T0 + 9 * MINUTE)).json()) as Accepted;
    expect(handed.commands.map((command) => command.id)).toEqual([commandId]);
    await agent(T0 + 10 * MINUTE, {
      commandResult: { id: commandId, outcome: "applied", at: T0 + 9 * MINUTE + SECOND },
      files: pausedFiles(T0 + 9 * MINUTE + SECOND, commandId, "broker API down"),
    });
    for (let minute = 10; minute <= 14; minute++) {
      if (minute > 10) await agent(T0 + minute * MINUTE, { files: pausedFiles(T0 + 9 * MINUTE + SECOND, commandId, "broker API down") });
      await tick(environment, T0 + minute * MINUTE + 10 * SECOND);
    }
    const lines = linesOf(await sentMessages(environment));
    expect(lines.filter((line) => line.includes(`paused by remote command ${commandId}, applied at 14:09 UTC`))).toHaveLength(1);
  });

  it("works for a host id too long to fit in a button's 64 bytes of callback data", async () => {
    const longId = `trader-${"x".repeat(56)}`;
    const environment = testEnv({ hosts: [{ id: longId, allowRemotePause: true }] }, { kv: isolatedKv(env.WITNESS_KV) });
    const watch = callWatcher(environment);
    await postUpdate(environment, makeUpdate({ text: `/pause ${longId} disk full` }), { now: T0 });
    const [[confirm = "", cancel = ""] = []] = buttonData((await watch())[0]);
    for (const data of [confirm, cancel]) expect(new TextEncoder().encode(data).length, data).toBeLessThanOrEqual(64);

    await postUpdate(environment, makeCallback({ data: confirm }), { now: T0 + 10 * SECOND });
    expect((await watch()).map((call) => call.payload.text)).toContain("Pause queued");
    const handed = (await (await agentFor(environment, longId)(T0 + 20 * SECOND)).json()) as Accepted;
    expect(handed.commands).toEqual([expect.objectContaining({ reason: "disk full" })]);
  });

  it("says a long host's pause request expired once it was cancelled", async () => {
    const longId = `trader-${"y".repeat(56)}`;
    const environment = testEnv({ hosts: [{ id: longId, allowRemotePause: true }] }, { kv: isolatedKv(env.WITNESS_KV) });
    const watch = callWatcher(environment);
    await postUpdate(environment, makeUpdate({ text: `/pause ${longId} disk full` }), { now: T0 });
    const [[confirm = "", cancel = ""] = []] = buttonData((await watch())[0]);
    await postUpdate(environment, makeCallback({ data: cancel }), { now: T0 + 10 * SECOND });
    expect((await watch()).map((call) => call.payload.text)).toContain("Cancelled");
    await postUpdate(environment, makeCallback({ data: confirm }), { now: T0 + 20 * SECOND });
    expect((await watch()).map((call) => call.payload.text)).toContain("This pause request expired; send /pause again.");
  });
});
