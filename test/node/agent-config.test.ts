// Every bad setting stops the agent at start with exit 2 and one line on stderr that
// says what is wrong and how to fix it, with no stack trace.
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentEnv, commandExists, runAgent, runShellAgent, StandInWorker, type HostDir, startStage, stopStage } from "./agent-harness.ts";

let bundle: string;
const worker = new StandInWorker();
let host: HostDir;
const shellTools = (await commandExists("curl")) && (await commandExists("openssl"));

beforeAll(async () => {
  ({ bundle, host } = await startStage(worker));
  await writeFile(join(host.root, "open-secret"), `${worker.secret}\n`, { mode: 0o644 });
  await chmod(join(host.root, "open-secret"), 0o644);
  await writeFile(join(host.root, "short-secret"), "abc\n", { mode: 0o600 });
});
afterAll(() => stopStage(worker, host));

type Case = [name: string, change: (env: Record<string, string>, host: HostDir) => void, args: string[], expected: RegExp];

const cases: Case[] = [
  ["missing URL", (env) => delete env.WITNESS_URL, [], /^WITNESS_URL is not set; set it to/],
  ["URL that is not a URL", (env) => (env.WITNESS_URL = "witness.example.com"), [], /^WITNESS_URL is not a valid URL/],
  ["plain http to a remote host", (env) => (env.WITNESS_URL = "http://witness.example.com"), [], /^WITNESS_URL must start with https:\/\//],
  ["missing host", (env) => delete env.WITNESS_HOST, [], /^WITNESS_HOST is not set/],
  ["bad host id", (env) => (env.WITNESS_HOST = "Trader One"), [], /^WITNESS_HOST "Trader One" is not a valid host id; use 1-63/],
  ["no secret at all", (env) => delete env.WITNESS_SECRET_FILE, [], /^no host secret: set WITNESS_SECRET_FILE/],
  ["both secret settings", (env) => (env.WITNESS_SECRET = "x".repeat(64)), [], /^both WITNESS_SECRET and WITNESS_SECRET_FILE are set/],
  ["secret file readable by others (0644)", (env, h) => (env.WITNESS_SECRET_FILE = join(h.root, "open-secret")), [], /readable by other users \(mode 0644\); run: chmod 600 \/.*open-secret$/],
  ["secret file missing", (env, h) => (env.WITNESS_SECRET_FILE = join(h.root, "nope")), [], /^cannot read the secret file .*nope \(ENOENT\)/],
  ["secret too short", (env, h) => (env.WITNESS_SECRET_FILE = join(h.root, "short-secret")), [], /holds a secret of 3 characters, too short/],
  ["interval zero", (env) => (env.WITNESS_INTERVAL = "0"), [], /^WITNESS_INTERVAL must be a whole number of seconds from 1 to 3600 \(got "0"\)/],
  ["interval not a number", (env) => (env.WITNESS_INTERVAL = "1m"), [], /^WITNESS_INTERVAL must be a whole number/],
  ["remote pause flag not a boolean", (env) => (env.WITNESS_ALLOW_REMOTE_PAUSE = "maybe"), [], /^WITNESS_ALLOW_REMOTE_PAUSE must be 1 or 0/],
  ["unknown flag", () => undefined, ["--frobnicate"], /Unknown option '--frobnicate'; run witness-agent --help/],
  ["--once with --check", () => undefined, ["--once", "--check"], /^--once and --check cannot be used together/],
  ["same path for both files", (env) => (env.WITNESS_CIRCUIT = env.WITNESS_HEARTBEAT ?? ""), [], /^WITNESS_HEARTBEAT and WITNESS_CIRCUIT are the same file/],
];

describe("bad configuration: one line, exit 2", () => {
  it.each(cases)("%s", async (_name, change, args, expected) => {
    const env = agentEnv(worker, host);
    change(env, host);
    const result = await runAgent(bundle, [...args, "--once"].filter((arg, i, all) => all.indexOf(arg) === i), env);
    expect(result.code).toBe(2);
    const lines = result.stderr.split("\n").filter((line) => line !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^witness-agent: /);
    expect(lines[0]?.replace(/^witness-agent: /, "")).toMatch(expected);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(worker.pings).toHaveLength(0);
  });

  it("the same environment with a good config runs (the cases above fail for their own reason)", async () => {
    const result = await runAgent(bundle, ["--once"], agentEnv(worker, host));
    expect(result.code).toBe(0);
    worker.pings.length = 0;
  });

  it("--help and --version exit 0", async () => {
    const help = await runAgent(bundle, ["--help"], { PATH: process.env.PATH ?? "" });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--allow-remote-pause");
    const version = await runAgent(bundle, ["--version"], { PATH: process.env.PATH ?? "" });
    expect(version.stdout).toMatch(/^witness-agent \d+\.\d+\.\d+\n$/);
  });

  it.skipIf(!shellTools)("the shell agent refuses a 0644 secret file the same way", async () => {
    const result = await runShellAgent(["--once"], agentEnv(worker, host, { WITNESS_SECRET_FILE: join(host.root, "open-secret") }));
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(/readable by other users; run: chmod 600 /);
  });
});
