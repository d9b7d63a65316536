// The agent's promise is Node 18+, so a host with Debian's or Ubuntu's nodejs package
// can run it. CI installs Node 18 (the node@18 package) and points WITNESS_NODE18 at it;
// elsewhere this file is skipped, and says so.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentEnv, start, StandInWorker, type HostDir, startStage, stopStage } from "./agent-harness.ts";

const node18 = process.env["WITNESS_NODE18"];

describe.skipIf(node18 === undefined)("the bundled agent on Node 18", () => {
  let bundle: string;
  let host: HostDir;
  const worker = new StandInWorker();

  beforeAll(async () => {
    ({ bundle, host } = await startStage(worker));
  });
  afterAll(() => stopStage(worker, host));

  it("runs on Node 18 and pushes a ping the Worker's verifier accepts", async () => {
    const version = await start(node18 ?? "node", ["--version"], { env: {} }).exited;
    expect(version.stdout).toMatch(/^v18\./);
    const run = await start(node18 ?? "node", [bundle, "--once"], { env: agentEnv(worker, host) }).exited;
    expect(run.stderr).not.toMatch(/TypeError|ReferenceError|SyntaxError/);
    expect(run.code).toBe(0);
    expect(worker.pings).toHaveLength(1);
    expect(worker.pings[0]?.signatureValid).toBe(true);
    expect(worker.pings[0]?.body?.files.heartbeat.state).toBe("ok");
  });
});
