// One signature, three signers: the shared vectors must hold for the Node agent's
// node:crypto signer, the Worker's WebCrypto verifier and the shell agent's openssl
// HMAC; and a real push from each agent must verify at the stand-in Worker.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { signPing as workerSign, verifyPing } from "../../src/edge/signature.ts";
import { signPing as agentSign } from "../../agent/src/sign.ts";
import { agentEnv, commandExists, REPO_ROOT, runAgent, runShellAgent, SHELL_AGENT, StandInWorker, type HostDir, startStage, stopStage } from "./agent-harness.ts";

interface Vector {
  name: string;
  secret: string;
  timestamp: string;
  body: string;
  signature: string;
}
const vectors = (JSON.parse(readFileSync(join(REPO_ROOT, "test", "vectors", "signature.json"), "utf8")) as { cases: Vector[] }).cases;
const shellTools = (await commandExists("curl")) && (await commandExists("openssl"));

let bundle: string;
const worker = new StandInWorker();
let host: HostDir;

beforeAll(async () => {
  ({ bundle, host } = await startStage(worker));
});
afterAll(() => stopStage(worker, host));
afterEach(() => {
  worker.pings.length = 0;
});

describe("shared signature vectors", () => {
  it("has a few cases", () => expect(vectors.length).toBeGreaterThanOrEqual(3));

  it.each(vectors)("node agent signer: $name", (vector) => {
    expect(agentSign(vector.secret, vector.timestamp, vector.body)).toBe(vector.signature);
  });

  it.each(vectors)("Worker signer and verifier: $name", async (vector) => {
    expect(await workerSign(vector.secret, vector.timestamp, vector.body)).toBe(vector.signature);
    expect(await verifyPing(vector.secret, vector.timestamp, vector.body, vector.signature)).toBe(true);
    expect(await verifyPing(vector.secret, vector.timestamp, `${vector.body} `, vector.signature)).toBe(false);
    expect(await verifyPing(`${vector.secret}x`, vector.timestamp, vector.body, vector.signature)).toBe(false);
  });

  it.skipIf(!shellTools).each(vectors)("shell agent signer (openssl): $name", (vector) => {
    const signature = execFileSync("sh", [SHELL_AGENT, "--sign", vector.timestamp], {
      input: Buffer.from(vector.body, "utf8"),
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", WITNESS_SECRET: vector.secret },
    })
      .toString("utf8")
      .trim();
    expect(signature).toBe(vector.signature);
  });
});

describe("a real push verifies at the Worker's verifier", () => {
  it("node agent --once: signed, timestamped now, posted to /v1/ping/<host>", async () => {
    const before = Date.now();
    const result = await runAgent(bundle, ["--once"], agentEnv(worker, host));
    expect(result.code).toBe(0);
    const [ping] = worker.pings;
    expect(ping?.signatureValid).toBe(true);
    expect(ping?.path).toBe(`/v1/ping/${worker.hostId}`);
    expect(ping?.headers["content-type"]).toBe("application/json");
    const timestamp = Number(ping?.headers["x-witness-timestamp"]);
    expect(timestamp).toBeGreaterThanOrEqual(before);
    expect(timestamp).toBeLessThanOrEqual(Date.now());
    expect(ping?.body?.agent.kind).toBe("node");
  });

  it("a trailing slash in WITNESS_URL is stripped", async () => {
    const result = await runAgent(bundle, ["--once"], agentEnv(worker, host, { WITNESS_URL: `${worker.url}/` }));
    expect(result.code).toBe(0);
    expect(worker.pings[0]?.path).toBe(`/v1/ping/${worker.hostId}`);
  });

  it("a wrong secret is refused (401) and --once exits 1 naming the Worker's error", async () => {
    const result = await runAgent(bundle, ["--once"], agentEnv(worker, host, { WITNESS_SECRET_FILE: "", WITNESS_SECRET: "0".repeat(64) }));
    expect(worker.pings[0]?.signatureValid).toBe(false);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("HTTP 401: bad signature");
    expect(worker.pings).toHaveLength(1);
  });

  it.skipIf(!shellTools)("shell agent --once: accepted by the Worker's verifier", async () => {
    const result = await runShellAgent(["--once"], agentEnv(worker, host));
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("heartbeat");
    expect(result.code).toBe(0);
    const [ping] = worker.pings;
    expect(ping?.signatureValid).toBe(true);
    expect(ping?.body?.agent.kind).toBe("shell");
  });
});
