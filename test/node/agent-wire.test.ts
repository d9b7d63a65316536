// The agent checks the wire at run time without zod (agent/src/wire.ts) to stay small;
// these tests hold those checks to the shared zod schemas in src/protocol.ts: the same
// constants, the same verdict on every sample, and no zod in the built bundle.
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import * as protocol from "../../src/protocol.ts";
import * as wire from "../../agent/src/wire.ts";
import { buildAgentBundle } from "./agent-harness.ts";

function validBody(): protocol.PingBody {
  return {
    v: 1,
    seq: 7,
    sentAt: 1_795_389_457_660,
    agent: { version: "0.1.0", startedAt: 1_795_389_000_000, bootId: "4b1c0c8e-2f1a-4a8e-9a57-1f0e0c7f0b11", kind: "node", mode: "service" },
    lastPushOutage: { since: 1_795_389_100_000, until: 1_795_389_200_000, failures: 3, lastError: "HTTP 503" },
    commandResult: { id: "cmd-1", outcome: "applied", at: 1_795_389_300_000 },
    files: {
      heartbeat: { state: "ok", size: 20, mtime: 1_795_389_457_000, text: '{"at":1,"status":"ok"}' },
      circuit: { state: "missing" },
    },
  };
}

const DELETE = Symbol("delete");
/** One field of the body set (or deleted) on purpose: [name, path, value]. */
type Mutation = [name: string, path: string[], value: unknown];
const mutations: Mutation[] = [
  ["valid as built", [], undefined],
  ["no outage", ["lastPushOutage"], null],
  ["no command result", ["commandResult"], DELETE],
  ["no kind", ["agent", "kind"], DELETE],
  ["no mode", ["agent", "mode"], DELETE],
  ["mode once", ["agent", "mode"], "once"],
  ["mode check", ["agent", "mode"], "check"],
  ["unknown mode", ["agent", "mode"], "daemon"],
  ["unknown kind", ["agent", "kind"], "python"],
  ["wrong version", ["v"], 2],
  ["negative seq", ["seq"], -1],
  ["fractional seq", ["seq"], 1.5],
  ["sentAt past the max", ["sentAt"], 8_640_000_000_000_001],
  ["empty agent version", ["agent", "version"], ""],
  ["agent version of 33", ["agent", "version"], "v".repeat(33)],
  ["boot id of 65", ["agent", "bootId"], "b".repeat(65)],
  ["outage with 0 failures", ["lastPushOutage", "failures"], 0],
  ["outage error of 201", ["lastPushOutage", "lastError"], "e".repeat(201)],
  ["outage error of 200", ["lastPushOutage", "lastError"], "e".repeat(200)],
  ["command id empty", ["commandResult", "id"], ""],
  ["unknown outcome", ["commandResult", "outcome"], "ignored"],
  ["command detail of 201", ["commandResult", "detail"], "d".repeat(201)],
  ["ok without text", ["files", "heartbeat", "text"], DELETE],
  ["text at the cap", ["files", "heartbeat", "text"], "x".repeat(protocol.MAX_FILE_TEXT_BYTES)],
  ["text past the cap", ["files", "heartbeat", "text"], "x".repeat(protocol.MAX_FILE_TEXT_BYTES + 1)],
  ["unknown file state", ["files", "circuit", "state"], "corrupt"],
  ["negative size", ["files", "circuit", "size"], -1],
  ["file error of 201", ["files", "circuit", "error"], "e".repeat(201)],
];

function mutated(path: string[], value: unknown): unknown {
  const body = validBody() as unknown as Record<string, unknown>;
  if (path.length === 0) return body;
  let node = body;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
  const last = path.at(-1) ?? "";
  if (value === DELETE) delete node[last];
  else node[last] = value;
  return body;
}

describe("agent/src/wire.ts agrees with src/protocol.ts", () => {
  it("the same constants", () => {
    expect(wire.PROTOCOL_VERSION).toBe(protocol.PROTOCOL_VERSION);
    expect(wire.TIMESTAMP_HEADER).toBe(protocol.TIMESTAMP_HEADER);
    expect(wire.SIGNATURE_HEADER).toBe(protocol.SIGNATURE_HEADER);
    expect(wire.MAX_BODY_BYTES).toBe(protocol.MAX_BODY_BYTES);
    expect(wire.MAX_FILE_TEXT_BYTES).toBe(protocol.MAX_FILE_TEXT_BYTES);
    expect(wire.HOST_ID_PATTERN.source).toBe(protocol.HOST_ID_PATTERN.source);
  });

  it.each(mutations)("ping body, %s: the same verdict as the zod schema", (_name, path, value) => {
    const body = mutated(path, value);
    const zodOk = protocol.PingBody.safeParse(body).success;
    const problems = wire.pingBodyProblems(body as unknown as protocol.PingBody);
    expect({ ok: problems.length === 0, problems }).toMatchObject({ ok: zodOk });
  });

  const command = { id: "cmd-1", type: "pause", reason: "operator pressed pause", requestedBy: "telegram:@alice", expiresAt: 1_795_389_457_660 };
  const answers: Array<[string, unknown]> = [
    ["accepted, no commands", { ok: true, serverTime: 1_795_389_457_660, commands: [] }],
    ["accepted, a pause and an unknown field", { ok: true, serverTime: 1_795_389_457_660, commands: [{ ...command, extra: 1 }], write: "none" }],
    ["a command of another type", { ok: true, serverTime: 1, commands: [{ ...command, type: "resume" }] }],
    ["a command id too long", { ok: true, serverTime: 1, commands: [{ ...command, id: "c".repeat(65) }] }],
    ["a requester of 101", { ok: true, serverTime: 1, commands: [{ ...command, requestedBy: "r".repeat(101) }] }],
    ["no serverTime", { ok: true, commands: [] }],
    ["commands not a list", { ok: true, serverTime: 1, commands: {} }],
    ["a captive portal", "<html>Please log in</html>"],
    ["null", null],
  ];

  it.each(answers)("200 answer, %s: the same verdict and the same data as the zod schema", (_name, json) => {
    const zod = protocol.PingAccepted.safeParse(json);
    const ours = wire.parsePingAccepted(json);
    expect(ours).toEqual(zod.success ? zod.data : undefined);
  });

  const rejections: Array<[string, unknown]> = [
    ["error and field", { ok: false, error: "timestamp outside the window", field: "X-Witness-Timestamp" }],
    ["error only", { ok: false, error: "bad signature" }],
    ["field not a string", { ok: false, error: "x", field: 3 }],
    ["no error", { ok: false }],
    ["ok true", { ok: true, error: "x" }],
  ];

  it.each(rejections)("error answer, %s: the same verdict and the same data as the zod schema", (_name, json) => {
    const zod = protocol.PingRejected.safeParse(json);
    expect(wire.parsePingRejected(json)).toEqual(zod.success ? zod.data : undefined);
  });

  it("the built bundle carries no zod, and stays small", async () => {
    const bundle = await readFile(await buildAgentBundle(), "utf8");
    expect(bundle).not.toMatch(/ZodError|zod\/v4/);
    expect(Buffer.byteLength(bundle)).toBeLessThan(64 * 1024);
  });
});
