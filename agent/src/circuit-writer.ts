// Applies a remote pause to circuit.json, atomically (seed 003): temp file in the same
// directory, write, fsync, rename over the target, fsync the directory. A crash at any
// instant leaves the old file or the new one. It never writes paused:false and never
// overwrites a circuit that is already paused (its reason and since are evidence).
// The new file keeps the old one's mode, owner and group where this process may, so
// the pipeline that reads (and the human who resumes) the breaker still can.
import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { open, readdir, readFile, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { PauseCommand } from "../../src/protocol.ts";
import { describeError, truncate } from "./errors.ts";

export type PauseOutcome =
  | {
      outcome: "applied";
      content: string;
      detail?: string;
      /** What of the old file's owner, group or mode the new file could not keep, for the log. */
      notKept?: string;
    }
  | { outcome: "already_paused" }
  | { outcome: "failed"; detail: string };

/**
 * Mode of a circuit.json the agent creates: readable by the pipeline whatever the
 * service's umask (UMask=0077 would make it 0600, and check_circuit() would fail), and
 * group-writable so that, in a directory shared through a group, a human can resume.
 */
export const NEW_CIRCUIT_MODE = 0o664;

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
    const existing = await stat(circuitPath).catch(() => undefined);
    // Private until its owner and mode are set; nobody can open it before the rename.
    const handle = await open(tempPath, "wx", 0o600);
    tempCreated = true;
    let notKept: string | undefined;
    try {
      await handle.writeFile(content, "utf8");
      notKept = await copyOwnership(handle, existing);
      // fchmod after fchown: a chown by a non-root owner clears set-id bits, and the
      // mode must not depend on the umask.
      await handle.chmod(existing === undefined ? NEW_CIRCUIT_MODE : existing.mode & 0o777);
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
      return {
        outcome: "applied",
        content,
        detail: truncate(`directory fsync failed: ${describeError(error)}`, 200),
        ...(notKept !== undefined ? { notKept } : {}),
      };
    }
    return { outcome: "applied", content, ...(notKept !== undefined ? { notKept } : {}) };
  } catch (error) {
    if (tempCreated) await unlink(tempPath).catch(() => undefined);
    return { outcome: "failed", detail: truncate(describeError(error), 200) };
  }
}

/**
 * Gives the temp file the old file's owner and group. Only root may give a file away;
 * any owner may pick one of its own groups. Returns what could not be kept, if anything.
 */
async function copyOwnership(handle: FileHandle, existing: Stats | undefined): Promise<string | undefined> {
  if (existing === undefined) return undefined;
  try {
    await handle.chown(existing.uid, existing.gid);
    return undefined;
  } catch (error) {
    if (!isPermissionError(error)) throw error;
  }
  const ownUid = process.getuid?.();
  const lost: string[] = [];
  if (existing.uid !== ownUid) lost.push(`owner uid ${existing.uid}`);
  try {
    await handle.chown(-1, existing.gid);
  } catch (error) {
    if (!isPermissionError(error)) throw error;
    lost.push(`group gid ${existing.gid}`);
  }
  return lost.length > 0 ? lost.join(" and ") : undefined;
}

function isPermissionError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  // EINVAL: an id this user namespace does not map.
  return code === "EPERM" || code === "EINVAL";
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
