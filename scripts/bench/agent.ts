// The agent's footprint on a trading host: resident memory of the Node agent in loop
// mode and its CPU per push (from /proc), against the alternatives a user might run from
// cron instead: one `curl` per ping, the shell agent, and the Node agent with --once.
// Everything talks to a stand-in Worker on 127.0.0.1 that accepts every ping.
import { execFile, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { deployedNodeFlags } from "../agent-service.ts";

const run = promisify(execFile);
const CLOCK_TICKS_PER_SECOND = 100; // getconf CLK_TCK on Linux

interface StandIn {
  url: string;
  pings: () => number;
  close: () => Promise<void>;
}

/** A Worker stand-in: answers every POST /v1/ping/<host> as an accepted ping. */
async function startStandIn(): Promise<StandIn> {
  let pings = 0;
  const server: Server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      if (request.method === "POST" && request.url?.startsWith("/v1/ping/") === true) pings++;
      response.writeHead(200, { "content-type": "application/json", "x-witness-write": "none" });
      response.end(JSON.stringify({ ok: true, serverTime: Date.now(), commands: [] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    pings: () => pings,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** utime + stime of a process, in seconds (children not included). */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLOCK_TICKS_PER_SECOND;
}

/** VmRSS, and its anonymous (heap, stacks) and file-backed (the node binary's pages, shared) parts, KiB. */
function residentKiB(pid: number): { total: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, "m").exec(status);
    return match?.[1] === undefined ? Number.NaN : Number(match[1]);
  };
  return { total: field("VmRSS"), anon: field("RssAnon"), file: field("RssFile") };
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

/**
 * A child's environment. The bench type-checks with Node's and the Worker's types at once
 * (tsconfig.sim.json), and the generated Worker types declare the Worker's secrets as
 * required process variables; the agent processes need none of them.
 */
function childEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  return vars as unknown as NodeJS.ProcessEnv;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface AgentFiles {
  dir: string;
  heartbeat: string;
  circuit: string;
  secretFile: string;
  secret: string;
}

export function agentFiles(dir: string): AgentFiles {
  mkdirSync(dir, { recursive: true });
  const heartbeat = join(dir, "heartbeat.json");
  const circuit = join(dir, "circuit.json");
  writeFileSync(heartbeat, JSON.stringify({ at: Date.now() / 1000, iso: new Date().toISOString(), status: "ok", cycle: 1 }));
  writeFileSync(circuit, JSON.stringify({ paused: false }));
  const secret = "bench-secret-0123456789abcdef0123456789abcdef";
  const secretFile = join(dir, "secret");
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  return { dir, heartbeat, circuit, secretFile, secret };
}

export interface LoopAgentResult {
  seconds: number;
  intervalSeconds: number;
  pushes: number;
  /** The node binary that ran the agent (path and version), and the flags it was given. */
  node: string;
  nodeVersion: string;
  nodeFlags: string[];
  /** VmRSS samples after warm-up, KiB. */
  rssMedianKiB: number;
  /** Median of the anonymous part (the agent's own) and of the file-backed part (the node binary's pages). */
  rssAnonMedianKiB: number;
  rssFileMedianKiB: number;
  rssMaxKiB: number;
  rssFirstKiB: number;
  rssLastKiB: number;
  /** (utime + stime) over the measured pushes / their number, milliseconds. */
  cpuPerPushMs: number;
}

/**
 * The Node agent in loop mode at a short interval for `seconds`, sampled from /proc,
 * started with the systemd unit's node flags unless `nodeFlags` says otherwise.
 */
export async function measureLoopAgent(options: { root: string; files: AgentFiles; seconds: number; intervalSeconds: number; node?: string; nodeFlags?: string[] }): Promise<LoopAgentResult> {
  const standIn = await startStandIn();
  const node = options.node ?? process.execPath;
  const nodeFlags = options.nodeFlags ?? deployedNodeFlags(options.root);
  const { stdout: nodeVersion } = await run(node, ["--version"]);
  const child = spawn(
    node,
    [...nodeFlags, join(options.root, "dist", "witness-agent.mjs"), "--url", standIn.url, "--host", "bench", "--secret-file", options.files.secretFile, "--heartbeat", options.files.heartbeat, "--circuit", options.files.circuit, "--interval", String(options.intervalSeconds)],
    { stdio: ["ignore", "ignore", "pipe"], env: childEnv({ PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: options.files.dir }) },
  );
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-2000);
  });
  const pid = child.pid;
  try {
    if (pid === undefined) throw new Error("the agent did not start");
    // Warm-up: start-up, first pushes, JIT.
    await sleep(Math.min(15_000, (options.seconds * 1000) / 6));
    if (child.exitCode !== null) throw new Error(`the agent exited early: ${stderr}`);
    const pushesBefore = standIn.pings();
    const cpuBefore = processCpuSeconds(pid);
    const rss: Array<{ total: number; anon: number; file: number }> = [];
    const deadline = Date.now() + options.seconds * 1000;
    let beat = 1;
    while (Date.now() < deadline) {
      // The pipeline keeps rewriting its heartbeat, as it would on a real host.
      writeFileSync(options.files.heartbeat, JSON.stringify({ at: Date.now() / 1000, iso: new Date().toISOString(), status: "ok", cycle: ++beat }));
      rss.push(residentKiB(pid));
      await sleep(5000);
    }
    const cpu = processCpuSeconds(pid) - cpuBefore;
    const pushes = standIn.pings() - pushesBefore;
    const totals = rss.map((sample) => sample.total);
    return {
      seconds: options.seconds,
      intervalSeconds: options.intervalSeconds,
      pushes,
      node: `${node} ${nodeVersion.trim()}`,
      nodeVersion: nodeVersion.trim(),
      nodeFlags,
      rssMedianKiB: percentile(totals, 50),
      rssAnonMedianKiB: percentile(rss.map((sample) => sample.anon), 50),
      rssFileMedianKiB: percentile(rss.map((sample) => sample.file), 50),
      rssMaxKiB: Math.max(...totals),
      rssFirstKiB: totals[0] ?? Number.NaN,
      rssLastKiB: totals.at(-1) ?? Number.NaN,
      cpuPerPushMs: (cpu * 1000) / Math.max(1, pushes),
    };
  } finally {
    child.kill("SIGTERM");
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null) resolve();
      else child.once("exit", () => resolve());
      setTimeout(resolve, 5000);
    });
    await standIn.close();
  }
}

