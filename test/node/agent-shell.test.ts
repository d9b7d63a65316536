// The shell agent (POSIX sh, curl, openssl) speaks the same protocol: file states,
// exact JSON escaping of raw text, seq and outage kept in its state file, retries on
// 5xx, no remote pause. Skipped only where curl or openssl is absent.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, chown, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MAX_FILE_TEXT_BYTES, type FileReport } from "../../src/protocol.ts";
import { accept, agentEnv, buildAgentBundle, commandExists, makeHostDir, pauseCommand, removeDir, runAgent, runShellAgent, SHELL_AGENT, StandInWorker, start, type HostDir } from "./agent-harness.ts";

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

  it("says it runs as the service (from its timer)", async () => {
    host = await makeHostDir(worker.secret);
    const result = await runShellAgent(["--once"], agentEnv(worker, host));
    expect(result.code, result.stderr).toBe(0);
    expect(worker.pings[0]?.body?.agent).toMatchObject({ kind: "shell", mode: "service" });
    expect((JSON.parse(worker.pings[0]?.rawBody ?? "{}") as { agent?: { mode?: unknown } }).agent?.mode).toBe("service");
  });

  it("a 401 about the timestamp names the clock and the NTP fix, not the secret", async () => {
    host = await makeHostDir(worker.secret);
    // The Worker's clock (its Date header) is 10 minutes behind this host's.
    worker.responder = () => ({
      status: 401,
      json: { ok: false, error: "timestamp outside the 300 s window", field: "X-Witness-Timestamp" },
      headers: { date: new Date(Date.now() - 600_000).toUTCString() },
    });
    const result = await runShellAgent(["--once"], agentEnv(worker, host));
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/push failing: HTTP 401: timestamp outside the 300 s window \(this host's clock is \d+ s ahead of the Worker's: enable NTP, e\.g\. sudo timedatectl set-ntp true\)/);
    const offset = Number(/clock is (\d+) s ahead/.exec(lines[0] ?? "")?.[1]);
    expect(offset).toBeGreaterThanOrEqual(598);
    expect(offset).toBeLessThanOrEqual(602);
    expect(result.stderr).not.toContain("WITNESS_SECRET");
  });

  it("a plain bad signature still points at the secret", async () => {
    host = await makeHostDir(worker.secret);
    worker.responder = () => ({ status: 401, json: { ok: false, error: "bad signature" } });
    const result = await runShellAgent(["--once"], agentEnv(worker, host));
    expect(result.stderr).toContain("HTTP 401: bad signature (check that WITNESS_SECRET");
    expect(result.stderr).not.toContain("clock");
  });

  it("a state file it cannot write stops it at start: exit 2, one line naming the path and the fix, no ping", async () => {
    host = await makeHostDir(worker.secret);
    // Its directory would have to be a regular file.
    await writeFile(join(host.root, "not-a-dir"), "x");
    const statePath = join(host.root, "not-a-dir", "agent.state");
    const result = await runShellAgent(["--once"], agentEnv(worker, host, { WITNESS_STATE_FILE: statePath }));
    expect(result.code).toBe(2);
    const dir = join(host.root, "not-a-dir");
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^witness-agent\\.sh: cannot create ${dir} for WITNESS_STATE_FILE ${statePath}; set WITNESS_STATE_FILE to a file in a directory \\S+ can write, or make it so: mkdir -p ${dir} && chown \\S+ ${dir}$`));
    expect(worker.pings).toHaveLength(0);
  });

  it.skipIf(process.getuid?.() !== 0)("a state directory the agent's user may not write: exit 2 naming the path, no ping", async () => {
    host = await makeHostDir(worker.secret);
    const agentUid = 41_003;
    await chmod(host.root, 0o755);
    await chown(host.secretFile, agentUid, agentUid);
    const stateDir = join(host.root, "state");
    await mkdir(stateDir, { mode: 0o755 });
    const statePath = join(stateDir, "agent.state");
    const result = await start("sh", [SHELL_AGENT, "--once"], { env: agentEnv(worker, host, { WITNESS_STATE_FILE: statePath }), cwd: host.root, uid: agentUid, gid: agentUid }).exited;
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^witness-agent\\.sh: cannot write WITNESS_STATE_FILE ${statePath}; set WITNESS_STATE_FILE to a file in a directory .* can write, or make it so: mkdir -p ${stateDir} && chown `));
    expect(worker.pings).toHaveLength(0);
  });

  it("looks again at a file caught empty, and sends the whole one written a moment later", async () => {
    host = await makeHostDir(worker.secret);
    const whole = JSON.stringify({ at: 1795389457.66, status: "ok", positions: 3 });
    await writeFile(host.heartbeat, "");
    await writeFile(join(host.root, "whole.json"), whole);
    // The pipeline finishes its in-place write 20 ms after the agent's first read: a
    // dd in front of the real one starts that writer the first time it is called.
    const bin = join(host.root, "bin");
    await mkdir(bin);
    const realDd = execFileSync("sh", ["-c", "command -v dd"], { encoding: "utf8" }).trim();
    await writeFile(
      join(bin, "dd"),
      `#!/bin/sh\n${realDd} "$@"; rc=$?\nif mkdir "${join(host.root, "first-read")}" 2>/dev/null; then (sleep 0.02; cp "${join(host.root, "whole.json")}" "${host.heartbeat}") & fi\nexit $rc\n`,
      { mode: 0o755 },
    );
    const env = agentEnv(worker, host);
    const result = await runShellAgent(["--once"], { ...env, PATH: `${bin}:${env.PATH ?? ""}` });
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(join(host.root, "first-read"))).toBe(true);
    expect(worker.pings[0]?.body?.files.heartbeat).toMatchObject({ state: "ok", text: whole });
    expect(result.stderr).not.toContain("empty");
  });

  it("looks again at JSON cut short, and still reports what persists as it is", async () => {
    const cut = '{"at": 1795389457.66, "sta';
    const startedAt = Date.now();
    const report = await shellReport((h) => writeFile(h.heartbeat, cut));
    // Two more looks, 50 and 250 ms later.
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(300);
    expect(report).toMatchObject({ state: "ok", text: cut });
    expect(await shellReport((h) => writeFile(h.heartbeat, ""))).toMatchObject({ state: "empty", size: 0 });
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
