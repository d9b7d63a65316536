// Each file state reaches the Worker as itself: ok, missing, empty, unreadable and
// too_large, through the real bundled agent, plus the reader's behaviour under a
// concurrent rewrite and on a FIFO.
import { execFileSync } from "node:child_process";
import { chmod, mkdir, open, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MAX_FILE_TEXT_BYTES, type FileReport } from "../../src/protocol.ts";
import { readFileReport } from "../../agent/src/read-file.ts";
import { agentEnv, buildAgentBundle, makeHostDir, removeDir, runAgent, StandInWorker, type HostDir } from "./agent-harness.ts";

let bundle: string;
const worker = new StandInWorker();
let host: HostDir;

beforeAll(async () => {
  bundle = await buildAgentBundle();
  await worker.start();
});
afterAll(() => worker.stop());
afterEach(async () => {
  await removeDir(host.root);
  worker.pings.length = 0;
});

async function reportedHeartbeat(prepare: (host: HostDir) => Promise<void>, runAs: { uid?: number; gid?: number } = {}): Promise<FileReport> {
  host = await makeHostDir(worker.secret);
  await prepare(host);
  const result = await runAgent(bundle, ["--once"], agentEnv(worker, host), runAs);
  expect(result.stderr + result.stdout).not.toMatch(/unexpected error/);
  expect(result.code).toBe(0);
  const ping = worker.pings.at(-1);
  expect(ping?.signatureValid).toBe(true);
  const report = ping?.body?.files.heartbeat;
  if (report === undefined) throw new Error(`no valid ping recorded: ${ping?.bodyIssues ?? "none"}`);
  return report;
}

describe("each file state is reported as itself", () => {
  it("ok: the raw text, its size in bytes and mtime in ms", async () => {
    const text = '{"at": 1795389457.66, "status": "ok", "note": "café"}';
    const report = await reportedHeartbeat((h) => writeFile(h.heartbeat, text));
    const { mtimeMs } = await stat(host.heartbeat);
    expect(report).toEqual({ state: "ok", size: Buffer.byteLength(text), mtime: Math.floor(mtimeMs), text });
  });

  it("ok even when the text is not JSON: the Worker, not the agent, parses it", async () => {
    const report = await reportedHeartbeat((h) => writeFile(h.heartbeat, '{"at": 17953894'));
    expect(report).toMatchObject({ state: "ok", text: '{"at": 17953894' });
  });

  it("missing", async () => {
    const report = await reportedHeartbeat((h) => removeDir(h.heartbeat));
    expect(report).toEqual({ state: "missing" });
  });

  it("empty (what a crash mid-write leaves)", async () => {
    const report = await reportedHeartbeat((h) => writeFile(h.heartbeat, ""));
    expect(report).toMatchObject({ state: "empty", size: 0 });
    expect(report.text).toBeUndefined();
  });

  it("unreadable when the path is a directory, with the OS error code", async () => {
    const report = await reportedHeartbeat(async (h) => {
      await removeDir(h.heartbeat);
      await mkdir(h.heartbeat);
    });
    expect(report).toMatchObject({ state: "unreadable", error: "EISDIR" });
  });

  it("unreadable without permission (EACCES)", async () => {
    // Root reads everything, so as root the agent runs as nobody (65534) here.
    const asRoot = process.getuid?.() === 0;
    const runAs = asRoot ? { uid: 65534, gid: 65534 } : {};
    const report = await reportedHeartbeat(async (h) => {
      await chmod(h.heartbeat, 0o000);
      if (asRoot) {
        await chmod(h.root, 0o755);
        await chmod(join(h.root, "data"), 0o755);
        // The agent must still read its secret: hand it to nobody, still 0600.
        execFileSync("chown", ["65534:65534", h.secretFile]);
      }
    }, runAs);
    expect(report).toMatchObject({ state: "unreadable", error: "EACCES" });
    expect(report.text).toBeUndefined();
  });

  it("too_large past the cap: the size, and no text", async () => {
    const report = await reportedHeartbeat((h) => writeFile(h.heartbeat, "x".repeat(MAX_FILE_TEXT_BYTES + 1)));
    expect(report).toMatchObject({ state: "too_large", size: MAX_FILE_TEXT_BYTES + 1 });
    expect(report.text).toBeUndefined();
  });

  it("ok at exactly the cap", async () => {
    const report = await reportedHeartbeat((h) => writeFile(h.heartbeat, "y".repeat(MAX_FILE_TEXT_BYTES)));
    expect(report).toMatchObject({ state: "ok", size: MAX_FILE_TEXT_BYTES });
    expect(report.text).toHaveLength(MAX_FILE_TEXT_BYTES);
  });

  it("8 KiB of control characters (sixfold once JSON-escaped): too_large with the reason, not a body the Worker refuses", async () => {
    const report = await reportedHeartbeat((h) => writeFile(h.heartbeat, "\x01".repeat(MAX_FILE_TEXT_BYTES)));
    expect(report).toMatchObject({ state: "too_large", size: MAX_FILE_TEXT_BYTES, error: expect.stringContaining("JSON-escaped") });
  });

  it("a missing circuit.json is reported as missing, not as a file that said green", async () => {
    host = await makeHostDir(worker.secret);
    await runAgent(bundle, ["--once"], agentEnv(worker, host));
    expect(worker.pings.at(-1)?.body?.files.circuit).toEqual({ state: "missing" });
  });
});

