// The shell agent (POSIX sh, curl, openssl) speaks the same protocol: file states,
// exact JSON escaping of raw text, seq and outage kept in its state file, retries on
// 5xx, no remote pause. Skipped only where curl or openssl is absent.
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MAX_FILE_TEXT_BYTES, type FileReport } from "../../src/protocol.ts";
import { accept, agentEnv, buildAgentBundle, commandExists, makeHostDir, pauseCommand, removeDir, runAgent, runShellAgent, StandInWorker, type HostDir } from "./agent-harness.ts";

const shellTools = (await commandExists("curl")) && (await commandExists("openssl"));
const worker = new StandInWorker();
let host: HostDir;

beforeAll(() => worker.start());
afterAll(() => worker.stop());
afterEach(async () => {
  await removeDir(host.root);
  worker.pings.length = 0;
  worker.responder = () => accept();
});

async function shellReport(prepare: (h: HostDir) => Promise<void>): Promise<FileReport> {
  host = await makeHostDir(worker.secret);
  await prepare(host);
  const result = await runShellAgent(["--once"], agentEnv(worker, host));
  expect(result.code, result.stderr).toBe(0);
  const ping = worker.pings.at(-1);
  expect(ping?.signatureValid).toBe(true);
  const report = ping?.body?.files.heartbeat;
  if (report === undefined) throw new Error(`no valid ping: ${ping?.bodyIssues ?? "none"}`);
  return report;
}

describe.skipIf(!shellTools)("shell agent", () => {
  it("ok: raw text escaped exactly (quotes, backslashes, control characters, UTF-8)", async () => {
    const text = '{"at": 1795389457.66, "status": "ok", "note": "say \\"hi\\"\\\\ \u00e9 \u20ac \ud83d\ude80"}\n\ttab\r\x01\x1f\x7f end';
    const report = await shellReport((h) => writeFile(h.heartbeat, text));
    expect(report).toMatchObject({ state: "ok", size: Buffer.byteLength(text), text });
    expect(report.mtime).toBeGreaterThan(Date.now() - 120_000);
  });

  it("invalid UTF-8 bytes become U+FFFD, so the body stays valid JSON", async () => {
    const bytes = Buffer.concat([Buffer.from("a"), Buffer.from([0xff]), Buffer.from("b"), Buffer.from([0xc0, 0x80]), Buffer.from("c")]);
    const report = await shellReport((h) => writeFile(h.heartbeat, bytes));
    expect(report).toMatchObject({ state: "ok", size: bytes.length, text: bytes.toString("utf8") });
  });

  it("missing", async () => {
    expect(await shellReport((h) => removeDir(h.heartbeat))).toEqual({ state: "missing" });
  });

  it("empty", async () => {
    expect(await shellReport((h) => writeFile(h.heartbeat, ""))).toMatchObject({ state: "empty", size: 0 });
  });

  it("unreadable (a directory)", async () => {
    const report = await shellReport(async (h) => {
      await removeDir(h.heartbeat);
      await mkdir(h.heartbeat);
    });
    expect(report).toMatchObject({ state: "unreadable", error: "EISDIR" });
  });

  it("too_large, with the full size and no text", async () => {
    const report = await shellReport((h) => writeFile(h.heartbeat, "x".repeat(MAX_FILE_TEXT_BYTES + 500)));
    expect(report).toEqual({ state: "too_large", size: MAX_FILE_TEXT_BYTES + 500, mtime: expect.any(Number) });
  });

  it("8 KiB of control characters: reported too_large rather than a body the Worker must refuse", async () => {
    const report = await shellReport((h) => writeFile(h.heartbeat, "\x01".repeat(MAX_FILE_TEXT_BYTES)));
    expect(report).toMatchObject({ state: "too_large", error: expect.stringContaining("JSON-escaped") });
  });

  it("keeps seq, start time and the outage across runs; reports since/failures, then until", async () => {
    host = await makeHostDir(worker.secret);
    const env = agentEnv(worker, host);
    worker.responder = (_ping, index) => (index < 2 ? { status: 400, json: { ok: false, error: "host is disabled" } } : accept());
    const runs = [];
    for (let i = 0; i < 4; i++) runs.push(await runShellAgent(["--once"], env));
    expect(runs.map((run) => run.code)).toEqual([1, 1, 0, 0]);
    expect(runs[0]?.stderr).toContain("push failing: HTTP 400: host is disabled");
    expect(runs[2]?.stdout).toMatch(/push recovered after 2 failures over \d+\.\d min/);
    const bodies = worker.pings.map((ping) => ping.body);
    expect(bodies.map((body) => body?.seq)).toEqual([1, 2, 3, 4]);
    expect(new Set(bodies.map((body) => body?.agent.startedAt)).size).toBe(1);
    expect(bodies[0]?.lastPushOutage).toBeNull();
    expect(bodies[2]?.lastPushOutage).toMatchObject({ failures: 2, lastError: "HTTP 400: host is disabled" });
    expect(bodies[2]?.lastPushOutage?.until).toBeUndefined();
    expect(bodies[3]?.lastPushOutage?.until).toBeGreaterThanOrEqual(bodies[3]?.lastPushOutage?.since ?? Infinity);
    expect(bodies[3]?.lastPushOutage?.failures).toBe(2);
  });

  it("retries a 503 with a fresh signature and succeeds", async () => {
    host = await makeHostDir(worker.secret);
    worker.responder = (_ping, index) => (index === 0 ? { status: 503, json: { ok: false, error: "busy" } } : accept());
    const result = await runShellAgent(["--once"], agentEnv(worker, host));
    expect(result.code).toBe(0);
    expect(worker.pings).toHaveLength(2);
    expect(worker.pings.every((ping) => ping.signatureValid)).toBe(true);
    expect(worker.pings[0]?.headers["x-witness-timestamp"]).not.toBe(worker.pings[1]?.headers["x-witness-timestamp"] ?? "");
    expect(worker.pings[1]?.body?.lastPushOutage).toMatchObject({ failures: 1, lastError: "HTTP 503: busy" });
  });

  it("does not apply remote pauses, and says so", async () => {
    host = await makeHostDir(worker.secret);
    worker.responder = () => accept([pauseCommand()]);
    const result = await runShellAgent(["--once"], agentEnv(worker, host));
    expect(result.code).toBe(0);
    expect(existsSync(host.circuit)).toBe(false);
    expect(result.stderr).toContain("does not apply remote pauses");
  });
});

describe("boot id", () => {
  const linuxBootId = existsSync("/proc/sys/kernel/random/boot_id") ? readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() : undefined;

  it.skipIf(linuxBootId === undefined)("both agents send the kernel's boot id", async () => {
    host = await makeHostDir(worker.secret);
    const bundle = await buildAgentBundle();
    await runAgent(bundle, ["--once"], agentEnv(worker, host));
    if (shellTools) await runShellAgent(["--once"], agentEnv(worker, host));
    expect(worker.pings.length).toBeGreaterThanOrEqual(1);
    for (const ping of worker.pings) expect(ping.body?.agent.bootId).toBe(linuxBootId);
  });

  it("state file is private (umask 077)", async () => {
    host = await makeHostDir(worker.secret);
    if (!shellTools) return;
    const env = agentEnv(worker, host);
    await runShellAgent(["--once"], env);
    const statePath = env.WITNESS_STATE_FILE ?? "";
    expect(await readFile(statePath, "utf8")).toMatch(/^seq=1$/m);
    const { statSync } = await import("node:fs");
    expect(statSync(statePath).mode & 0o077).toBe(0);
  });
});
