// Child processes in their own process group, stopped as a group: wrangler starts
// workerd as its own child, and killing wrangler alone can leave workerd serving a
// port. A last-resort exit hook kills every group still alive if we exit without
// stopping them (a crashed test, process.exit).
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

export interface ManagedChild {
  readonly pid: number;
  /** Resolves with the exit code (null when a signal ended it) once the leader exits. */
  readonly exited: Promise<number | null>;
  readonly running: boolean;
  /** Sends a signal to the whole group. */
  signalGroup(signal: NodeJS.Signals): void;
  /** SIGTERM to the group, SIGKILL after `graceMs`, then waits until no process of the group is left. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Every line the child writes, from either stream. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
}

const liveGroups = new Set<number>();
let exitHookInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false; // ESRCH: nobody left in the group
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const pid of liveGroups) killGroup(pid, "SIGKILL");
  });
}

/** Process groups we started that still have a live process (empty after every stop()). */
export function leftoverGroups(): number[] {
  return [...liveGroups].filter(groupAlive);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function spawnGroup(command: string, args: readonly string[], options: SpawnOptions): ManagedChild {
  installExitHook();
  const child: ChildProcess = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: Ctrl-C in the terminal reaches only us, and we stop the
    // group ourselves, grandchildren included.
    detached: true,
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${command} ${args.join(" ")}`);
  liveGroups.add(pid);

  let running = true;
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      running = false;
      resolve(code);
    });
    child.once("error", () => {
      running = false;
      resolve(null);
    });
  });

  for (const [stream, name] of [
    [child.stdout, "stdout"],
    [child.stderr, "stderr"],
  ] as const) {
    if (stream === null) continue;
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    lines.on("line", (line) => options.onLine?.(line, name));
  }

  return {
    pid,
    exited,
    get running() {
      return running;
    },
    signalGroup: (signal) => void killGroup(pid, signal),
    async stop(graceMs = 5000) {
      killGroup(pid, "SIGTERM");
      await Promise.race([exited, sleep(graceMs)]);
      // The leader may be gone while a grandchild (workerd) lingers: finish the group.
      killGroup(pid, "SIGKILL");
      for (let waited = 0; groupAlive(pid) && waited < 5000; waited += 50) await sleep(50);
      // A group still alive stays listed: leftoverGroups() reports it, the exit hook kills it again.
      if (!groupAlive(pid)) liveGroups.delete(pid);
    },
  };
}
