// Test harness for the agent: a real node:http server on 127.0.0.1 standing in for the
// Worker (it verifies signatures with the Worker's own src/edge/signature.ts and the body
// with the shared zod schema), real temp directories, and the real bundled agent run
// as a child process. Each test file builds its own bundle (files run in parallel).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { PingBody, SIGNATURE_HEADER, TIMESTAMP_HEADER, type PauseCommand } from "../../src/protocol.ts";
import { verifyPing } from "../../src/edge/signature.ts";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const SHELL_AGENT = join(REPO_ROOT, "agent", "witness-agent.sh");
const execFileAsync = promisify(execFile);

/**
 * Builds the agent bundle with the real build script. Test files run in parallel and
 * each asks for it, so the bundle is cached by a hash of its inputs; a fresh build goes
 * to a unique name and is renamed into place, so no file ever sees a half-written one.
 */
export async function buildAgentBundle(): Promise<string> {
  const hash = createHash("sha256");
  const inputs = [join(REPO_ROOT, "src", "protocol.ts"), join(REPO_ROOT, "scripts", "build-agent.mjs"), join(REPO_ROOT, "package.json")];
  for (const name of (await readdir(join(REPO_ROOT, "agent", "src"))).sort()) inputs.push(join(REPO_ROOT, "agent", "src", name));
  for (const input of inputs) hash.update(input).update(await readFile(input));
  const directory = join(tmpdir(), "witness-agent-test-bundles");
  await mkdir(directory, { recursive: true, mode: 0o755 });
  await chmod(directory, 0o755);
  const outfile = join(directory, `witness-agent-${hash.digest("hex").slice(0, 16)}.mjs`);
  if (existsSync(outfile)) return outfile;
  const building = `${outfile}.${process.pid}-${randomBytes(4).toString("hex")}.mjs`;
  await execFileAsync(process.execPath, [join(REPO_ROOT, "scripts", "build-agent.mjs"), "--outfile", building], { cwd: REPO_ROOT });
  await rename(building, outfile);
  return outfile;
}

export interface RecordedPing {
  receivedAtMs: number;
  path: string;
  headers: IncomingHttpHeaders;
  rawBody: string;
  signatureValid: boolean;
  /** The parsed body when it matches protocol v1, else undefined. */
  body: PingBody | undefined;
  bodyIssues: string;
}

export type Reply = { status: number; json?: unknown; headers?: Record<string, string> } | "hang";
export type Responder = (ping: RecordedPing, index: number) => Reply;

export const accept = (commands: PauseCommand[] = []): Reply => ({
  status: 200,
  json: { ok: true, serverTime: Date.now(), commands },
});

/** A strict stand-in for the Worker's POST /v1/ping/<hostId>. */
export class StandInWorker {
  readonly pings: RecordedPing[] = [];
  readonly secret = randomBytes(32).toString("hex");
  responder: Responder = () => accept();
  private server: Server | undefined;
  private readonly hanging = new Set<() => void>();
  private waiters: Array<() => void> = [];
  url = "";

  readonly hostId: string;

  constructor(hostId = "trader-1") {
    this.hostId = hostId;
  }

