// The service files, checked by the tools that will read them: systemd-analyze verify
// on the units (as shipped and as agent/install.sh writes them), systemd-analyze
// security for the Node agent's exposure, and the launchd plist parsed as a property
// list. Where a tool is missing the test is skipped, except in CI (CI=true), where a
// missing tool fails: .ci/run installs it. And the node flags the agent runs with: the
// same wherever it is started, accepted by every Node it supports, and the real agent
// started with them pings.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deployedNodeFlags, execStart, INSTALLED_AGENT, nodeFlagsBefore, unitNodeFlags } from "../../scripts/agent-service.ts";
import { agentEnv, commandExists, REPO_ROOT, removeDir, start, StandInWorker, supportedNodes, type HostDir, startStage, stopStage } from "./agent-harness.ts";

const execFileAsync = promisify(execFile);
const inCi = process.env.CI === "true";
const UNITS = join(REPO_ROOT, "agent", "systemd");
const NODE_UNIT = join(UNITS, "witness-agent.service");
/** systemd-analyze security's scale: 0 safest, 10 unsafe. The agent is a network client that reads two files and writes one. */
const MAX_EXPOSURE = 3.0;

const haveSystemdAnalyze = await commandExists("systemd-analyze");
const havePython = await commandExists("python3");

describe("tools", () => {
  it.runIf(inCi)("CI has systemd-analyze and python3 (the checks below must not be skipped there)", () => {
    expect(haveSystemdAnalyze, "systemd-analyze is missing: apt-get install systemd (.ci/run does)").toBe(true);
    expect(havePython, "python3 is missing").toBe(true);
  });
});

/** The overall figure of `systemd-analyze security --offline=yes`: "→ Overall exposure level for x.service: 1.6 OK 🙂". */
export function overallExposure(output: string): number {
  const match = /Overall exposure level for \S+: (\d+(?:\.\d+)?) /.exec(output);
  if (match?.[1] === undefined) throw new Error(`no overall exposure in systemd-analyze's output:\n${output}`);
  return Number(match[1]);
}

async function analyze(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return start("systemd-analyze", args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SYSTEMD_LOG_LEVEL: "warning" } }).exited;
}

describe.skipIf(!haveSystemdAnalyze)("systemd units", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "witness-units-"));
  });
  afterAll(() => removeDir(root));

  it("reads the overall exposure from systemd-analyze's own output", () => {
    expect(overallExposure("✓ UMask= …\n\n→ Overall exposure level for witness-agent.service: 6.6 MEDIUM 😐\n")).toBe(6.6);
    expect(() => overallExposure("Failed to load unit")).toThrow(/no overall exposure/);
  });

  it("systemd-analyze verify accepts the shipped units and timer with no warning", async () => {
    for (const unit of ["witness-agent.service", "witness-agent-shell.service", "witness-agent-shell.timer"]) {
      const result = await analyze(["verify", join(UNITS, unit)]);
      expect({ unit, code: result.code, stderr: result.stderr }).toEqual({ unit, code: 0, stderr: "" });
    }
  });

  it("systemd-analyze verify accepts the units agent/install.sh writes", async () => {
    const target = join(root, "installed");
    await mkdir(join(target, "srv/data"), { recursive: true });
    await writeFile(join(target, "bundle.mjs"), "// stand-in bundle\n");
    for (const flags of [[], ["--shell"]]) {
      const run = await start("sh", [join(REPO_ROOT, "agent/install.sh"), "--root", target, "--bundle", join(target, "bundle.mjs"), "--node", process.execPath, "--heartbeat", "/srv/data/heartbeat.json", "--circuit", "/srv/data/circuit.json", ...flags], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      }).exited;
      expect(run.code, run.stderr).toBe(0);
    }
    for (const unit of ["witness-agent.service", "witness-agent-shell.service", "witness-agent-shell.timer"]) {
      const result = await analyze(["verify", join(target, "etc/systemd/system", unit)]);
      expect({ unit, code: result.code, stderr: result.stderr }).toEqual({ unit, code: 0, stderr: "" });
    }
  });

  it("systemd-analyze verify does catch a broken unit (so the checks above can fail)", async () => {
    const broken = join(root, "broken.service");
    await writeFile(broken, "[Service]\nExecStart=relative/path/agent\nProtectSystem=sometimes\n");
    const result = await analyze(["verify", broken]);
    expect(result.stderr).not.toBe("");
  });

  it(`the Node agent's unit is exposed ${MAX_EXPOSURE.toFixed(1)} or less (systemd-analyze security)`, async () => {
    const result = await analyze(["security", "--offline=yes", NODE_UNIT]);
    const exposure = overallExposure(result.stdout);
    console.log(`systemd-analyze security witness-agent.service: ${exposure}`);
    expect(exposure).toBeLessThanOrEqual(MAX_EXPOSURE);
  });

  it("the unit still lets the agent write circuit.json's directory, and keeps fchown/fchmod", async () => {
    const { readFile } = await import("node:fs/promises");
    const unit = await readFile(NODE_UNIT, "utf8");
    expect(unit).toMatch(/^ProtectSystem=strict$/m);
    expect(unit).toMatch(/^ReadWritePaths=-\/\S+$/m);
    // @system-service includes @chown; a ~@privileged filter would take chown away.
    expect(unit).toMatch(/^SystemCallFilter=@system-service$/m);
    expect(unit).not.toMatch(/^SystemCallFilter=~.*@(privileged|chown)/m);
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=yes/m);
  });
});

