// agent/install.sh, run for real into a temporary root (--root): the unit it writes
// points at the files it installed, the installed agent runs from those paths, a second
// run changes nothing, and an existing agent.env (the secret) is never overwritten.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { accept, buildAgentBundle, REPO_ROOT, removeDir, start, StandInWorker } from "./agent-harness.ts";

const INSTALL = join(REPO_ROOT, "agent", "install.sh");
const execFileAsync = promisify(execFile);
const worker = new StandInWorker();
let bundle: string;
let root: string;

beforeAll(async () => {
  bundle = await buildAgentBundle();
  await worker.start();
});
afterAll(() => worker.stop());
afterEach(async () => {
  await removeDir(root);
  worker.pings.length = 0;
  worker.responder = () => accept();
});

const DATA = "/srv/trader/data";
const HEARTBEAT = `${DATA}/heartbeat.json`;
const CIRCUIT = `${DATA}/circuit.json`;

async function makeRoot(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "witness-install-"));
  await mkdir(join(dir, DATA), { recursive: true });
  await writeFile(join(dir, HEARTBEAT), JSON.stringify({ at: Date.now() / 1000, status: "ok" }));
  return dir;
}

function install(args: string[], stdin?: string) {
  const running = start("sh", [INSTALL, "--root", root, "--bundle", bundle, "--node", process.execPath, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root },
    stdin: stdin ?? "",
  });
  return running.exited;
}

function settingsArgs(): string[] {
  return ["--url", worker.url, "--host", worker.hostId, "--heartbeat", HEARTBEAT, "--circuit", CIRCUIT, "--secret-stdin"];
}

/** Every file under the root with its mode, size, mtime and hash (the actions log aside). */
async function snapshot(dir: string, prefix = ""): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const relative = join(prefix, entry.name);
    if (relative === "install-actions.log") continue;
    const info = await stat(join(dir, relative));
    if (entry.isDirectory()) {
      result[relative] = `dir ${(info.mode & 0o7777).toString(8)}`;
      Object.assign(result, await snapshot(dir, relative));
    } else {
      const hash = createHash("sha256").update(await readFile(join(dir, relative))).digest("hex");
      result[relative] = `${(info.mode & 0o7777).toString(8)} ${info.size} ${info.mtimeMs} ${hash}`;
    }
  }
  return result;
}

function unitValue(unit: string, key: string): string {
  const line = unit.split("\n").find((candidate) => candidate.startsWith(`${key}=`));
  if (line === undefined) throw new Error(`the unit has no ${key}= line`);
  return line.slice(key.length + 1);
}

function envFileValues(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) values[match[1]] = match[2];
  }
  return values;
}

