// The ping protocol v1 as the agent needs it at run time, without zod. The contract is
// src/protocol.ts (its zod schemas are what the Worker enforces); the agent imports only
// its types, because bundling zod tripled the agent's size and cost it resident memory
// on every host. test/node/agent-wire.test.ts holds these checks to the schemas: the
// same constants, and the same verdict on every sample body and answer.
import type { FileReport, PauseCommand, PingAccepted, PingBody, PingRejected } from "../../src/protocol.ts";

export const PROTOCOL_VERSION = 1;
export const TIMESTAMP_HEADER = "X-Witness-Timestamp";
export const SIGNATURE_HEADER = "X-Witness-Signature";
export const MAX_BODY_BYTES = 32 * 1024;
export const MAX_FILE_TEXT_BYTES = 8 * 1024;
export const HOST_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

const MAX_UNIX_MS = 8_640_000_000_000_000;
const FILE_STATES: readonly string[] = ["ok", "missing", "empty", "unreadable", "too_large"];
const AGENT_KINDS: readonly string[] = ["node", "shell"];
const AGENT_MODES: readonly string[] = ["service", "once", "check"];
const COMMAND_OUTCOMES: readonly string[] = ["applied", "already_paused", "not_allowed", "failed"];

type Record_ = Record<string, unknown>;
const isRecord = (value: unknown): value is Record_ => typeof value === "object" && value !== null && !Array.isArray(value);
const isUnixMs = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= MAX_UNIX_MS;
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;
const isText = (value: unknown, min: number, max: number): value is string =>
  typeof value === "string" && value.length >= min && value.length <= max;

/**
 * What in a ping the agent built breaks protocol v1 (empty when nothing): the agent's
 * own bug, logged once. Paths are spelled as zod spells them.
 */
export function pingBodyProblems(body: PingBody): string[] {
  const problems: string[] = [];
  const need = (ok: boolean, path: string, what: string) => {
    if (!ok) problems.push(`${path}: ${what}`);
  };
  need(body.v === PROTOCOL_VERSION, "v", `must be ${PROTOCOL_VERSION}`);
  need(isCount(body.seq), "seq", "must be a whole number ≥ 0");
  need(isUnixMs(body.sentAt), "sentAt", "must be Unix ms");
  const agent = body.agent;
  need(isText(agent.version, 1, 32), "agent.version", "must be 1-32 characters");
  need(isUnixMs(agent.startedAt), "agent.startedAt", "must be Unix ms");
  need(isText(agent.bootId, 1, 64), "agent.bootId", "must be 1-64 characters");
  need(agent.kind === undefined || AGENT_KINDS.includes(agent.kind), "agent.kind", "must be node or shell");
  need(agent.mode === undefined || AGENT_MODES.includes(agent.mode), "agent.mode", "must be service, once or check");
  const outage = body.lastPushOutage;
  if (outage !== null) {
    need(isUnixMs(outage.since), "lastPushOutage.since", "must be Unix ms");
    need(outage.until === undefined || isUnixMs(outage.until), "lastPushOutage.until", "must be Unix ms");
    need(Number.isSafeInteger(outage.failures) && outage.failures > 0, "lastPushOutage.failures", "must be a whole number > 0");
    need(outage.lastError === undefined || isText(outage.lastError, 0, 200), "lastPushOutage.lastError", "must be at most 200 characters");
  }
  const result = body.commandResult;
  if (result !== undefined) {
    need(isText(result.id, 1, 64), "commandResult.id", "must be 1-64 characters");
    need(COMMAND_OUTCOMES.includes(result.outcome), "commandResult.outcome", "is not an outcome");
    need(isUnixMs(result.at), "commandResult.at", "must be Unix ms");
    need(result.detail === undefined || isText(result.detail, 0, 200), "commandResult.detail", "must be at most 200 characters");
  }
  for (const name of ["heartbeat", "circuit"] as const) fileReportProblems(body.files[name], `files.${name}`, need);
  return problems;
}

function fileReportProblems(report: FileReport, path: string, need: (ok: boolean, path: string, what: string) => void): void {
  need(FILE_STATES.includes(report.state), `${path}.state`, "is not a file state");
  need(report.size === undefined || isCount(report.size), `${path}.size`, "must be a whole number ≥ 0");
  need(report.mtime === undefined || isUnixMs(report.mtime), `${path}.mtime`, "must be Unix ms");
  need(report.text === undefined || isText(report.text, 0, MAX_FILE_TEXT_BYTES), `${path}.text`, `must be at most ${MAX_FILE_TEXT_BYTES} characters`);
  need(report.error === undefined || isText(report.error, 0, 200), `${path}.error`, "must be at most 200 characters");
  need(report.state !== "ok" || report.text !== undefined, `${path}.text`, "a file reported ok must carry its text");
}

/** The Worker's 200 answer, or undefined when the JSON is not one (fields it does not know are dropped). */
export function parsePingAccepted(json: unknown): PingAccepted | undefined {
  if (!isRecord(json) || json.ok !== true || !isUnixMs(json.serverTime) || !Array.isArray(json.commands)) return undefined;
  const commands: PauseCommand[] = [];
  for (const entry of json.commands as unknown[]) {
    const command = parsePauseCommand(entry);
    if (command === undefined) return undefined;
    commands.push(command);
  }
  return { ok: true, serverTime: json.serverTime, commands };
}

function parsePauseCommand(json: unknown): PauseCommand | undefined {
  if (!isRecord(json)) return undefined;
  const { id, type, reason, requestedBy, expiresAt } = json;
  if (!isText(id, 1, 64) || type !== "pause" || !isText(reason, 0, 200) || !isText(requestedBy, 0, 100) || !isUnixMs(expiresAt)) return undefined;
  return { id, type, reason, requestedBy, expiresAt };
}

/** The Worker's error answer (400, 401, 404, 413, …), or undefined. */
export function parsePingRejected(json: unknown): PingRejected | undefined {
  if (!isRecord(json) || json.ok !== false || typeof json.error !== "string") return undefined;
  if (json.field !== undefined && typeof json.field !== "string") return undefined;
  return { ok: false, error: json.error, ...(json.field !== undefined ? { field: json.field } : {}) };
}