describe.skipIf(!havePython)("launchd plist", () => {
  it("parses as a property list with the keys launchd needs", async () => {
    const plist = join(REPO_ROOT, "agent", "launchd", "com.witness.agent.plist");
    const { stdout } = await execFileAsync("python3", ["-c", "import json,plistlib,sys; print(json.dumps(plistlib.load(open(sys.argv[1],'rb'))))", plist]);
    const parsed = JSON.parse(stdout) as Record<string, unknown>;
    expect(parsed).toMatchObject({ Label: "com.witness.agent", RunAtLoad: true, KeepAlive: true, WorkingDirectory: "/opt/witness" });
    expect(parsed.ProgramArguments).toEqual(expect.arrayContaining([expect.stringContaining("/opt/witness/witness-agent.mjs")]));
  });

  it("the parser refuses a broken plist (so the check above can fail)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "witness-plist-"));
    try {
      const broken = join(dir, "broken.plist");
      await writeFile(broken, '<?xml version="1.0"?><plist version="1.0"><dict><key>Label</key></dict>');
      await expect(execFileAsync("python3", ["-c", "import plistlib,sys; plistlib.load(open(sys.argv[1],'rb'))", broken])).rejects.toThrow();
    } finally {
      await removeDir(dir);
    }
  });
});

/** The command in a launchd plist that runs the agent (the `sh -c` string of ProgramArguments). */
function plistCommand(plistText: string): string {
  const command = /<string>([^<]*\/opt\/witness\/witness-agent\.mjs[^<]*)<\/string>/.exec(plistText)?.[1];
  if (command === undefined) throw new Error(`the plist has no ProgramArguments string that runs ${INSTALLED_AGENT}`);
  return command;
}

/** Every node command in a README that runs the installed agent, with the flags it gives node. */
function readmeAgentCommands(text: string): Array<{ line: string; flags: string[] | undefined }> {
  return text
    .split("\n")
    .filter((line) => line.includes(` ${INSTALLED_AGENT}`) && / node( |$)/.test(line.slice(0, line.indexOf(INSTALLED_AGENT))))
    .map((line) => ({ line, flags: nodeFlagsBefore(line.replaceAll("`", " ")) }));
}

