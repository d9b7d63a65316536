// The agent posts with node:https (not fetch) to a real Worker: here a TLS server on
// 127.0.0.1 with a certificate made for the test, trusted through NODE_EXTRA_CA_CERTS,
// and one the agent must refuse when it is not trusted. And the agent as deployed (the
// unit's node flags) on every Node it supports, over TLS, collecting its garbage.
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TIMESTAMP_HEADER, SIGNATURE_HEADER } from "../../src/protocol.ts";
import { verifyPing } from "../../src/edge/signature.ts";
import { deployedNodeFlags } from "../../scripts/agent-service.ts";
import { agentEnv, buildAgentBundle, commandExists, makeHostDir, REPO_ROOT, removeDir, runAgent, sleep, StandInWorker, start, startAgent, supportedNodes, type HostDir } from "./agent-harness.ts";

const haveOpenssl = await commandExists("openssl");

describe.skipIf(!haveOpenssl)("over https", () => {
  let bundle: string;
  let dir: string;
  let host: HostDir;
  let server: Server;
  let url: string;
  const received: Array<{ signatureValid: boolean; body: string }> = [];
  // Only for its secret and the env it builds; the TLS server below answers.
  const secrets = new StandInWorker();

  beforeAll(async () => {
    bundle = await buildAgentBundle();
    dir = await mkdtemp(join(tmpdir(), "witness-tls-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
    server = createServer({ key: await readFile(join(dir, "key.pem")), cert: await readFile(join(dir, "cert.pem")) }, (request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        const timestamp = String(request.headers[TIMESTAMP_HEADER.toLowerCase()] ?? "");
        const signature = String(request.headers[SIGNATURE_HEADER.toLowerCase()] ?? "");
        void verifyPing(secrets.secret, timestamp, body, signature).then((signatureValid) => {
          received.push({ signatureValid, body });
          response.writeHead(200, { "content-type": "application/json" });
          response.end(JSON.stringify({ ok: true, serverTime: Date.now(), commands: [] }));
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    host = await makeHostDir(secrets.secret);
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await removeDir(dir);
    await removeDir(host.root);
  });

  it("a trusted certificate: the signed ping arrives and --once exits 0", async () => {
    const result = await runAgent(bundle, ["--once"], { ...agentEnv(secrets, host), WITNESS_URL: url, NODE_EXTRA_CA_CERTS: join(dir, "cert.pem") });
    expect(result.code, result.stderr).toBe(0);
    expect(received.at(-1)?.signatureValid).toBe(true);
    expect(JSON.parse(received.at(-1)?.body ?? "{}")).toMatchObject({ v: 1, agent: { kind: "node", mode: "once" } });
  });

  it("in its loop (one TLS context for every push, NODE_EXTRA_CA_CERTS still trusted): three signed pings arrive", async () => {
    const before = received.length;
    const agent = startAgent(bundle, ["--interval", "1"], { ...agentEnv(secrets, host), WITNESS_URL: url, NODE_EXTRA_CA_CERTS: join(dir, "cert.pem") });
    const deadline = Date.now() + 15_000;
    while (received.length < before + 3 && Date.now() < deadline) await sleep(100);
    agent.child.kill("SIGTERM");
    const finished = await agent.exited;
    expect(finished.stderr).toBe("");
    expect(received.slice(before, before + 3).map((ping) => ping.signatureValid)).toEqual([true, true, true]);
  });

  for (const { major, path } of supportedNodes()) {
    it.skipIf(path === undefined)(`on Node ${major} with the unit's node flags: signed pings over TLS, nothing on stderr, and the loop's full collections happen`, async () => {
      const node = path ?? "node";
      const before = received.length;
      // --trace-gc makes V8 print each collection on stdout; one asked for with gc() is
      // reported as "testing". Without --expose-gc in the unit, or without the loop's
      // call, there is none: this small heap never needs a full collection on its own,
      // and the OpenSSL state of every https push would pile up (agent/src/run.ts).
      const agent = start(node, [...deployedNodeFlags(REPO_ROOT), "--trace-gc", bundle, "--interval", "1"], {
        env: { ...agentEnv(secrets, host), WITNESS_URL: url, NODE_EXTRA_CA_CERTS: join(dir, "cert.pem") },
      });
      const deadline = Date.now() + 20_000;
      while (received.length < before + 2 && Date.now() < deadline) await sleep(100);
      agent.child.kill("SIGTERM");
      const finished = await agent.exited;
      expect(finished.code).toBe(0);
      expect(finished.stderr).toBe("");
      expect(received.slice(before, before + 2).map((ping) => ping.signatureValid)).toEqual([true, true]);
      expect(finished.stdout).toMatch(/Mark-(?:Compact|sweep)\b[^\n]*\btesting\b/);
    });
  }

  it("an untrusted certificate: refused, said as a network error, exit 1", async () => {
    const before = received.length;
    const result = await runAgent(bundle, ["--once"], { ...agentEnv(secrets, host), WITNESS_URL: url, WITNESS_INTERVAL: "1" });
    expect(result.code).toBe(1);
    expect(received.length).toBe(before);
    expect(result.stderr).toMatch(/push failing: network error: .*(self[- ]signed|SELF_SIGNED)/i);
  });
});
