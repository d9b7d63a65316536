// The agent's footprint on a trading host: resident memory of the Node agent in loop
// mode and its CPU per push (from /proc), against the alternatives a user might run from
// cron instead: one `curl` per ping, the shell agent, and the Node agent with --once.
// Everything talks to a stand-in Worker on 127.0.0.1 that accepts every ping, over plain
// http or over https with a certificate made for the run (as a host's agent talks to
// the real Worker: it then loads node:https and OpenSSL's share of memory).
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
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

export type Scheme = "http" | "https";

/** A certificate for 127.0.0.1 made for the run; the agent trusts it through NODE_EXTRA_CA_CERTS. */
export interface TestCertificate {
  certPath: string;
  key: Buffer;
  cert: Buffer;
}

/** Made with openssl, as test/node/agent-https.test.ts does; undefined when openssl is missing. */
export function makeTestCertificate(dir: string): TestCertificate | undefined {
  mkdirSync(dir, { recursive: true });
  const keyPath = join(dir, "key.pem");
  const certPath = join(dir, "cert.pem");
  try {
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", keyPath, "-out", certPath], { stdio: "ignore" });
  } catch {
    return undefined;
  }
  return { certPath, key: readFileSync(keyPath), cert: readFileSync(certPath) };
}

/** A Worker stand-in: answers every POST /v1/ping/<host> as an accepted ping, over https when given a certificate. */
async function startStandIn(tls?: TestCertificate): Promise<StandIn> {
  let pings = 0;
  const answer = (request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    request.on("end", () => {
      if (request.method === "POST" && request.url?.startsWith("/v1/ping/") === true) pings++;
      response.writeHead(200, { "content-type": "application/json", "x-witness-write": "none" });
      response.end(JSON.stringify({ ok: true, serverTime: Date.now(), commands: [] }));
    });
  };
  const server: Server = tls === undefined ? createServer(answer) : createTlsServer({ key: tls.key, cert: tls.cert }, answer);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls === undefined ? "http" : "https"}://127.0.0.1:${port}`,
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

/**
 * Least-squares slope of resident memory against pushes, MiB per 100 pushes: a climb
 * shows here even when the median looks fine. NaN with fewer than three samples.
 */
export function slopeMiBPer100Pushes(samples: ReadonlyArray<{ pushes: number; totalKiB: number }>): number {
  if (samples.length < 3) return Number.NaN;
  const meanX = samples.reduce((sum, sample) => sum + sample.pushes, 0) / samples.length;
  const meanY = samples.reduce((sum, sample) => sum + sample.totalKiB, 0) / samples.length;
  let covariance = 0;
  let variance = 0;
  for (const sample of samples) {
    covariance += (sample.pushes - meanX) * (sample.totalKiB - meanY);
    variance += (sample.pushes - meanX) ** 2;
  }
  return variance === 0 ? Number.NaN : ((covariance / variance) * 100) / 1024;
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
  scheme: Scheme;
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
  /** Slope of VmRSS against pushes over every sample, and over the second half only (has it levelled off?), MiB per 100 pushes. */
  rssSlopeMiBPer100: number;
  rssSlopeLateMiBPer100: number;
  /** (utime + stime) over the measured pushes / their number, milliseconds. */
  cpuPerPushMs: number;
}

/**
 * The Node agent in loop mode at a short interval for `seconds`, sampled from /proc,
 * started with the systemd unit's node flags unless `nodeFlags` says otherwise.
 */