export interface OneShotResult {
  what: string;
  runs: number;
  accepted: number;
  /** User + system CPU of the whole child process tree per run, milliseconds (bash `times`). */
  cpuPerRunMs: number;
  /** Peak resident memory of one run (GNU time %M of the last run), KiB. */
  peakRssKiB: number;
}

/**
 * Runs `command` `runs` times from one bash loop, as cron would run it once a minute,
 * and reads the children's CPU from bash's `times`; GNU time gives one run's peak RSS.
 */
async function measureOneShot(what: string, command: string, runs: number, env: Record<string, string>, standIn: StandIn): Promise<OneShotResult> {
  const before = standIn.pings();
  const script = `for i in $(seq ${runs}); do ${command} >/dev/null 2>&1; done; times`;
  const { stdout } = await run("bash", ["-c", script], { env: childEnv(env), timeout: 300_000 });
  const lines = stdout.trim().split("\n");
  const children = lines.at(-1) ?? "";
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce((total, match) => total + Number(match[1]) * 60 + Number(match[2]), 0);
  const accepted = standIn.pings() - before;
  let peakRssKiB = Number.NaN;
  try {
    const timed = await run("/usr/bin/time", ["-f", "%M", "bash", "-c", `${command} >/dev/null 2>&1`], { env: childEnv(env), timeout: 60_000 });
    peakRssKiB = Number(timed.stderr.trim().split("\n").at(-1));
  } catch {
    // GNU time missing: leave the peak unknown.
  }
  return { what, runs, accepted, cpuPerRunMs: (seconds * 1000) / runs, peakRssKiB };
}

export async function measureOneShots(options: { root: string; files: AgentFiles; runs: number }): Promise<OneShotResult[]> {
  const standIn = await startStandIn();
  try {
    const body = JSON.stringify({ v: 1, seq: 1, sentAt: Date.now(), agent: { version: "curl", startedAt: Date.now(), bootId: "b", kind: "shell" }, lastPushOutage: null, files: { heartbeat: { state: "missing" }, circuit: { state: "missing" } } });
    const bodyFile = join(options.files.dir, "curl-body.json");
    writeFileSync(bodyFile, body);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: options.files.dir,
      WITNESS_URL: standIn.url,
      WITNESS_HOST: "bench",
      WITNESS_SECRET_FILE: options.files.secretFile,
      WITNESS_HEARTBEAT: options.files.heartbeat,
      WITNESS_CIRCUIT: options.files.circuit,
      WITNESS_STATE_FILE: join(options.files.dir, "agent.state"),
    };
    const curl = `curl -sS --max-time 10 -H 'content-type: application/json' -H 'X-Witness-Timestamp: 1' -H 'X-Witness-Signature: ${"0".repeat(64)}' --data-binary @${bodyFile} ${standIn.url}/v1/ping/bench`;
    const shell = `sh ${join(options.root, "agent", "witness-agent.sh")} --once`;
    const nodeOnce = `${process.execPath} ${join(options.root, "dist", "witness-agent.mjs")} --once`;
    return [
      await measureOneShot("curl, one POST of a pre-signed body", curl, options.runs, env, standIn),
      await measureOneShot("shell agent (witness-agent.sh --once: sh, openssl, curl)", shell, options.runs, env, standIn),
      await measureOneShot("Node agent --once (a new node process per push)", nodeOnce, Math.max(5, Math.round(options.runs / 2)), env, standIn),
    ];
  } finally {
    await standIn.close();
  }
}