describe("the reader", () => {
  it("never reports ok with a size that disagrees with the text, under a concurrent non-atomic rewriter", async () => {
    host = await makeHostDir(worker.secret);
    const path = host.heartbeat;
    let writing = true;
    // The pipeline's naive writer: truncate, then write a payload of varying length.
    const writer = (async () => {
      let round = 0;
      while (writing) {
        const handle = await open(path, "w");
        await handle.write(JSON.stringify({ at: round, status: "ok", pad: "z".repeat(100 + ((round * 997) % 4000)) }));
        await handle.close();
        round += 1;
      }
    })();
    const reports: FileReport[] = [];
    // Torn reads are looked at again after a pause; here the pause is skipped, so the
    // reads keep racing the writer.
    const noPause = async () => {};
    for (let i = 0; i < 400; i++) reports.push(await readFileReport(path, undefined, noPause));
    writing = false;
    await writer;
    for (const report of reports) {
      expect(["ok", "empty"]).toContain(report.state);
      if (report.state === "ok") {
        const consistent = Buffer.byteLength(report.text ?? "") === report.size;
        // Either consistent, or honestly flagged after the retries ran out.
        expect(consistent || report.error?.startsWith("file kept changing")).toBe(true);
      }
      if (report.state === "empty") expect(report.size).toBe(0);
    }
    expect(reports.some((report) => report.state === "ok")).toBe(true);
  });

  it("looks again at a file caught half-rewritten, and sends the whole one written a moment later", async () => {
    host = await makeHostDir(worker.secret);
    const whole = JSON.stringify({ at: 1795389457.66, status: "ok", positions: 3 });
    // The pipeline's in-place writer, caught between truncating and finishing.
    await writeFile(host.heartbeat, whole.slice(0, 20));
    const finishing = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      await writeFile(host.heartbeat, whole);
    })();
    const report = await readFileReport(host.heartbeat);
    await finishing;
    expect(report).toMatchObject({ state: "ok", text: whole });
  });

  it("still reports a file that stays cut short, and one that stays empty, as they are", async () => {
    host = await makeHostDir(worker.secret);
    await writeFile(host.heartbeat, '{"at": 1795389457.66, "sta');
    expect(await readFileReport(host.heartbeat)).toMatchObject({ state: "ok", text: '{"at": 1795389457.66, "sta' });
    await writeFile(host.heartbeat, "");
    expect(await readFileReport(host.heartbeat)).toMatchObject({ state: "empty", size: 0 });
  });

  it("does not hang on a FIFO at the path: unreadable, not a regular file", async () => {
    host = await makeHostDir(worker.secret);
    await removeDir(host.heartbeat);
    execFileSync("mkfifo", [host.heartbeat]);
    const report = await readFileReport(host.heartbeat);
    expect(report).toMatchObject({ state: "unreadable", error: "not a regular file" });
  });
});
