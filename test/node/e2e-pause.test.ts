// The remote kill switch end to end, every real part running: the Worker's deploy build
// under wrangler dev, the bundled agent as a child process writing a real circuit.json
// in a temp dir, the Telegram stand-in on 127.0.0.1. The phone's side is played by
// POSTing Telegram updates to /telegram/webhook with the generated secret. The cron
// ticker is off: the monitor judges each ping as it arrives and sends on its own alarm,
// and the few ticks a scenario runs itself only prove that a later cron says nothing
// twice. One Worker, one host per scenario; the scenarios run one after another.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ensureAgentBundle } from "../support/agent-process.ts";
import type { RecordedCall } from "../support/fake-telegram.ts";
import { DEMO_AGENT_INTERVAL_SECONDS, DEMO_CHAT_ID, DEMO_OPERATOR_USER_ID, type LocalStack, type StackHost, startLocalStack, waitUntil } from "../support/local-stack.ts";
import { phoneText } from "../support/phone.ts";
import { buttonPress, keyboardOf, type TelegramUser, textUpdate } from "../support/telegram-updates.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

const HOSTS = {
  allowed: "pause-allowed",
  refused: "pause-refused",
  stranger: "pause-stranger",
} as const;

/** The shortest push interval the demo hosts accept (half their 10 s intervalSeconds, and a second). */
const AGENT_INTERVAL_SECONDS = DEMO_AGENT_INTERVAL_SECONDS;
const OWNER_CHAT = Number(DEMO_CHAT_ID);
const OWNER: TelegramUser = { id: DEMO_OPERATOR_USER_ID, is_bot: false, first_name: "Ann", username: "ann" };
const STRANGER_CHAT = 666_000_111;
const STRANGER: TelegramUser = { id: 666, is_bot: false, first_name: "Mallory", username: "mallory" };
/** Every host starts with a resumed breaker: a remote pause must replace it, in one step. */
const OLD_CIRCUIT = '{"paused": false, "reason": "resumed by alice after checking fills", "since": 1795389457.66}\n';

let dir = "";
let stack: LocalStack | undefined;

function running(): LocalStack {
  if (stack === undefined) throw new Error("the local stack did not start (see beforeAll)");
  return stack;
}

const host = (id: string): StackHost => running().host(id);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function calls(): RecordedCall[] {
  const local = running();
  return local.telegram.calls(local.worker.secrets.TELEGRAM_BOT_TOKEN);
}

/** Every Bot API call made after `since` calls had been recorded. */
const callsAfter = (since: number): RecordedCall[] => calls().slice(since);

/** What the owner's phone shows, message by message (the cron's messages and the webhook's replies). */
function ownerMessages(): string[] {
  return calls()
    .filter((call) => call.method === "sendMessage" && String(call.payload.chat_id) === String(OWNER_CHAT))
    .map((call) => phoneText(String(call.payload.text)));
}

/** The phone's lines that mention remote command `commandId`. */
const linesAbout = (commandId: string): string[] =>
  ownerMessages()
    .flatMap((message) => message.split("\n"))
    .filter((line) => line.includes(`remote command ${commandId}`) || line.includes(`remote pause ${commandId}`));

/**
 * Reads circuit.json over and over while the agent may be replacing it, and keeps every
 * read that was neither the old bytes nor a whole paused circuit (a torn or missing file).
 */