export interface FlagComparison {
  nodeVersion: string;
  node: string;
  flags: string[];
  samples: number;
  /** Medians over the samples of each run's median VmRSS (and its anonymous part), and of CPU per push. */
  withFlags: { rssMiB: number; anonMiB: number; cpuPerPushMs: number; runs: LoopAgentResult[] };
  withoutFlags: { rssMiB: number; anonMiB: number; cpuPerPushMs: number; runs: LoopAgentResult[] };
}

/**
 * The agent on one node binary with the unit's flags and without any, `samples` runs
 * each, all at once (they are idle between pushes; running them together keeps the
 * comparison fair when the machine's load changes during the measurement).
 */
export async function compareUnitFlags(options: { root: string; node: string; seconds: number; samples: number; dir: string }): Promise<FlagComparison> {
  const flags = deployedNodeFlags(options.root);
  const runs = await Promise.all(
    Array.from({ length: options.samples * 2 }, (_, index) =>
      measureLoopAgent({ root: options.root, files: agentFiles(join(options.dir, `run-${index}`)), seconds: options.seconds, intervalSeconds: 1, node: options.node, nodeFlags: index % 2 === 0 ? flags : [] }),
    ),
  );
  const summary = (subset: LoopAgentResult[]) => ({
    rssMiB: percentile(subset.map((run) => run.rssMedianKiB), 50) / 1024,
    anonMiB: percentile(subset.map((run) => run.rssAnonMedianKiB), 50) / 1024,
    cpuPerPushMs: percentile(subset.map((run) => run.cpuPerPushMs), 50),
    runs: subset,
  });
  return {
    nodeVersion: runs[0]?.nodeVersion ?? "?",
    node: options.node,
    flags,
    samples: options.samples,
    withFlags: summary(runs.filter((_, index) => index % 2 === 0)),
    withoutFlags: summary(runs.filter((_, index) => index % 2 === 1)),
  };
}

// Alone, the agent's memory with and without the unit's node flags (npm run bench runs
// everything, on the current node only):
//   node scripts/bench/agent.ts [--seconds 60] [--samples 3] [--node /usr/bin/node …]
// after npm run build:agent. Prints a Markdown table (per node binary, medians of the
// samples) and, with --json, every run.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { seconds: { type: "string", default: "60" }, samples: { type: "string", default: "3" }, node: { type: "string", multiple: true }, json: { type: "boolean", default: false } } });
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const dir = join(tmpdir(), `witness-bench-agent-${process.pid}`);
  const comparisons: FlagComparison[] = [];
  for (const node of values.node ?? [process.execPath]) {
    comparisons.push(await compareUnitFlags({ root, node, seconds: Number(values.seconds), samples: Number(values.samples), dir: join(dir, String(comparisons.length)) }));
  }
  if (values.json === true) console.log(JSON.stringify(comparisons, null, 2));
  console.log(`| node | samples | VmRSS without flags | VmRSS with \`${comparisons[0]?.flags.join(" ") ?? ""}\` | anonymous part without / with | CPU per push without / with |`);
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const c of comparisons) {
    const mib = (value: number) => `${value.toFixed(1)} MiB`;
    console.log(`| ${c.nodeVersion} | ${c.samples} × ${values.seconds} s | ${mib(c.withoutFlags.rssMiB)} | **${mib(c.withFlags.rssMiB)}** | ${mib(c.withoutFlags.anonMiB)} / ${mib(c.withFlags.anonMiB)} | ${c.withoutFlags.cpuPerPushMs.toFixed(2)} / ${c.withFlags.cpuPerPushMs.toFixed(2)} ms |`);
  }
}
