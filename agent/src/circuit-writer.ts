// Applies a remote pause to circuit.json, atomically (seed 003): temp file in the same
// directory, write, fsync, rename over the target, fsync the directory. A crash at any
// instant leaves the old file or the new one. It never writes paused:false and never
// overwrites a circuit that is already paused (its reason and since are evidence).
import { randomBytes } from "node:crypto";
import { open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { PauseCommand } from "../../src/protocol.ts";
import { describeError, truncate } from "./errors.ts";

export type PauseOutcome =
  | { outcome: "applied"; content: string; detail?: string }
  | { outcome: "already_paused" }
  | { outcome: "failed"; detail: string };

/** Temp files are `.circuit.json.witness-tmp-<pid>-<random>` beside the circuit file. */
export function tempFilePrefix(circuitPath: string): string {
  return `.${basename(circuitPath)}.witness-tmp-`;
}

export function pauseContent(command: PauseCommand, nowMs: number): string {
  const reason = `remote: ${command.reason} (command ${command.id}, by ${command.requestedBy})`;
  // The same shape (and spacing) Python's json.dumps gives the watchdog's own writes.
  return `{"paused": true, "reason": ${JSON.stringify(reason)}, "since": ${nowMs / 1000}}\n`;
}

/** True only for a circuit that parses and says paused: true. */
export async function isCircuitPaused(circuitPath: string): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(circuitPath, "utf8");
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return false;
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === "object" && parsed !== null && (parsed as { paused?: unknown }).paused === true;
  } catch {
    // Empty or corrupt: the breaker's state is unknown, and pausing is the safe side.
    return false;
  }
}

export async function applyRemotePause(circuitPath: string, command: PauseCommand, nowMs: number): Promise<PauseOutcome> {
  const directory = dirname(circuitPath);
  const tempPath = join(directory, `${tempFilePrefix(circuitPath)}${process.pid}-${randomBytes(6).toString("hex")}`);
  let tempCreated = false;
  try {
    if (await isCircuitPaused(circuitPath)) return { outcome: "already_paused" };
    const content = pauseContent(command, nowMs);
    const mode = await stat(circuitPath).then(
      (stats) => stats.mode & 0o777,
      () => 0o644,
    );
    const handle = await open(tempPath, "wx", mode);
    tempCreated = true;
    try {
      await handle.writeFile(content, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    // Check again right before the rename: narrows (cannot close) the window in
    // which a watchdog's own pause could land between our check and our write.
    if (await isCircuitPaused(circuitPath)) {
      await unlink(tempPath).catch(() => undefined);
      tempCreated = false;
      return { outcome: "already_paused" };
    }
    await rename(tempPath, circuitPath);
    tempCreated = false;
    try {
      await fsyncDirectory(directory);
    } catch (error) {
      // The rename is visible to every reader; only its durability across a power
      // cut is in doubt, so it is applied, with a note.
      return { outcome: "applied", content, detail: truncate(`directory fsync failed: ${describeError(error)}`, 200) };
    }
    return { outcome: "applied", content };
  } catch (error) {
    if (tempCreated) await unlink(tempPath).catch(() => undefined);
    return { outcome: "failed", detail: truncate(describeError(error), 200) };
  }
}

async function fsyncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } catch (error) {
    // Some file systems refuse fsync on a directory; the rename itself has happened.
    const code = (error as { code?: unknown }).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM" && code !== "ENOTSUP") throw error;
  } finally {
    await handle.close();
  }
}

/** Removes temp files a crash left behind. Returns the names removed. */
export async function removeStrayTempFiles(circuitPath: string): Promise<string[]> {
  const directory = dirname(circuitPath);
  const prefix = tempFilePrefix(circuitPath);
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    try {
      await unlink(join(directory, name));
      removed.push(name);
    } catch {
      // Someone else removed it, or we may not: the next start tries again.
    }
  }
  return removed;
}
