// SIGTERM and SIGINT stop the agent within a second, whether it is waiting on a
// request that never answers or sleeping until the next push.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { accept, agentEnv, sleep, startAgent, StandInWorker, type HostDir, startStage, stopStage } from "./agent-harness.ts";

let bundle: string;
const worker = new StandInWorker();
let host: HostDir;

beforeAll(async () => {
  ({ bundle, host } = await startStage(worker));
});
afterAll(() => stopStage(worker, host));
afterEach(() => {
  worker.pings.length = 0;
  worker.responder = () => accept();
});

describe("stopping", () => {
  it.each(["SIGTERM", "SIGINT"] as const)("%s during a request that never answers: exits 0 within a second", async (signal) => {
    worker.responder = () => "hang";
    const agent = startAgent(bundle, [], agentEnv(worker, host));
    await worker.waitForPings(1);
    const sentAt = Date.now();
    agent.child.kill(signal);
    const result = await agent.exited;
    expect(Date.now() - sentAt).toBeLessThan(1000);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("witness-agent stopped");
  });

  it("SIGTERM while sleeping between pushes: exits 0 within a second", async () => {
    const agent = startAgent(bundle, [], agentEnv(worker, host, { WITNESS_INTERVAL: "60" }));
    await worker.waitForPings(1);
    while (!agent.output().stdout.includes("first push accepted")) await sleep(20);
    await sleep(200);
    const sentAt = Date.now();
    agent.child.kill("SIGTERM");
    const result = await agent.exited;
    expect(Date.now() - sentAt).toBeLessThan(1000);
    expect(result.code).toBe(0);
    expect(worker.pings).toHaveLength(1);
  });
});