class CircuitWatcher {
  reads = 0;
  oldReads = 0;
  newReads = 0;
  readonly bad: string[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;
  private readonly path: string;
  private readonly isNew: (text: string) => boolean;

  constructor(path: string, isNew: (text: string) => boolean) {
    this.path = path;
    this.isNew = isNew;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let text: string;
      try {
        text = await readFile(this.path, "utf8");
      } catch (error) {
        this.bad.push(`read failed: ${error instanceof Error ? error.message : String(error)}`);
        await sleep(2);
        continue;
      }
      this.reads++;
      if (text === OLD_CIRCUIT) this.oldReads++;
      else if (this.isNew(text)) this.newReads++;
      else this.bad.push(text);
      await sleep(2);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

interface PausedCircuit {
  paused: true;
  reason: string;
  since: number;
}

function parsePaused(text: string): PausedCircuit | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { paused, reason, since } = value as Record<string, unknown>;
  if (paused !== true || typeof reason !== "string" || typeof since !== "number") return undefined;
  return { paused, reason, since };
}

interface PausePrompt {
  call: RecordedCall;
  commandId: string;
  confirmData: string;
}

/** The owner types /pause; returns the confirmation prompt the phone got, checked for its text and buttons. */
async function askToPause(hostId: string, reason: string): Promise<PausePrompt> {
  const before = calls().length;
  const answer = await running().worker.sendTelegramUpdate(textUpdate({ chatId: OWNER_CHAT, from: OWNER, text: `/pause ${hostId} ${reason}` }));
  expect(answer).toEqual({ status: 200, body: { ok: true } });
  // The webhook answers after its reply was sent: the prompt is already recorded.
  const replies = callsAfter(before);
  expect(replies.map((call) => call.method)).toEqual(["sendMessage"]);
  const [call] = replies;
  if (call === undefined) throw new Error("no reply to /pause");
  expect(String(call.payload.chat_id)).toBe(String(OWNER_CHAT));
  expect(phoneText(String(call.payload.text))).toBe(
    `⏸️ Pause trading on ${hostId}?\nReason: ${reason}\nThe agent writes circuit.json paused; resuming stays a human edit on the host.`,
  );
  const keyboard = keyboardOf(call);
  expect(keyboard?.inline_keyboard.map((row) => row.map((button) => button.text))).toEqual([["⏸️ Confirm pause", "Cancel"]]);
  const [[confirm, cancel] = []] = keyboard?.inline_keyboard ?? [];
  const match = new RegExp(`^pausec\\|${hostId}\\|([0-9a-f]{8})$`).exec(confirm?.callback_data ?? "");
  const commandId = match?.[1];
  if (confirm?.callback_data === undefined || commandId === undefined) throw new Error(`unexpected Confirm button: ${JSON.stringify(confirm)}`);
  expect(cancel?.callback_data).toBe(`pausex|${hostId}|${commandId}`);
  return { call, commandId, confirmData: confirm.callback_data };
}

/** The owner presses Confirm under the prompt; checks the phone's spinner was answered and the prompt edited. */
async function pressConfirm(prompt: PausePrompt, hostId: string): Promise<void> {
  const before = calls().length;
  const messageId = prompt.call.messageId;
  if (messageId === undefined) throw new Error("the stand-in gave the prompt no message id");
  const keyboard = keyboardOf(prompt.call);
  const answer = await running().worker.sendTelegramUpdate(
    buttonPress({ chatId: OWNER_CHAT, from: OWNER, data: prompt.confirmData, messageId, ...(keyboard === undefined ? {} : { keyboard }) }),
  );
  expect(answer).toEqual({ status: 200, body: { ok: true } });
  const replies = callsAfter(before);
  expect(replies.map((call) => call.method)).toEqual(["answerCallbackQuery", "editMessageText"]);
  expect(replies[0]?.payload.text).toBe("Pause queued");
  expect(replies[1]?.payload).toMatchObject({ chat_id: OWNER_CHAT, message_id: messageId });
  expect(phoneText(String(replies[1]?.payload.text))).toMatch(
    new RegExp(`^⏸️ Pause for ${hostId} queued by @ann at \\d\\d:\\d\\d UTC \\(command ${prompt.commandId}\\); waiting for the host to apply it\\.$`),
  );
}

/**
 * Waits, running no tick, until the phone has a line about `commandId`: the agent reports
 * on its next push, the monitor judges that ping at once and sends on its alarm.
 */
function waitUntilTold(commandId: string, timeoutMs: number): Promise<string[]> {
  return waitUntil(`the chat to hear about remote command ${commandId} (phone so far: ${JSON.stringify(ownerMessages())})`, timeoutMs, () => {
    const told = linesAbout(commandId);
    return told.length > 0 ? told : undefined;
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "witness-e2e-pause-"));
  const bundle = await ensureAgentBundle(root, join(dir, "witness-agent.mjs"));
  const dataDir = (id: string) => join(dir, "hosts", id);
  for (const id of Object.values(HOSTS)) {
    await mkdir(dataDir(id), { recursive: true });
    await writeFile(join(dataDir(id), "circuit.json"), OLD_CIRCUIT);
  }
  stack = await startLocalStack({
    root,
    dir,
    agentBundle: bundle,
    agentIntervalSeconds: AGENT_INTERVAL_SECONDS,
    pipelineEveryMs: 2000,
    tickEveryMs: null,
    prebuiltWorker: true,
    hosts: Object.values(HOSTS).map((id) => ({
      id,
      dataDir: dataDir(id),
      // Every host allows remote pause in the Worker's config; only the agent flag differs.
      settings: { allowRemotePause: true },
      agentAllowsRemotePause: id !== HOSTS.refused,
    })),
  });
  const local = stack;
  await waitUntil("every agent's first accepted ping", 60_000, async () => {
    const status = await local.worker.status();
    return status.hosts.every((entry) => entry.lastPingAt !== null) ? true : undefined;
  });
  // startLocalStack's first tick said "watching"; from here on the phone only hears about pauses.
  for (const id of Object.values(HOSTS)) {
    const agent = local.host(id).agent;
    if (agent === null) throw new Error(`the agent for ${id} is not running`);
    await agent.waitForLine(new RegExp(`remote pause ${id === HOSTS.refused ? "off" : "ALLOWED"}`), 10_000);
  }
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe("remote pause from the phone, with the real agent", () => {
  test("allowed host, agent with --allow-remote-pause: /pause, Confirm → circuit.json paused atomically → the chat hears it was applied, once", async () => {
    const target = host(HOSTS.allowed);
    const agent = target.agent;
    if (agent === null) throw new Error("no agent");
    const watcher = new CircuitWatcher(target.circuitPath, (text) => parsePaused(text) !== undefined);
    try {
      const prompt = await askToPause(HOSTS.allowed, "broker API down");
      // Not queued before Confirm: two pushes later the breaker is still as it was.
      await sleep(2 * AGENT_INTERVAL_SECONDS * 1000 + 1000);
      expect(await readFile(target.circuitPath, "utf8")).toBe(OLD_CIRCUIT);

      const confirmedAt = Date.now();
      await pressConfirm(prompt, HOSTS.allowed);
      const circuit = await waitUntil("circuit.json to become paused", 3 * AGENT_INTERVAL_SECONDS * 1000 + 10_000, async () =>
        parsePaused(await readFile(target.circuitPath, "utf8")),
      50);
      const appliedAfterMs = Date.now() - confirmedAt;
      expect(circuit).toEqual({
        paused: true,
        reason: `remote: broker API down (command ${prompt.commandId}, by @ann)`,
        since: expect.any(Number),
      });
      expect(circuit.since * 1000).toBeGreaterThanOrEqual(confirmedAt - 1000);
      expect(circuit.since * 1000).toBeLessThanOrEqual(Date.now());
      // The next push (within one interval) is handed the command; allow a slow machine.
      expect(appliedAfterMs).toBeLessThan(2 * AGENT_INTERVAL_SECONDS * 1000 + 5000);
      await agent.waitForLine(new RegExp(`remote pause applied: .* now paused \\(command ${prompt.commandId} by @ann: broker API down\\)`), 5000);

      // The ping that shows the circuit paused also carries the outcome; the monitor tells
      // the chat as it judges that ping, without waiting for a cron.
      const hhmm = new Date(circuit.since * 1000).toISOString().slice(11, 16);
      const applied = `⏸️ ${HOSTS.allowed} paused by remote command ${prompt.commandId}, applied at ${hhmm} UTC (host clock). Resume is a human edit of circuit.json on the host.`;
      expect(await waitUntilTold(prompt.commandId, 2 * AGENT_INTERVAL_SECONDS * 1000 + 10_000)).toEqual([applied]);
      const seen = (await running().worker.status()).hosts.find((entry) => entry.id === HOSTS.allowed);
      expect(seen?.circuit?.["paused"]).toBe(true);

      // Later ticks do not say it again (and the agent is not handed the command again).
      await sleep(2 * AGENT_INTERVAL_SECONDS * 1000);
      await running().worker.tick();
      await running().worker.tick();
      expect(linesAbout(prompt.commandId)).toEqual([applied]);
      expect(agent.output().filter((line) => line.includes(`remote pause`) && line.includes(prompt.commandId))).toHaveLength(1);
      expect(parsePaused(await readFile(target.circuitPath, "utf8"))).toEqual(circuit);
    } finally {
      await watcher.stop();
    }
    // Every read during the run was the old file or the whole new one: never torn, never missing.
    expect(watcher.bad).toEqual([]);
    expect(watcher.oldReads).toBeGreaterThan(0);
    expect(watcher.newReads).toBeGreaterThan(0);
  }, 90_000);

  test("host allowed in config, agent without --allow-remote-pause: circuit.json untouched, the chat is told trading was NOT paused", async () => {
    const target = host(HOSTS.refused);
    const agent = target.agent;
    if (agent === null) throw new Error("no agent");
    const watcher = new CircuitWatcher(target.circuitPath, () => false);
    try {
      const prompt = await askToPause(HOSTS.refused, "broker API down");
      await pressConfirm(prompt, HOSTS.refused);
      await agent.waitForLine(new RegExp(`remote pause ${prompt.commandId} requested by @ann refused: this agent runs without --allow-remote-pause`), 3 * AGENT_INTERVAL_SECONDS * 1000 + 10_000);

      const refused = `⚠️ ${HOSTS.refused} refused remote command ${prompt.commandId}: its agent runs without --allow-remote-pause. Trading was NOT paused.`;
      expect(await waitUntilTold(prompt.commandId, 2 * AGENT_INTERVAL_SECONDS * 1000 + 10_000)).toEqual([refused]);
      await sleep(2 * AGENT_INTERVAL_SECONDS * 1000);
      await running().worker.tick();
      expect(linesAbout(prompt.commandId)).toEqual([refused]);
    } finally {
      await watcher.stop();
    }
    expect(await readFile(target.circuitPath, "utf8")).toBe(OLD_CIRCUIT);
    expect(watcher.bad).toEqual([]);
    expect(watcher.oldReads).toBe(watcher.reads);
    expect(watcher.reads).toBeGreaterThan(0);
  }, 90_000);

  test("a stranger's chat sends /pause and presses a forged Confirm: nothing is queued, circuit.json unchanged", async () => {
    const target = host(HOSTS.stranger);
    const agent = target.agent;
    if (agent === null) throw new Error("no agent");
    const local = running();

    // Without the webhook secret nothing is even read.
    const unsigned = await local.worker.sendTelegramUpdate(textUpdate({ chatId: OWNER_CHAT, from: OWNER, text: `/pause ${HOSTS.stranger} x` }), { secret: null });
    expect(unsigned.status).toBe(401);

    const before = calls().length;
    const typed = await local.worker.sendTelegramUpdate(
      textUpdate({ chatId: STRANGER_CHAT, from: STRANGER, text: `/pause ${HOSTS.stranger} broker API down` }),
    );
    expect(typed).toEqual({ status: 200, body: { ok: true } });
    // Not obeyed, and not answered either: no prompt to press.
    expect(callsAfter(before)).toEqual([]);

    // A stranger guessing the button's data gets "Not allowed." and nothing else.
    const pressed = await local.worker.sendTelegramUpdate(
      buttonPress({ chatId: STRANGER_CHAT, from: STRANGER, data: `pausec|${HOSTS.stranger}|00000000`, messageId: 1 }),
    );
    expect(pressed).toEqual({ status: 200, body: { ok: true } });
    expect(callsAfter(before).map((call) => [call.method, call.payload.text])).toEqual([["answerCallbackQuery", "Not allowed."]]);
    // Both are logged on the Worker's side, for whoever wonders who is knocking.
    await waitUntil("the Worker's log lines about the stranger", 10_000, () => {
      const ignored = local.worker.recentLog().filter((line) => line.includes(`webhook: ignored an update from chat ${STRANGER_CHAT}, which is not on the allowlist`));
      return ignored.length >= 2 ? true : undefined;
    });

    // The agent, which would apply a queued pause, keeps pushing and is handed nothing.
    await sleep(2 * AGENT_INTERVAL_SECONDS * 1000 + 1000);
    await local.worker.tick();
    expect(await readFile(target.circuitPath, "utf8")).toBe(OLD_CIRCUIT);
    expect(agent.output().filter((line) => line.includes("remote pause") && !line.includes("remote pause ALLOWED"))).toEqual([]);
    expect(ownerMessages().filter((message) => message.includes(HOSTS.stranger) && !message.includes("is watching"))).toEqual([]);
    expect(calls().filter((call) => String(call.payload.chat_id) === String(STRANGER_CHAT) && call.method === "sendMessage")).toEqual([]);
  }, 60_000);
});