  async start(): Promise<this> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        void this.handle(request.url ?? "", request.headers, Buffer.concat(chunks).toString("utf8")).then((reply) => {
          if (reply === "hang") {
            const end = () => response.destroy();
            this.hanging.add(end);
            return;
          }
          response.writeHead(reply.status, { "content-type": "application/json", ...reply.headers });
          response.end(reply.json === undefined ? "" : JSON.stringify(reply.json));
        });
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    const address = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${address.port}`;
    return this;
  }

  private async handle(path: string, headers: IncomingHttpHeaders, rawBody: string): Promise<Reply> {
    const timestamp = String(headers[TIMESTAMP_HEADER.toLowerCase()] ?? "");
    const signature = String(headers[SIGNATURE_HEADER.toLowerCase()] ?? "");
    const signatureValid = signature !== "" && (await verifyPing(this.secret, timestamp, rawBody, signature));
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawBody);
    } catch {
      parsed = undefined;
    }
    const result = PingBody.safeParse(parsed);
    const ping: RecordedPing = {
      receivedAtMs: Date.now(),
      path,
      headers,
      rawBody,
      signatureValid,
      body: result.success ? result.data : undefined,
      bodyIssues: result.success ? "" : JSON.stringify(result.error.issues),
    };
    const index = this.pings.length;
    this.pings.push(ping);
    for (const wake of this.waiters.splice(0)) wake();
    // Like the Worker: unknown host, bad signature and bad body are refused first.
    if (path !== `/v1/ping/${this.hostId}`) return { status: 404, json: { ok: false, error: "unknown host" } };
    if (!signatureValid) return { status: 401, json: { ok: false, error: "bad signature" } };
    if (!result.success) return { status: 400, json: { ok: false, error: "invalid ping body", field: result.error.issues[0]?.path.join(".") } };
    return this.responder(ping, index);
  }

  async waitForPings(count: number, timeoutMs = 15_000): Promise<RecordedPing[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.pings.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} pings, got ${this.pings.length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.pings;
  }

  async stop(): Promise<void> {
    for (const end of this.hanging) end();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

export interface HostDir {
  root: string;
  heartbeat: string;
  circuit: string;
  secretFile: string;
}

/** A temp dir laid out like a trading host: data/heartbeat.json, data/circuit.json, a 0600 secret file. */
export async function makeHostDir(secret: string): Promise<HostDir> {
  const root = await mkdtemp(join(tmpdir(), "witness-host-"));
  await mkdir(join(root, "data"));
  const heartbeat = join(root, "data", "heartbeat.json");
  const circuit = join(root, "data", "circuit.json");
  await writeFile(heartbeat, JSON.stringify({ at: Date.now() / 1000, iso: new Date().toISOString(), status: "ok" }));
  const secretFile = join(root, "secret");
  await writeFile(secretFile, `${secret}\n`, { mode: 0o600 });
  return { root, heartbeat, circuit, secretFile };
}

/** What most agent test files start from: the bundle built, the stand-in Worker listening, a host folder. */
export async function startStage(worker: StandInWorker): Promise<{ bundle: string; host: HostDir }> {
  const bundle = await buildAgentBundle();
  await worker.start();
  return { bundle, host: await makeHostDir(worker.secret) };
}

export async function stopStage(worker: StandInWorker, host: HostDir): Promise<void> {
  await worker.stop();
  await removeDir(host.root);
}

export async function removeDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}

export function agentEnv(worker: StandInWorker, host: HostDir, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: host.root,
    WITNESS_URL: worker.url,
    WITNESS_HOST: worker.hostId,
    WITNESS_SECRET_FILE: host.secretFile,
    WITNESS_HEARTBEAT: host.heartbeat,
    WITNESS_CIRCUIT: host.circuit,
    WITNESS_STATE_FILE: join(host.root, "state", "agent.state"),
    ...extra,
  };
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface Running {
  child: ChildProcess;
  output(): { stdout: string; stderr: string };
  exited: Promise<Finished>;
}

export function start(
  command: string,
  args: string[],
  options: { env: Record<string, string>; cwd?: string; uid?: number; gid?: number; stdin?: string },
): Running {
  const startedAt = Date.now();
  const child = spawn(command, args, {
    env: options.env,
    cwd: options.cwd ?? REPO_ROOT,
    stdio: [options.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.gid !== undefined ? { gid: options.gid } : {}),
  });
  if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<Finished>((resolve) => {
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, durationMs: Date.now() - startedAt }));
  });
  return { child, output: () => ({ stdout, stderr }), exited };
}

export function startAgent(bundle: string, args: string[], env: Record<string, string>, extra: { cwd?: string; uid?: number; gid?: number } = {}): Running {
  return start(process.execPath, [bundle, ...args], { env, ...extra });
}

export function runAgent(bundle: string, args: string[], env: Record<string, string>, extra: { cwd?: string; uid?: number; gid?: number } = {}): Promise<Finished> {
  return startAgent(bundle, args, env, extra).exited;
}

export function runShellAgent(args: string[], env: Record<string, string>, extra: { cwd?: string } = {}): Promise<Finished> {
  return start("sh", [SHELL_AGENT, ...args], { env, ...extra }).exited;
}

export async function commandExists(name: string): Promise<boolean> {
  try {
    await execFileAsync("sh", ["-c", `command -v ${name}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * The Node versions the agent promises, each with a binary to run it or undefined. Node 18
 * comes from WITNESS_NODE18 (CI installs it) or the checkout's .node18; Node 20 runs when
 * WITNESS_NODE20 names one; the first is the node running the tests.
 */
export function supportedNodes(): Array<{ major: number; path: string | undefined }> {
  const localNode18 = join(REPO_ROOT, ".node18", "node_modules", "node", "bin", "node");
  return [
    { major: Number(process.versions.node.split(".")[0]), path: process.execPath },
    { major: 18, path: process.env["WITNESS_NODE18"] ?? (existsSync(localNode18) ? localNode18 : undefined) },
    { major: 20, path: process.env["WITNESS_NODE20"] },
  ];
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function pauseCommand(overrides: Partial<PauseCommand> = {}): PauseCommand {
  return {
    id: "cmd-1",
    type: "pause",
    reason: "operator pressed pause",
    requestedBy: "telegram:@alice",
    expiresAt: Date.now() + 3_600_000,
    ...overrides,
  };
}
