// The wire contract between an agent and the Worker (ping protocol v1), and the
// shapes of the two files the agent mirrors. Shared by the Worker and the Node agent,
// so it must stay free of Worker-only and Node-only APIs. Within v1 both sides ignore
// fields they do not know (zod's default strip), so an agent upgraded before the
// Worker, or a Worker before the agent, keeps working.
import { z } from "zod";

export const PROTOCOL_VERSION = 1;

export const TIMESTAMP_HEADER = "X-Witness-Timestamp";
export const SIGNATURE_HEADER = "X-Witness-Signature";

/** Largest request body the Worker reads; larger bodies get 413 before parsing. */
export const MAX_BODY_BYTES = 32 * 1024;
/** The agent sends at most this much of each file; larger files are reported as too_large. */
export const MAX_FILE_TEXT_BYTES = 8 * 1024;

export const HOST_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const HostId = z
  .string()
  .regex(HOST_ID_PATTERN, "host ids are 1-63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit");

/** What the agent could tell about a file from outside it, before anyone parsed it. */
export const FILE_STATES = ["ok", "missing", "empty", "unreadable", "too_large"] as const;
export const FileState = z.enum(FILE_STATES);
export type FileState = z.infer<typeof FileState>;

const unixMs = z.number().int().nonnegative().max(8_640_000_000_000_000);

export const FileReport = z
  .object({
    state: FileState,
    size: z.number().int().nonnegative().optional(),
    mtime: unixMs.optional(),
    /** Raw file text, only when state is "ok". The Worker parses it, not the agent. */
    text: z.string().max(MAX_FILE_TEXT_BYTES).optional(),
    /** The OS error for unreadable files (for the operator, not for logic). */
    error: z.string().max(200).optional(),
  })
  .refine((report) => report.state !== "ok" || report.text !== undefined, {
    message: "a file reported ok must carry its text",
    path: ["text"],
  });
export type FileReport = z.infer<typeof FileReport>;

export const PingBody = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    seq: z.number().int().nonnegative(),
    /** Agent clock, Unix ms, when this ping was built. */
    sentAt: unixMs,
    agent: z
      .object({
        version: z.string().min(1).max(32),
        /** When this agent process started (Unix ms): a change means the agent restarted. */
        startedAt: unixMs,
        /** The kernel's boot id: a change means the host rebooted. */
        bootId: z.string().min(1).max(64),
        kind: z.enum(["node", "shell"]).optional(),
        /**
         * "service" for the long-running agent (and the shell agent's timer); "once" and
         * "check" for a one-shot run beside it, which must never displace the service.
         */
        mode: z.enum(["service", "once", "check"]).optional(),
      }),
    /**
     * The most recent period in which pushes failed, kept by the agent until a newer
     * one, so a recovery message can tell a network partition from a dead host even if
     * the first ping after the gap is overwritten. Null when pushing never failed.
     */
    lastPushOutage: z
      .object({
        /** Agent clock, Unix ms, of the first failed push. */
        since: unixMs,
        /** Agent clock, Unix ms, of the push that succeeded again; absent while still failing. */
        until: unixMs.optional(),
        failures: z.number().int().positive(),
        lastError: z.string().max(200).optional(),
      })
      .nullable(),
    /** Id of the remote command the agent applied (or refused) since its last accepted push. */
    commandResult: z
      .object({
        id: z.string().min(1).max(64),
        outcome: z.enum(["applied", "already_paused", "not_allowed", "failed"]),
        at: unixMs,
        detail: z.string().max(200).optional(),
      })
      .optional(),
    files: z
      .object({
        heartbeat: FileReport,
        circuit: FileReport,
      }),
  });
export type PingBody = z.infer<typeof PingBody>;

export const PauseCommand = z
  .object({
    id: z.string().min(1).max(64),
    type: z.literal("pause"),
    reason: z.string().max(200),
    requestedBy: z.string().max(100),
    /** Server clock, Unix ms: the agent ignores the command after this. */
    expiresAt: unixMs,
  });
export type PauseCommand = z.infer<typeof PauseCommand>;

export const PingAccepted = z.object({
  ok: z.literal(true),
  serverTime: unixMs,
  commands: z.array(PauseCommand),
});
export type PingAccepted = z.infer<typeof PingAccepted>;

export const PingRejected = z.object({
  ok: z.literal(false),
  error: z.string(),
  field: z.string().optional(),
});
export type PingRejected = z.infer<typeof PingRejected>;

// ---- The mirrored files' own contents (written by the user's pipeline) ----

/** heartbeat.json: `at` is Unix seconds as Python's time.time() writes it. */
export const HeartbeatContent = z.looseObject({
  at: z.number().finite().positive(),
  status: z.string().max(200),
  iso: z.string().max(64).optional(),
});
export type HeartbeatContent = z.infer<typeof HeartbeatContent>;

/** circuit.json: a missing file means green; only a human ever writes paused: false. */
export const CircuitContent = z.looseObject({
  paused: z.boolean(),
  reason: z.string().max(500).optional(),
  since: z.number().finite().positive().optional(),
});
export type CircuitContent = z.infer<typeof CircuitContent>;
