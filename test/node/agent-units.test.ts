// The service files, checked by the tools that will read them: systemd-analyze verify
// on the units (as shipped and as agent/install.sh writes them), systemd-analyze
// security for the Node agent's exposure, and the launchd plist parsed as a property
// list. Where a tool is missing the test is skipped, except in CI (CI=true), where a
// missing tool fails: .ci/run installs it.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commandExists, REPO_ROOT, removeDir, start } from "./agent-harness.ts";

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
