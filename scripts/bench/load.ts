// Ping route throughput and latency on `wrangler dev --local` (127.0.0.1 only), under a
// small bounded load loop on Node's fetch (undici, keep-alive). Each connection owns one
// host and sends it pre-signed pings in seq order, as an agent would, so the route takes
// its steady-state path (two KV reads, no write after the first ping).
import { join } from "node:path";
import { randomSecrets, startLocalWorker } from "../../test/support/local-worker.ts";
import { deriveHostSecret, signPing } from "../../src/edge/signature.ts";
import { percentile } from "./worker-sim.ts";

export interface LoadResult {
  connections: number;
  requests: number;
  errors: number;
  statuses: Record<string, number>;
  elapsedMs: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface Prepared {
  body: string;
  headers: Record<string, string>;
}

export async function measureWranglerLoad(options: {
  root: string;
  dir: string;
  connections: number;
  requestsPerConnection: number;
  /** The whole run stops after this, finished or not. */
  maxSeconds: number;
  log: (line: string) => void;
}): Promise<LoadResult> {
  const hosts = Array.from({ length: options.connections }, (_, index) => `load-${index}`);
  const secrets = randomSecrets();
  const worker = await startLocalWorker({
    root: options.root,
    dir: join(options.dir, "wrangler"),
    config: { plan: "free", telegram: { chatId: "4242", baseUrl: "http://127.0.0.1:9" }, alerts: { digestAt: null }, hosts: hosts.map((id) => ({ id })) },
    secrets,
  });
  try {
    // Signed now, sent within maxSeconds: every timestamp stays inside the 300 s window.
    const warmUp = 20;
    const perHost = new Map<string, Prepared[]>();
    const startedAt = Date.now() - 3_600_000;
    for (const host of hosts) {
      const secret = await deriveHostSecret(secrets.WITNESS_MASTER_KEY, host);
      const list: Prepared[] = [];
      // One unchanged heartbeat: the steady state in which the route writes nothing.
      const beatAt = Math.floor(Date.now() / 1000) - 20;
      const text = JSON.stringify({ at: beatAt, status: "ok" });
      for (let seq = 1; seq <= options.requestsPerConnection + warmUp; seq++) {
        const sentAt = Date.now();
        const body = JSON.stringify({
          v: 1,
          seq,
          sentAt,
          agent: { version: "bench", startedAt, bootId: "bench-boot", kind: "node" },
          lastPushOutage: null,
          files: { heartbeat: { state: "ok", size: text.length, mtime: beatAt * 1000, text }, circuit: { state: "missing" } },
        });
        const stamp = String(sentAt);
        list.push({ body, headers: { "content-type": "application/json", "X-Witness-Timestamp": stamp, "X-Witness-Signature": await signPing(secret, stamp, body) } });
      }
      perHost.set(host, list);
    }
    const deadline = Date.now() + options.maxSeconds * 1000;
    const statuses: Record<string, number> = {};
    const latencies: number[] = [];
    let errors = 0;
    const send = async (host: string, prepared: Prepared, record: boolean) => {
      const began = performance.now();
      let status = "error";
      try {
        const response = await fetch(`${worker.url}/v1/ping/${host}`, {
          method: "POST",
          headers: prepared.headers,
          body: prepared.body,
          signal: AbortSignal.timeout(10_000),
        });
        await response.arrayBuffer();
        status = String(response.status);
      } catch {
        status = "error";
      }
      const elapsed = performance.now() - began;
      if (!record) return;
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status !== "200") errors++;
      latencies.push(elapsed);
    };
    // Warm-up (not counted): isolate start, first writes of every host.
    await Promise.all(hosts.map(async (host) => {
      for (const prepared of (perHost.get(host) ?? []).slice(0, warmUp)) await send(host, prepared, false);
    }));
    const began = performance.now();
    await Promise.all(
      hosts.map(async (host) => {
        for (const prepared of (perHost.get(host) ?? []).slice(warmUp)) {
          if (Date.now() > deadline) break;
          await send(host, prepared, true);
        }
      }),
    );
    const elapsedMs = performance.now() - began;
    options.log(`load: ${latencies.length} requests in ${(elapsedMs / 1000).toFixed(1)} s, statuses ${JSON.stringify(statuses)}`);
    return {
      connections: options.connections,
      requests: latencies.length,
      errors,
      statuses,
      elapsedMs,
      requestsPerSecond: latencies.length / (elapsedMs / 1000),
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: percentile(latencies, 100),
    };
  } finally {
    await worker.stop();
  }
}