export async function measureLoopAgent(options: {
  root: string;
  files: AgentFiles;
  seconds: number;
  intervalSeconds: number;
  node?: string;
  nodeFlags?: string[];
  /** Over https to a stand-in with this certificate; plain http without one. */
  tls?: TestCertificate;
  /** The bundle to run; dist/witness-agent.mjs unless given. */
  bundle?: string;
}): Promise<LoopAgentResult> {
  const standIn = await startStandIn(options.tls);
  const node = options.node ?? process.execPath;
  const nodeFlags = options.nodeFlags ?? deployedNodeFlags(options.root);
  const { stdout: nodeVersion } = await run(node, ["--version"]);
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: options.files.dir };
  if (options.tls !== undefined) env["NODE_EXTRA_CA_CERTS"] = options.tls.certPath;
  const child = spawn(
    node,
    [...nodeFlags, options.bundle ?? join(options.root, "dist", "witness-agent.mjs"), "--url", standIn.url, "--host", "bench", "--secret-file", options.files.secretFile, "--heartbeat", options.files.heartbeat, "--circuit", options.files.circuit, "--interval", String(options.intervalSeconds)],
    { stdio: ["ignore", "ignore", "pipe"], env: childEnv(env) },
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
    const rss: Array<{ total: number; anon: number; file: number; pushes: number }> = [];
    const deadline = Date.now() + options.seconds * 1000;
    let beat = 1;
    while (Date.now() < deadline) {
      // The pipeline keeps rewriting its heartbeat, as it would on a real host.
      writeFileSync(options.files.heartbeat, JSON.stringify({ at: Date.now() / 1000, iso: new Date().toISOString(), status: "ok", cycle: ++beat }));
      rss.push({ ...residentKiB(pid), pushes: standIn.pings() - pushesBefore });
      await sleep(5000);
    }
    const cpu = processCpuSeconds(pid) - cpuBefore;
    const pushes = standIn.pings() - pushesBefore;
    if (child.exitCode !== null) throw new Error(`the agent exited during the run: ${stderr}`);
    // A warning (a push that timed out on a loaded machine) does not spoil the figures; it is reported.
    if (stderr !== "") process.stderr.write(`bench: the agent (${node} ${nodeFlags.join(" ")}) wrote to stderr: ${stderr}`);
    const totals = rss.map((sample) => sample.total);
    const bySlope = rss.map((sample) => ({ pushes: sample.pushes, totalKiB: sample.total }));
    return {
      scheme: options.tls === undefined ? "http" : "https",
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
      rssSlopeMiBPer100: slopeMiBPer100Pushes(bySlope),
      rssSlopeLateMiBPer100: slopeMiBPer100Pushes(bySlope.slice(Math.floor(bySlope.length / 2))),
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

export interface RunSummary {
  /** Medians over the samples of each run's median VmRSS (and its anonymous part), of its slopes and of CPU per push. */
  rssMiB: number;
  anonMiB: number;
  lastMiB: number;
  slopeMiBPer100: number;
  slopeLateMiBPer100: number;
  cpuPerPushMs: number;
  pushes: number;
  runs: LoopAgentResult[];
}

export interface FlagComparison {
  nodeVersion: string;
  node: string;
  scheme: Scheme;
  flags: string[];
  samples: number;
  withFlags: RunSummary;
  withoutFlags: RunSummary;
}

function summarize(runs: LoopAgentResult[]): RunSummary {
  const median = (pick: (run: LoopAgentResult) => number) => percentile(runs.map(pick), 50);
  return {
    rssMiB: median((run) => run.rssMedianKiB) / 1024,
    anonMiB: median((run) => run.rssAnonMedianKiB) / 1024,
    lastMiB: median((run) => run.rssLastKiB) / 1024,
    slopeMiBPer100: median((run) => run.rssSlopeMiBPer100),
    slopeLateMiBPer100: median((run) => run.rssSlopeLateMiBPer100),
    cpuPerPushMs: median((run) => run.cpuPerPushMs),
    pushes: median((run) => run.pushes),
    runs,
  };
}

/**
 * The agent on one node binary with the unit's flags (or `flags`) and without any,
 * `samples` runs each per scheme, all at once (they are idle between pushes; running
 * them together keeps the comparison fair when the machine's load changes during the
 * measurement). https is left out, with a line on stderr, when openssl is missing.
 */
export async function compareUnitFlags(options: { root: string; node: string; seconds: number; samples: number; dir: string; schemes?: Scheme[]; flags?: string[]; bundle?: string }): Promise<FlagComparison[]> {
  const flags = options.flags ?? deployedNodeFlags(options.root);
  let schemes = options.schemes ?? ["http", "https"];
  let tls: TestCertificate | undefined;
  if (schemes.includes("https")) {
    tls = makeTestCertificate(join(options.dir, "tls"));
    if (tls === undefined) {
      process.stderr.write("bench: openssl not found, so no https stand-in: measuring plain http only\n");
      schemes = schemes.filter((scheme) => scheme !== "https");
    }
  }
  const plan = schemes.flatMap((scheme) => Array.from({ length: options.samples * 2 }, (_, index) => ({ scheme, withFlags: index % 2 === 0 })));
  const runs = await Promise.all(
    plan.map((step, index) =>
      measureLoopAgent({
        root: options.root,
        files: agentFiles(join(options.dir, `run-${index}`)),
        seconds: options.seconds,
        intervalSeconds: 1,
        node: options.node,
        nodeFlags: step.withFlags ? flags : [],
        ...(step.scheme === "https" && tls !== undefined ? { tls } : {}),
        ...(options.bundle !== undefined ? { bundle: options.bundle } : {}),
      }),
    ),
  );
  return schemes.map((scheme) => {
    const of = (withFlags: boolean) => runs.filter((_, index) => plan[index]?.scheme === scheme && plan[index]?.withFlags === withFlags);
    return {
      nodeVersion: runs[0]?.nodeVersion ?? "?",
      node: options.node,
      scheme,
      flags,
      samples: options.samples,
      withFlags: summarize(of(true)),
      withoutFlags: summarize(of(false)),
    };
  });
}

/** The Markdown table of compareUnitFlags' results, one row per node binary and scheme. */
export function comparisonTable(comparisons: readonly FlagComparison[], seconds: number): string[] {
  const mib = (value: number) => `${value.toFixed(1)} MiB`;
  const slope = (summary: RunSummary) => `${summary.slopeMiBPer100 >= 0 ? "+" : ""}${summary.slopeMiBPer100.toFixed(2)} (${summary.slopeLateMiBPer100 >= 0 ? "+" : ""}${summary.slopeLateMiBPer100.toFixed(2)})`;
  const lines = [
    `| node | stand-in | samples | VmRSS without flags | VmRSS with \`${comparisons[0]?.flags.join(" ") ?? ""}\` | last sample without / with | anonymous part without / with | slope, MiB per 100 pushes (second half) without / with | CPU per push without / with |`,
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const c of comparisons) {
    lines.push(
      `| ${c.nodeVersion} | ${c.scheme} | ${c.samples} × ${seconds} s (${Math.round(c.withFlags.pushes)} pushes) | ${mib(c.withoutFlags.rssMiB)} | **${mib(c.withFlags.rssMiB)}** | ${mib(c.withoutFlags.lastMiB)} / ${mib(c.withFlags.lastMiB)} | ${mib(c.withoutFlags.anonMiB)} / ${mib(c.withFlags.anonMiB)} | ${slope(c.withoutFlags)} / **${slope(c.withFlags)}** | ${c.withoutFlags.cpuPerPushMs.toFixed(2)} / ${c.withFlags.cpuPerPushMs.toFixed(2)} ms |`,
    );
  }
  return lines;
}

// Alone, the agent's memory with and without the unit's node flags, over http and https
// (npm run bench runs everything, on the current node only):
//   node scripts/bench/agent.ts [--seconds 60] [--samples 3] [--node /usr/bin/node …] [--scheme http|https]
// after npm run build:agent. --flags "…" measures other node flags in place of the
// unit's, --bundle another build of the agent (to try a change before making it).
// Prints a Markdown table (per node binary and stand-in, medians of the samples) and,
// with --json, every run; --out docs/benchmarks.md also writes the table there, between
// the BENCH_AGENT_BEGIN and BENCH_AGENT_END markers (the rest of the page is left alone).
export const BENCH_AGENT_BEGIN = "<!-- written by scripts/bench/agent.ts: do not edit by hand -->";
export const BENCH_AGENT_END = "<!-- end of scripts/bench/agent.ts -->";

/** `page` with the text between the markers replaced by `block`; throws when the markers are missing. */
export function replaceBenchAgentBlock(page: string, block: string): string {
  const from = page.indexOf(BENCH_AGENT_BEGIN);
  const to = page.indexOf(BENCH_AGENT_END);
  if (from < 0 || to < from) throw new Error(`the page has no ${BENCH_AGENT_BEGIN} … ${BENCH_AGENT_END} block to write into`);
  return `${page.slice(0, from + BENCH_AGENT_BEGIN.length)}\n${block.trimEnd()}\n${page.slice(to)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "60" },
      samples: { type: "string", default: "3" },
      node: { type: "string", multiple: true },
      scheme: { type: "string", multiple: true },
      flags: { type: "string" },
      bundle: { type: "string" },
      json: { type: "boolean", default: false },
      out: { type: "string" },
    },
  });
  const startedAt = new Date();
  const loadAverage = readFileSync("/proc/loadavg", "utf8").trim();
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const dir = join(tmpdir(), `witness-bench-agent-${process.pid}`);
  const schemes = (values.scheme ?? ["http", "https"]).map((scheme) => {
    if (scheme !== "http" && scheme !== "https") throw new Error(`--scheme must be http or https, not ${scheme}`);
    return scheme;
  });
  // Every node binary at once, as every run of one binary is: the agents sleep between
  // pushes, and running them side by side keeps the comparison fair when the load changes.
  const comparisons: FlagComparison[] = (
    await Promise.all(
      (values.node ?? [process.execPath]).map((node, index) =>
        compareUnitFlags({
          root,
          node,
          seconds: Number(values.seconds),
          samples: Number(values.samples),
          dir: join(dir, String(index)),
          schemes,
          ...(values.flags !== undefined ? { flags: values.flags.split(/\s+/).filter((flag) => flag !== "") } : {}),
          ...(values.bundle !== undefined ? { bundle: values.bundle } : {}),
        }),
      ),
    )
  ).flat();
  rmSync(dir, { recursive: true, force: true });
  if (values.json === true) console.log(JSON.stringify(comparisons, null, 2));
  const table = comparisonTable(comparisons, Number(values.seconds));
  for (const line of table) console.log(line);
  if (values.out !== undefined) {
    const command = `node scripts/bench/agent.ts ${process.argv.slice(2).filter((arg, index, args) => arg !== "--json" && arg !== "--out" && args[index - 1] !== "--out").join(" ")}`;
    const block = [
      `Measured ${startedAt.toISOString().slice(0, 16)}Z with \`${command}\` (${Math.round((Date.now() - startedAt.getTime()) / 1000)} s; load average at the start ${loadAverage}). Each cell is the median over the samples; a run's VmRSS is the median of its samples (every 5 s after a warm-up), its slope the least-squares fit of VmRSS against pushes over every sample and, in brackets, over the second half only.`,
      "",
      ...table,
    ].join("\n");
    writeFileSync(values.out, replaceBenchAgentBlock(readFileSync(values.out, "utf8"), block));
    process.stderr.write(`bench: wrote the agent table into ${values.out}\n`);
  }
}