describe("the node flags the agent runs with", () => {
  const flags = deployedNodeFlags(REPO_ROOT);

  it("reads the flags between the node binary and the agent, and nothing else", () => {
    expect(nodeFlagsBefore("/usr/bin/node --jitless --max-old-space-size=32 /opt/witness/witness-agent.mjs")).toEqual(["--jitless", "--max-old-space-size=32"]);
    expect(nodeFlagsBefore("sudo systemd-run -p User=witness node /opt/witness/witness-agent.mjs --check")).toEqual([]);
    expect(nodeFlagsBefore("node /opt/witness/other.mjs")).toBeUndefined();
    expect(() => unitNodeFlags("[Service]\nType=simple\n")).toThrow(/no ExecStart/);
  });

  it("the unit starts node with --jitless and --expose-gc (so the comparisons below compare something)", () => {
    expect(flags).toContain("--jitless");
    expect(flags).toContain("--no-expose-wasm");
    // Without it the agent cannot ask for the collections that free each https push's OpenSSL state (agent/src/run.ts).
    expect(flags).toContain("--expose-gc");
  });

  it("the launchd plist, the unit and plist install.sh writes, and the READMEs' commands give node the unit's flags", async () => {
    const found: Record<string, string[] | undefined> = {};
    found["agent/launchd/com.witness.agent.plist"] = nodeFlagsBefore(plistCommand(await readFile(join(REPO_ROOT, "agent/launchd/com.witness.agent.plist"), "utf8")));

    const root = await mkdtemp(join(tmpdir(), "witness-flags-"));
    try {
      await mkdir(join(root, "srv/data"), { recursive: true });
      await writeFile(join(root, "bundle.mjs"), "// stand-in bundle\n");
      for (const platform of ["systemd", "launchd"]) {
        const target = join(root, platform);
        await mkdir(target);
        const run = await start("sh", [join(REPO_ROOT, "agent/install.sh"), "--root", target, "--bundle", join(root, "bundle.mjs"), "--node", process.execPath, "--heartbeat", "/srv/data/heartbeat.json", "--circuit", "/srv/data/circuit.json", ...(platform === "launchd" ? ["--launchd"] : [])], {
          env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
        }).exited;
        expect(run.code, run.stderr).toBe(0);
      }
      const installedUnit = execStart(await readFile(join(root, "systemd/etc/systemd/system/witness-agent.service"), "utf8"));
      expect(installedUnit.startsWith(`${process.execPath} `)).toBe(true);
      found["witness-agent.service written by install.sh"] = nodeFlagsBefore(installedUnit);
      found["com.witness.agent.plist written by install.sh"] = nodeFlagsBefore(plistCommand(await readFile(join(root, "launchd/Library/LaunchDaemons/com.witness.agent.plist"), "utf8")));
    } finally {
      await removeDir(root);
    }

    for (const readme of ["README.md", "agent/README.md"]) {
      const commands = readmeAgentCommands(await readFile(join(REPO_ROOT, readme), "utf8"));
      expect(commands.length, `${readme} shows no command that runs ${INSTALLED_AGENT}`).toBeGreaterThan(0);
      for (const [index, command] of commands.entries()) found[`${readme} command ${index + 1}`] = command.flags;
    }
    const expected = Object.fromEntries(Object.keys(found).map((where) => [where, flags]));
    expect(found).toEqual(expected);
  });
});

const nodes = supportedNodes();
const node18 = nodes.find((node) => node.major === 18)?.path;

describe("the agent started as the unit starts it", () => {
  const flags = deployedNodeFlags(REPO_ROOT);
  let bundle: string;
  let host: HostDir;
  const worker = new StandInWorker();

  beforeAll(async () => {
    ({ bundle, host } = await startStage(worker));
  });
  afterAll(() => stopStage(worker, host));

  it.runIf(inCi)("CI has Node 18 (WITNESS_NODE18), so the Node 18 run below is not skipped", () => {
    expect(node18, "set WITNESS_NODE18 to a Node 18 binary (.ci/run does)").toBeDefined();
  });

  for (const { major, path } of nodes) {
    it.skipIf(path === undefined)(`on Node ${major}: node accepts the flags, and the agent in its loop pushes pings the Worker accepts, with nothing on stderr`, async () => {
      const node = path ?? "node";
      const version = await start(node, ["--version"], { env: {} }).exited;
      expect(version.stdout).toMatch(new RegExp(`^v${major}\\.`));
      // An unknown flag stops node before the agent runs: what a flag this Node lacks would do.
      const refused = await start(node, [...flags, "--no-such-witness-flag", bundle, "--once"], { env: agentEnv(worker, host) }).exited;
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/bad option: --no-such-witness-flag/);

      const before = worker.pings.length;
      const agent = start(node, [...flags, bundle, "--interval", "1"], { env: agentEnv(worker, host) });
      const pings = (await worker.waitForPings(before + 2, 20_000)).slice(before);
      agent.child.kill("SIGTERM");
      const finished = await agent.exited;
      expect(finished.code).toBe(0);
      // --jitless alone makes node warn at every start (WebAssembly off); --no-expose-wasm keeps stderr clean.
      expect(finished.stderr).toBe("");
      expect(pings.map((ping) => ({ signatureValid: ping.signatureValid, heartbeat: ping.body?.files.heartbeat.state, mode: ping.body?.agent.mode }))).toEqual([
        { signatureValid: true, heartbeat: "ok", mode: "service" },
        { signatureValid: true, heartbeat: "ok", mode: "service" },
      ]);
    });
  }
});
