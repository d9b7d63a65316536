// Reads one mirrored file into a FileReport: ok, missing, empty, unreadable or
// too_large, with size and mtime. One open/fstat/read/close per call, so nothing is
// held open between pushes, and the size comes from the same descriptor the bytes came
// from. A bad file is reported as what it is, never as ok and never left out.
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import type { FileReport } from "../../src/protocol.ts";
import { truncate } from "./errors.ts";
import { MAX_FILE_TEXT_BYTES } from "./wire.ts";

/** The slice of a FileHandle this module uses (node:fs/promises FileHandle fits). */
export interface ReadableFile {
  stat(): Promise<{ size: number; mtimeMs: number; isFile(): boolean; isDirectory(): boolean }>;
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}
export type OpenForReading = (path: string) => Promise<ReadableFile>;

// O_NONBLOCK: opening a FIFO put at the path must not hang the agent; it has no
// effect on regular files.
export const openForReading: OpenForReading = (path) => open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));

/** A rewrite racing our read can make fstat and the bytes disagree; try this often. */
export const READ_ATTEMPTS = 3;

type Snapshot =
  | { kind: "error"; report: FileReport }
  | { kind: "read"; size: number; mtimeMs: number; bytes: Uint8Array };

/**
 * A pipeline that rewrites its file in place (truncate, then write) can be caught half
 * way: empty, or JSON cut short. That is worth a second look before it becomes a page at
 * 3 AM, so such a read is repeated after these pauses; what persists is sent as it is.
 * The agent only asks "is this JSON at all?"; the Worker still parses and judges it.
 */
export const TORN_READ_RETRY_DELAYS_MS: readonly number[] = [50, 250];

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function readFileReport(
  path: string,
  openFile: OpenForReading = openForReading,
  sleep: (ms: number) => Promise<void> = defaultSleep,
): Promise<FileReport> {
  let report = await readConsistent(path, openFile);
  for (const delayMs of TORN_READ_RETRY_DELAYS_MS) {
    if (!looksTorn(report)) break;
    await sleep(delayMs);
    report = await readConsistent(path, openFile);
  }
  return report;
}

function looksTorn(report: FileReport): boolean {
  if (report.state === "empty") return true;
  if (report.state !== "ok" || report.text === undefined) return false;
  try {
    JSON.parse(report.text);
    return false;
  } catch {
    return true;
  }
}

async function readConsistent(path: string, openFile: OpenForReading): Promise<FileReport> {
  let snapshot: Snapshot | undefined;
  for (let attempt = 1; attempt <= READ_ATTEMPTS; attempt++) {
    snapshot = await readSnapshot(path, openFile);
    if (snapshot.kind === "error") return snapshot.report;
    if (snapshot.bytes.length === snapshot.size) return reportFromConsistentRead(snapshot);
    // Either more bytes than fstat said (capped read of a too-large file is handled
    // in reportFromConsistentRead) or the file changed under us: read again.
    if (snapshot.size > MAX_FILE_TEXT_BYTES && snapshot.bytes.length > MAX_FILE_TEXT_BYTES) {
      return reportFromConsistentRead(snapshot);
    }
  }
  if (snapshot === undefined || snapshot.kind === "error") throw new Error("unreachable: no read attempt");
  return reportInconsistentRead(snapshot);
}

async function readSnapshot(path: string, openFile: OpenForReading): Promise<Snapshot> {
  let handle: ReadableFile;
  try {
    handle = await openFile(path);
  } catch (error) {
    return { kind: "error", report: reportOpenError(error) };
  }
  try {
    const stats = await handle.stat();
    const mtimeMs = Math.max(0, Math.floor(stats.mtimeMs));
    if (stats.isDirectory()) return { kind: "error", report: { state: "unreadable", mtime: mtimeMs, error: "EISDIR" } };
    if (!stats.isFile()) {
      return { kind: "error", report: { state: "unreadable", mtime: mtimeMs, error: "not a regular file" } };
    }
    // Read at most one byte past the cap: enough to know "too large" without
    // pulling a runaway file into memory.
    const buffer = new Uint8Array(MAX_FILE_TEXT_BYTES + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return { kind: "read", size: stats.size, mtimeMs, bytes: buffer.subarray(0, filled) };
  } catch (error) {
    return { kind: "error", report: { state: "unreadable", error: errorCode(error) } };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

function reportOpenError(error: unknown): FileReport {
  const code = errorCode(error);
  // ENOTDIR: a parent path component is a file, which for the operator is "missing".
  if (code.startsWith("ENOENT") || code.startsWith("ENOTDIR")) return { state: "missing" };
  return { state: "unreadable", error: code };
}

function reportFromConsistentRead(snapshot: { size: number; mtimeMs: number; bytes: Uint8Array }): FileReport {
  const { size, mtimeMs: mtime, bytes } = snapshot;
  if (size > MAX_FILE_TEXT_BYTES || bytes.length > MAX_FILE_TEXT_BYTES) {
    return { state: "too_large", size: Math.max(size, bytes.length), mtime };
  }
  if (bytes.length === 0) return { state: "empty", size: 0, mtime };
  return { state: "ok", size: bytes.length, mtime, text: decodeUtf8(bytes) };
}

/** After READ_ATTEMPTS disagreeing reads: report the bytes we hold, and say so. */
function reportInconsistentRead(snapshot: { size: number; mtimeMs: number; bytes: Uint8Array }): FileReport {
  const report = reportFromConsistentRead({ ...snapshot, size: snapshot.bytes.length });
  return {
    ...report,
    error: `file kept changing while read: fstat said ${snapshot.size} bytes, read ${snapshot.bytes.length}`,
  };
}

function decodeUtf8(bytes: Uint8Array): string {
  // Invalid UTF-8 becomes U+FFFD; the Worker then reports a file that does not parse.
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  return truncate(typeof code === "string" ? code : message, 200);
}