describe("agent/install.sh (systemd, into a temporary root)", () => {
  it("installs the agent, a 0600 env file and a unit whose paths point at what it installed, and the installed agent runs", async () => {
    root = await makeRoot();
    const result = await install([...settingsArgs(), "--pipeline-user", "nobody"], `${worker.secret}\n`);
    expect(result.code, result.stderr).toBe(0);

    const unit = await readFile(join(root, "etc/systemd/system/witness-agent.service"), "utf8");
    const [nodeBinary, ...args] = unitValue(unit, "ExecStart").split(" ");
    expect(nodeBinary).toBe(process.execPath);
    const script = args.at(-1) ?? "";
    expect(script).toBe("/opt/witness/witness-agent.mjs");
    expect(await readFile(join(root, script))).toEqual(await readFile(bundle));
    expect((await stat(join(root, script))).mode & 0o777).toBe(0o755);
    expect(unitValue(unit, "WorkingDirectory")).toBe("/opt/witness");
    expect(unitValue(unit, "ReadWritePaths")).toBe(`-${DATA}`);

    const envPath = unitValue(unit, "EnvironmentFile");
    expect(envPath).toBe("/etc/witness/agent.env");
    expect((await stat(join(root, envPath))).mode & 0o777).toBe(0o600);
    const env = envFileValues(await readFile(join(root, envPath), "utf8"));
    expect(env).toMatchObject({ WITNESS_URL: worker.url, WITNESS_HOST: worker.hostId, WITNESS_SECRET: worker.secret, WITNESS_HEARTBEAT: HEARTBEAT, WITNESS_CIRCUIT: CIRCUIT });

    // The shared data directory: setgid and group-writable, handed to the group witness.
    expect((await stat(join(root, DATA))).mode & 0o7777).toBe(0o2775);
    const actions = (await readFile(join(root, "install-actions.log"), "utf8")).split("\n");
    expect(actions).toContain(`chgrp witness ${join(root, DATA)}`);
    expect(actions).toContain("usermod -a -G witness nobody");
    expect(actions).toContain("systemctl enable witness-agent.service");

    // What systemd would start: ExecStart with the env file's settings (paths moved into the root).
    const agentEnv = { ...env, PATH: "/usr/bin:/bin", WITNESS_HEARTBEAT: join(root, HEARTBEAT), WITNESS_CIRCUIT: join(root, CIRCUIT) };
    const run = await start(nodeBinary ?? "", [...args.slice(0, -1), join(root, script), "--once"], { env: agentEnv, cwd: join(root, "opt/witness") }).exited;
    expect(run.code, run.stderr).toBe(0);
    expect(worker.pings.at(-1)?.body?.files.heartbeat.state).toBe("ok");
  });

  it("a second run changes nothing, and never overwrites an existing env file's secret", async () => {
    root = await makeRoot();
    expect((await install(settingsArgs(), `${worker.secret}\n`)).code).toBe(0);
    // The operator edits the secret by hand afterwards.
    const envPath = join(root, "etc/witness/agent.env");
    const edited = (await readFile(envPath, "utf8")).replace(worker.secret, "hand-edited-secret-0123456789abcdef");
    await writeFile(envPath, edited);
    const before = await snapshot(root);
    const actionsBefore = await readFile(join(root, "install-actions.log"), "utf8");

    const again = await install(["--url", "https://other.example.workers.dev", "--secret-stdin"], "another-secret-0123456789abcdef\n");
    expect(again.code, again.stderr).toBe(0);
    expect(await snapshot(root)).toEqual(before);
    expect(await readFile(envPath, "utf8")).toBe(edited);
    expect(again.stdout).toContain("/etc/witness/agent.env exists and is left as it is");
    const newActions = (await readFile(join(root, "install-actions.log"), "utf8")).slice(actionsBefore.length);
    expect(newActions).not.toContain("daemon-reload");
    expect(newActions).not.toContain("restart");
  });

  it("without a secret: enabled but not started, and says what to do next", async () => {
    root = await makeRoot();
    const result = await install(["--url", worker.url, "--host", worker.hostId, "--heartbeat", HEARTBEAT, "--circuit", CIRCUIT]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("next: put the host secret in /etc/witness/agent.env");
    const actions = await readFile(join(root, "install-actions.log"), "utf8");
    expect(actions).toContain("systemctl enable witness-agent.service");
    expect(actions).not.toMatch(/systemctl (re)?start/);
  });

  it("a relative circuit path: one line naming the fix, exit 2, nothing installed", async () => {
    root = await makeRoot();
    const result = await install(["--url", worker.url, "--host", worker.hostId, "--heartbeat", HEARTBEAT, "--circuit", "data/circuit.json"]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split("\n")).toEqual([
      'install.sh: WITNESS_CIRCUIT in /etc/witness/agent.env must be an absolute path (got "data/circuit.json"); pass --circuit /path/to/circuit.json or edit the file',
    ]);
    await expect(stat(join(root, "etc/systemd/system/witness-agent.service"))).rejects.toThrow(/ENOENT/);
  });

  it("an unknown pipeline user: one line, exit 2", async () => {
    root = await makeRoot();
    const result = await install([...settingsArgs(), "--pipeline-user", "no-such-user-here"], `${worker.secret}\n`);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^install\.sh: there is no user no-such-user-here; pass --pipeline-user/);
  });

  it("--shell: the shell agent, its unit and timer", async () => {
    root = await makeRoot();
    const result = await install([...settingsArgs(), "--shell"], `${worker.secret}\n`);
    expect(result.code, result.stderr).toBe(0);
    const unit = await readFile(join(root, "etc/systemd/system/witness-agent-shell.service"), "utf8");
    const script = unitValue(unit, "ExecStart").split(" ").at(-1) ?? "";
    expect(await readFile(join(root, script), "utf8")).toBe(await readFile(join(REPO_ROOT, "agent/witness-agent.sh"), "utf8"));
    expect(unitValue(unit, "EnvironmentFile")).toBe("/etc/witness/agent.env");
    await stat(join(root, "etc/systemd/system/witness-agent-shell.timer"));
    expect(await readFile(join(root, "install-actions.log"), "utf8")).toContain("systemctl enable witness-agent-shell.timer");
  });

  it("--launchd: a daemon plist that runs the installed agent as the pipeline's user", async () => {
    root = await makeRoot();
    const result = await install([...settingsArgs(), "--launchd", "--pipeline-user", "nobody"], `${worker.secret}\n`);
    expect(result.code, result.stderr).toBe(0);
    const plistPath = join(root, "Library/LaunchDaemons/com.witness.agent.plist");
    const { stdout } = await execFileAsync("python3", ["-c", "import json,plistlib,sys; print(json.dumps(plistlib.load(open(sys.argv[1],'rb'))))", plistPath]);
    const plist = JSON.parse(stdout) as { UserName: string; ProgramArguments: string[]; KeepAlive: boolean };
    expect(plist.UserName).toBe("nobody");
    expect(plist.KeepAlive).toBe(true);
    expect(plist.ProgramArguments.at(-1)).toBe(process.execPath);
    expect(plist.ProgramArguments[2]).toContain(". /etc/witness/agent.env;");
    expect(plist.ProgramArguments[2]).toContain("/opt/witness/witness-agent.mjs");
    await stat(join(root, "opt/witness/witness-agent.mjs"));
    const actions = await readFile(join(root, "install-actions.log"), "utf8");
    expect(actions).toContain(`chown nobody ${join(root, "etc/witness/agent.env")}`);
    expect(actions).toContain("launchctl bootstrap system /Library/LaunchDaemons/com.witness.agent.plist");
  });
});
