// A stand-in for the user's pipeline: it rewrites heartbeat.json atomically (temp
// file, fsync, rename, as seed 003 asks) every few seconds with a fresh `at`. It keeps
// whatever status and extra keys the file holds, so a hand edit to a bad status stays
// bad, and it leaves a file it cannot parse alone (the corrupt state is the point).
// It pauses while paused() or while the stop file exists, so the heartbeat goes stale.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/** Writes `text` to `path` so a reader sees the old file or the new one, never half of one. */
export function writeFileAtomic(path: string, text: string): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temp, "w", 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
}

/** A heartbeat as a Python pipeline writes it: `at` in float seconds, plus `iso`. */
export function heartbeatText(fields: Record<string, unknown>, nowMs = Date.now()): string {
  const at = nowMs / 1000;
  return `${JSON.stringify({ ...fields, at, iso: new Date(nowMs).toISOString().replace(/\.\d+Z$/, "Z") })}\n`;
}

export function writeHeartbeat(path: string, fields: Record<string, unknown> = { status: "ok" }, nowMs = Date.now()): void {
  writeFileAtomic(path, heartbeatText({ status: "ok", ...fields }, nowMs));
}

export function writeCircuit(path: string, circuit: { paused: boolean; reason?: string; since?: number }): void {
  writeFileAtomic(path, `${JSON.stringify(circuit)}\n`);
}

export type BeatOutcome = "written" | "created" | "paused" | "left-alone" | "failed";

/** One pipeline cycle: refresh `at` keeping everything else, create the file if missing. */
export function beat(heartbeatPath: string, nowMs = Date.now()): Exclude<BeatOutcome, "paused" | "failed"> {
  let text: string;
  try {
    text = readFileSync(heartbeatPath, "utf8");
  } catch {
    writeHeartbeat(heartbeatPath, { status: "ok" }, nowMs);
    return "created";
  }
  let fields: unknown;
  try {
    fields = JSON.parse(text);
  } catch {
    return "left-alone";
  }
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) return "left-alone";
  writeFileAtomic(heartbeatPath, heartbeatText(fields as Record<string, unknown>, nowMs));
  return "written";
}

export interface PipelineOptions {
  heartbeatPath: string;
  everyMs: number;
  /** While this file exists the pipeline does nothing (how `npm start` lets a user stop it). */
  stopFile?: string;
  onBeat?: (outcome: BeatOutcome) => void;
}

export interface Pipeline {
  readonly paused: boolean;
  pause(): void;
  resume(): void;
  /** Runs one cycle now. */
  beatNow(): BeatOutcome;
  stop(): void;
}

export function startPipeline(options: PipelineOptions): Pipeline {
  let paused = false;
  const cycle = (): BeatOutcome => {
    let outcome: BeatOutcome;
    try {
      outcome = paused || (options.stopFile !== undefined && existsSync(options.stopFile)) ? "paused" : beat(options.heartbeatPath);
    } catch {
      outcome = "failed"; // the folder went away, the disk is full: a real pipeline would skip a beat too
    }
    options.onBeat?.(outcome);
    return outcome;
  };
  cycle();
  const timer = setInterval(cycle, options.everyMs);
  return {
    get paused() {
      return paused || (options.stopFile !== undefined && existsSync(options.stopFile));
    },
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
    },
    beatNow: cycle,
    stop: () => clearInterval(timer),
  };
}
