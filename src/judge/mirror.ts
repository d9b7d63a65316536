// Turns what the agent reported about a file into what the file says. The Worker, not
// the agent, parses and validates contents, so a curl script can be an agent too. Every
// way a file can be bad is its own state; none of them ever becomes "ok" or silence.
import { z } from "zod";
import { CircuitContent, type FileReport, HeartbeatContent } from "../protocol.ts";

/** States beyond the agent's: the text arrived but is not JSON, or not the right JSON. */
export const MIRROR_PROBLEMS = ["missing", "empty", "unreadable", "too_large", "corrupt", "wrong_shape"] as const;
export type MirrorProblem = (typeof MIRROR_PROBLEMS)[number];

/** Extra heartbeat keys are shown to the operator; keep at most this many characters of them. */
const MAX_EXTRA_JSON_CHARS = 600;

const fileMeta = {
  size: z.number().int().nonnegative().optional(),
  mtime: z.number().int().nonnegative().optional(),
};

const problem = z.object({ state: z.enum(MIRROR_PROBLEMS), detail: z.string(), ...fileMeta });

export const MirroredHeartbeat = z.discriminatedUnion("state", [
  z.object({
    state: z.literal("ok"),
    at: z.number(),
    status: z.string(),
    /** The pipeline's extra keys as compact JSON, capped. */
    extra: z.string(),
    ...fileMeta,
  }),
  problem,
]);
export type MirroredHeartbeat = z.infer<typeof MirroredHeartbeat>;

export const MirroredCircuit = z.discriminatedUnion("state", [
  z.object({
    state: z.literal("ok"),
    paused: z.boolean(),
    reason: z.string().optional(),
    since: z.number().optional(),
    ...fileMeta,
  }),
  problem,
]);
export type MirroredCircuit = z.infer<typeof MirroredCircuit>;

const AGENT_STATE_DETAIL: Record<Exclude<FileReport["state"], "ok">, string> = {
  missing: "the file does not exist",
  empty: "the file is empty (0 bytes: a crash mid-write?)",
  unreadable: "the agent cannot read the file",
  too_large: "the file is larger than the agent sends",
};

function meta(report: FileReport): { size?: number; mtime?: number } {
  return {
    ...(report.size === undefined ? {} : { size: report.size }),
    ...(report.mtime === undefined ? {} : { mtime: report.mtime }),
  };
}

type Parsed<T> = { ok: true; value: T } | { ok: false; state: MirrorProblem; detail: string };

function parseText<T>(report: FileReport, schema: z.ZodType<T>): Parsed<T> {
  if (report.state !== "ok") {
    const detail = report.error ? `${AGENT_STATE_DETAIL[report.state]}: ${report.error}` : AGENT_STATE_DETAIL[report.state];
    return { ok: false, state: report.state, detail };
  }
  const text = report.text ?? "";
  if (text.trim() === "") return { ok: false, state: "empty", detail: AGENT_STATE_DETAIL.empty };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, state: "corrupt", detail: `not JSON (truncated write?): ${preview(text)}` };
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
    return { ok: false, state: "wrong_shape", detail: `${where}${issue?.message ?? "unexpected shape"}` };
  }
  return { ok: true, value: result.data };
}

function preview(text: string): string {
  const flat = text.replace(/\s+/g, " ");
  return flat.length > 60 ? `${flat.slice(0, 60)}…` : flat;
}

export function mirrorHeartbeat(report: FileReport): MirroredHeartbeat {
  const parsed = parseText(report, HeartbeatContent);
  if (!parsed.ok) return { state: parsed.state, detail: parsed.detail, ...meta(report) };
  const { at, status, iso: _iso, ...extra } = parsed.value;
  let extraJson = Object.keys(extra).length === 0 ? "" : JSON.stringify(extra);
  if (extraJson.length > MAX_EXTRA_JSON_CHARS) extraJson = `${extraJson.slice(0, MAX_EXTRA_JSON_CHARS)}…`;
  return { state: "ok", at, status, extra: extraJson, ...meta(report) };
}

export function mirrorCircuit(report: FileReport): MirroredCircuit {
  const parsed = parseText(report, CircuitContent);
  if (!parsed.ok) return { state: parsed.state, detail: parsed.detail, ...meta(report) };
  const { paused, reason, since } = parsed.value;
  return {
    state: "ok",
    paused,
    ...(reason === undefined ? {} : { reason }),
    ...(since === undefined ? {} : { since }),
    ...meta(report),
  };
}
