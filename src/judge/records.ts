// The ping record: what the Worker keeps of a host's last accepted ping, with both
// mirrored files already parsed. Only the ping route writes it; the cron only reads it.
import { z } from "zod";
import { MirroredCircuit, MirroredHeartbeat, mirrorCircuit, mirrorHeartbeat } from "./mirror.ts";
import type { PingBody } from "../protocol.ts";

export const PingRecord = z.object({
  hostId: z.string(),
  /** Worker clock, Unix ms, when this ping was accepted. */
  receivedAt: z.number(),
  /** Agent clock, Unix ms (the signed timestamp header). */
  sentAt: z.number(),
  seq: z.number(),
  agent: z.object({
    version: z.string(),
    startedAt: z.number(),
    bootId: z.string(),
    kind: z.enum(["node", "shell"]).optional(),
  }),
  lastPushOutage: z
    .object({ since: z.number(), until: z.number().optional(), failures: z.number(), lastError: z.string().optional() })
    .nullable(),
  commandResult: z
    .object({ id: z.string(), outcome: z.string(), at: z.number(), detail: z.string().optional() })
    .optional(),
  heartbeat: MirroredHeartbeat,
  circuit: MirroredCircuit,
});
export type PingRecord = z.infer<typeof PingRecord>;

/** A heartbeat `at` further ahead of the host's own send time than this is not a time it beat. */
const MAX_HEARTBEAT_AHEAD_SECONDS = 300;

/**
 * A heartbeat from the future would read as fresh forever, so stale could never fire:
 * most often `at` in milliseconds (time.time() * 1000). Measured on the host's own
 * clock (its send time), so clock skew cannot trigger it.
 */
function heartbeatFromTheFuture(heartbeat: MirroredHeartbeat, sentAt: number): MirroredHeartbeat {
  if (heartbeat.state !== "ok") return heartbeat;
  const aheadSeconds = heartbeat.at - sentAt / 1000;
  if (aheadSeconds <= MAX_HEARTBEAT_AHEAD_SECONDS) return heartbeat;
  const hint = heartbeat.at > 1e11 ? " (milliseconds? write Unix seconds, as time.time() does)" : "";
  return {
    state: "wrong_shape",
    detail: `at: ${heartbeat.at} is ${Math.round(aheadSeconds)} s in the future by the host's own clock${hint}`,
    ...(heartbeat.size === undefined ? {} : { size: heartbeat.size }),
    ...(heartbeat.mtime === undefined ? {} : { mtime: heartbeat.mtime }),
  };
}

export function recordFromPing(hostId: string, body: PingBody, sentAt: number, receivedAt: number): PingRecord {
  return {
    hostId,
    receivedAt,
    sentAt,
    seq: body.seq,
    agent: body.agent,
    lastPushOutage: body.lastPushOutage,
    ...(body.commandResult === undefined ? {} : { commandResult: body.commandResult }),
    heartbeat: heartbeatFromTheFuture(mirrorHeartbeat(body.files.heartbeat), sentAt),
    circuit: mirrorCircuit(body.files.circuit),
  };
}

/** Host clock minus Worker clock, in seconds (request latency counts against the host). */
export function clockSkewSeconds(record: PingRecord): number {
  return (record.sentAt - record.receivedAt) / 1000;
}

/**
 * Heartbeat age in seconds as of the ping, measured on the host's own clock (send time
 * minus the heartbeat's `at`), so a skewed clock cannot fake or hide staleness.
 */
export function heartbeatAgeAtPingSeconds(record: PingRecord): number | null {
  if (record.heartbeat.state !== "ok") return null;
  return record.sentAt / 1000 - record.heartbeat.at;
}

/** Heartbeat age at Worker time `nowMs`: its age at the ping plus the time since. */
export function heartbeatAgeSeconds(record: PingRecord, nowMs: number): number | null {
  const atPing = heartbeatAgeAtPingSeconds(record);
  return atPing === null ? null : atPing + (nowMs - record.receivedAt) / 1000;
}

/**
 * How far inside its limit a skewed clock must come back to count as fixed. Skew is
 * measured through request latency, which jitters: a clock near the limit would
 * otherwise flip across it on every ping (a KV write each, and a flapping condition).
 */
export function skewClearSeconds(skewLimitSeconds: number): number {
  return skewLimitSeconds - Math.min(1, 0.2 * skewLimitSeconds);
}

/** Whether the record's clock is skewed, given whether it counted as skewed before. */
export function isSkewed(record: PingRecord, skewLimitSeconds: number, skewedBefore: boolean): boolean {
  const skew = Math.abs(clockSkewSeconds(record));
  return skew > (skewedBefore ? skewClearSeconds(skewLimitSeconds) : skewLimitSeconds);
}

/**
 * Everything in a record whose change the judge must see promptly. A heartbeat `at`
 * that merely advances is not here: staleness only needs it to within a refresh. Nor
 * is the skew, which needs hysteresis (see ping-policy.ts).
 */
export function meaningfulFingerprint(record: PingRecord): string {
  const { heartbeat, circuit } = record;
  return JSON.stringify([
    heartbeat.state,
    heartbeat.state === "ok" ? heartbeat.status : heartbeat.detail,
    circuit.state === "ok" ? [circuit.paused, circuit.reason ?? null, circuit.since ?? null] : [circuit.state, circuit.detail],
    record.agent.bootId,
    record.agent.startedAt,
    record.lastPushOutage?.since ?? null,
    record.lastPushOutage?.until ?? null,
    record.commandResult?.id ?? null,
  ]);
}
