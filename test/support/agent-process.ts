// The real agents as child processes: the bundled Node agent (dist/witness-agent.mjs,
// built on demand) in a loop, and the shell agent (agent/witness-agent.sh) once. The
// secret travels the way the README tells users to pass it: a chmod-600 file.
import { execFile } from "node:child_process";
import { chmodSync, existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { type ManagedChild, spawnGroup } from "./child-process.ts";

const execFileAsync = promisify(execFile);

function newestMtimeMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtimeMs(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * The bundle at `outfile` (default dist/witness-agent.mjs), built first when it is
 * missing or older than the agent's sources, so nobody demos yesterday's agent.
 */
export async function ensureAgentBundle(root: string, outfile = join(root, "dist", "witness-agent.mjs")): Promise<string> {
  const sourcesChangedAt = Math.max(newestMtimeMs(join(root, "agent", "src")), statSync(join(root, "src", "protocol.ts")).mtimeMs);
  if (existsSync(outfile) && statSync(outfile).mtimeMs >= sourcesChangedAt) return outfile;
  try {
    await execFileAsync(process.execPath, [join(root, "scripts", "build-agent.mjs"), "--outfile", outfile], { cwd: root });
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    throw new Error(`building the agent failed (npm run build:agent): ${typeof stderr === "string" && stderr !== "" ? stderr.trim() : String(error)}`);
  }
  return outfile;
}

/** Writes a host secret the way the agent insists on: a regular file, mode 600. */
export function writeSecretFile(path: string, secret: string): void {
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  chmodSync(path, 0o600); // the mode option does not apply to a file that already existed
}

export interface AgentSettings {
  /** The Worker's base URL (or a proxy in front of it). */
  url: string;
  hostId: string;
  secretFile: string;
  heartbeatPath: string;
  circuitPath: string;
}

export interface NodeAgentOptions extends AgentSettings {
  bundle: string;
  cwd: string;
  intervalSeconds: number;
  verbose?: boolean;
  /** Run with --allow-remote-pause: confirmed /pause commands are written to circuit.json. */
  allowRemotePause?: boolean;
  onLine?: (line: string) => void;
}

export interface AgentProcess {
  readonly pid: number;
  readonly running: boolean;
  readonly startedAt: number;
  /** Everything it printed so far. */
  output(): string[];
  /** Resolves when a line matching `pattern` has been printed (or already was). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Asks it to stop (SIGTERM) and waits. */
  stop(): Promise<void>;
  /** Kills it without warning (SIGKILL), as a crash or an OOM kill would. */
  kill(): Promise<void>;
  readonly exited: Promise<number | null>;
}

/** The environment an agent reads its settings from, and nothing of ours. */
export function agentEnv(settings: AgentSettings): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/tmp",
    WITNESS_URL: settings.url,
    WITNESS_HOST: settings.hostId,
    WITNESS_SECRET_FILE: settings.secretFile,
    WITNESS_HEARTBEAT: settings.heartbeatPath,
    WITNESS_CIRCUIT: settings.circuitPath,
  };
  return env;
}

export function startNodeAgent(options: NodeAgentOptions): AgentProcess {
  const lines: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  const args = [
    options.bundle,
    "--interval",
    String(options.intervalSeconds),
    ...(options.verbose === true ? ["--verbose"] : []),
    ...(options.allowRemotePause === true ? ["--allow-remote-pause"] : []),
  ];
  const startedAt = Date.now();
  const child: ManagedChild = spawnGroup(process.execPath, args, {
    cwd: options.cwd,
    env: agentEnv(options),
    onLine: (line) => {
      lines.push(line);
      if (lines.length > 500) lines.shift();
      options.onLine?.(line);
      for (let i = waiters.length - 1; i >= 0; i--) {
        const waiter = waiters[i];
        if (waiter !== undefined && waiter.pattern.test(line)) {
          waiters.splice(i, 1);
          waiter.resolve(line);
        }
      }
    },
  });
  return {
    pid: child.pid,
    startedAt,
    get running() {
      return child.running;
    },
    output: () => [...lines],
    waitForLine(pattern, timeoutMs = 30_000) {
      const seen = lines.find((line) => pattern.test(line));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const index = waiters.findIndex((waiter) => waiter.resolve === done);
          if (index >= 0) waiters.splice(index, 1);
          reject(new Error(`agent for ${options.hostId} printed no line matching ${pattern} within ${timeoutMs / 1000} s; it printed:\n${lines.slice(-20).join("\n")}`));
        }, timeoutMs);
        const done = (line: string) => {
          clearTimeout(timer);
          resolve(line);
        };
        waiters.push({ pattern, resolve: done });
      });
    },
    stop: () => child.stop(),
    async kill() {
      child.signalGroup("SIGKILL");
      await child.stop(0);
    },
    exited: child.exited,
  };
}

export interface ShellAgentResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Which of the shell agent's tools are missing (empty when it can run here). */
export async function shellAgentMissingTools(): Promise<string[]> {
  const missing: string[] = [];
  for (const tool of ["sh", "curl", "openssl", "od", "awk"]) {
    try {
      await execFileAsync("sh", ["-c", `command -v ${tool}`]);
    } catch {
      missing.push(tool);
    }
  }
  return missing;
}

/** Runs agent/witness-agent.sh --once with the given settings. */
export async function runShellAgentOnce(root: string, settings: AgentSettings & { stateFile: string }): Promise<ShellAgentResult> {
  try {
    const { stdout, stderr } = await execFileAsync("sh", [join(root, "agent", "witness-agent.sh"), "--once"], {
      cwd: root,
      env: { ...agentEnv(settings), WITNESS_STATE_FILE: settings.stateFile },
      timeout: 60_000,
    });
    return { exitCode: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: unknown; stderr?: unknown };
    return {
      exitCode: typeof failed.code === "number" ? failed.code : -1,
      stdout: typeof failed.stdout === "string" ? failed.stdout : "",
      stderr: typeof failed.stderr === "string" ? failed.stderr : String(error),
    };
  }
}
