// The real ping route and cron tick, driven in Node against an in-memory KV that counts
// every operation: the KV cost of a simulated day, and the CPU time of a tick and of a
// ping. Nothing here re-implements witness; it only feeds it requests and a clock.
import { randomBytes } from "node:crypto";
import { computeBudget } from "../../src/budget.ts";
import { parseConfig } from "../../src/config.ts";
import type { PingBody } from "../../src/protocol.ts";
import { createApp } from "../../src/routes.ts";
import { runTick, type TickDeps } from "../../src/scheduled.ts";
import { deriveHostSecret, signPing } from "../../src/signature.ts";
import { Store } from "../../src/store.ts";
import { planTick } from "../../src/tick-plan.ts";

export type Caller = "route" | "cron";

export interface OpCounts {
  /** Keys read: Cloudflare bills a bulk get per key. */
  reads: number;
  /** get() calls (a bulk get is one call, one subrequest). */
  getCalls: number;
  writes: number;
  deletes: number;
  lists: number;
}

const zero = (): OpCounts => ({ reads: 0, getCalls: 0, writes: 0, deletes: 0, lists: 0 });

/** One in-memory namespace; each caller sees it through its own counting view. */
export class MemoryKv {
  readonly data = new Map<string, string>();
  readonly counts: Record<Caller, OpCounts> = { route: zero(), cron: zero() };

  resetCounts(): void {
    this.counts.route = zero();
    this.counts.cron = zero();
  }

  view(caller: Caller): KVNamespace {
    const data = this.data;
    const counts = () => this.counts[caller];
    const get = async (key: string | string[]): Promise<string | null | Map<string, string | null>> => {
      counts().getCalls++;
      if (Array.isArray(key)) {
        if (key.length > 100) throw new Error("KV bulk get takes at most 100 keys");
        counts().reads += key.length;
        return new Map(key.map((name) => [name, data.get(name) ?? null]));
      }
      counts().reads++;
      return data.get(key) ?? null;
    };
    const view = {
      get,
      put: async (key: string, value: string) => {
        counts().writes++;
        data.set(key, value);
      },
      delete: async (key: string) => {
        counts().deletes++;
        data.delete(key);
      },
      list: async () => {
        counts().lists++;
        return { keys: [...data.keys()].map((name) => ({ name })), list_complete: true, cacheStatus: null };
      },
    };
    // Only the methods witness calls exist; a call to anything else fails loudly.
    return view as unknown as KVNamespace;
  }
}

const okTelegram = async (): Promise<Response> =>
  new Response(JSON.stringify({ ok: true, result: { message_id: 1 } }), { status: 200, headers: { "content-type": "application/json" } });

function secrets() {
  return {
    WITNESS_MASTER_KEY: randomBytes(32).toString("hex"),
    TELEGRAM_BOT_TOKEN: `1:${randomBytes(16).toString("hex")}`,
    STATUS_TOKEN: randomBytes(16).toString("hex"),
    TELEGRAM_WEBHOOK_SECRET: randomBytes(16).toString("hex"),
  };
}

/** The Env a Worker gets, built from a plain object: `Env` is only a type. */
function makeEnv(kv: KVNamespace, rawConfig: object, shared: ReturnType<typeof secrets>): Env {
  return { WITNESS_KV: kv, WITNESS_CONFIG: rawConfig, ...shared } as unknown as Env;
}

export interface SimHost {
  id: string;
  intervalSeconds: number;
}

export function rawConfig(plan: "free" | "paid", hosts: SimHost[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    plan,
    telegram: { chatId: "4242", baseUrl: "http://127.0.0.1:9" },
    hosts: hosts.map((host) => ({ id: host.id, intervalSeconds: host.intervalSeconds })),
    ...extra,
  };
}

/** A host's pipeline: a heartbeat rewritten every `beatEverySeconds`, status ok, no circuit file. */
function pingBody(seq: number, sentAt: number, startedAt: number, beatEverySeconds: number, status = "ok", circuit: PingBody["files"]["circuit"] = { state: "missing" }): PingBody {
  const beatAt = Math.floor(sentAt / 1000 / beatEverySeconds) * beatEverySeconds;
  const text = JSON.stringify({ at: beatAt, iso: new Date(beatAt * 1000).toISOString(), status, cycle: seq });
  return {
    v: 1,
    seq,
    sentAt,
    agent: { version: "0.1.0", startedAt, bootId: "bench-boot", kind: "node" },
    lastPushOutage: null,
    files: { heartbeat: { state: "ok", size: text.length, mtime: beatAt * 1000, text }, circuit },
  };
}

export interface DayResult {
  plan: "free" | "paid";
  hosts: number;
  intervalSeconds: number;
  route: OpCounts;
  cron: OpCounts;
  pings: number;
  ticks: number;
  /** Pings the route refused (must be 0 for a healthy day). */
  refusedPings: number;
  writeReasons: Record<string, number>;
  telegramMessages: number;
  predicted: { writes: number; reads: number; perHostWrites: number; perHostReads: number; cronWrites: number };
}

/** 2026-06-02 00:00 UTC, a Tuesday clear of DST changes. */
export const DAY_START = Date.UTC(2026, 5, 2, 0, 0, 0);
const DAY_MS = 86_400_000;

/**
 * One simulated day (after a warm-up hour that is not counted): every host pings on its
 * interval through the real route, the cron ticks every minute through the real runTick.
 * `eventful` adds a day's worth of real changes per host: a failing status for 10 min,
 * a circuit trip and its manual resume, and an agent restart.
 */
export async function simulateDay(options: { plan: "free" | "paid"; hosts: SimHost[]; eventful?: boolean; extra?: Record<string, unknown> }): Promise<DayResult> {
  const kv = new MemoryKv();
  const shared = secrets();
  const raw = rawConfig(options.plan, options.hosts, options.extra);
  const config = parseConfig(raw);
  const routeEnv = makeEnv(kv.view("route"), raw, shared);
  const cronEnv = makeEnv(kv.view("cron"), raw, shared);
  let clock = DAY_START - 3_600_000;
  const app = createApp({ now: () => clock });
  let telegramMessages = 0;
  const deps: TickDeps = {
    now: () => clock,
    fetch: async (input) => {
      if (String(input).includes("/sendMessage")) telegramMessages++;
      return okTelegram();
    },
    sleep: async () => {},
  };
  const hostSecrets = new Map<string, string>();
  for (const host of options.hosts) hostSecrets.set(host.id, await deriveHostSecret(shared.WITNESS_MASTER_KEY, host.id));

  // Events in time order: each host pings at its own phase; ticks at second 2 of each minute.
  type Event = { at: number; kind: "tick" } | { at: number; kind: "ping"; host: SimHost; index: number };
  const events: Event[] = [];
  const from = DAY_START - 3_600_000;
  for (let at = from + 2000; at < DAY_START + DAY_MS; at += 60_000) events.push({ at, kind: "tick" });
  options.hosts.forEach((host, index) => {
    const phase = ((index * 7919) % host.intervalSeconds) * 1000 + 500;
    for (let at = from + phase; at < DAY_START + DAY_MS; at += host.intervalSeconds * 1000) events.push({ at, kind: "ping", host, index });
  });
  events.sort((a, b) => a.at - b.at || (a.kind === "tick" ? -1 : 1));

  const seqs = new Map<string, number>();
  let pings = 0;
  let ticks = 0;
  let refusedPings = 0;
  const writeReasons: Record<string, number> = {};
  let counting = false;
  for (const event of events) {
    clock = event.at;
    if (!counting && clock >= DAY_START) {
      kv.resetCounts();
      telegramMessages = 0;
      counting = true;
    }
    if (event.kind === "tick") {
      await runTick(cronEnv, deps);
      if (counting) ticks++;
      continue;
    }
    const { host } = event;
    const seq = (seqs.get(host.id) ?? 0) + 1;
    seqs.set(host.id, seq);
    const hour = (clock - DAY_START) / 3_600_000;
    let startedAt = DAY_START - 7 * DAY_MS;
    let status = "ok";
    let circuit: PingBody["files"]["circuit"] = { state: "missing" };
    if (options.eventful === true) {
      if (hour >= 10 && hour < 10 + 1 / 6) status = "error: broker rejected order";
      if (hour >= 14 && hour < 15) {
        const text = JSON.stringify({ paused: true, reason: "drawdown limit", since: DAY_START / 1000 + 14 * 3600 });
        circuit = { state: "ok", size: text.length, mtime: DAY_START + 14 * 3_600_000, text };
      }
      if (hour >= 18) startedAt = DAY_START + 18 * 3_600_000;
    }
    const body = pingBody(seq, clock, startedAt, Math.min(60, host.intervalSeconds), status, circuit);
    const raw = JSON.stringify(body);
    const stamp = String(clock);
    const secret = hostSecrets.get(host.id) ?? "";
    const request = new Request(`https://witness.bench/v1/ping/${host.id}`, {
      method: "POST",
      headers: { "content-type": "application/json", "X-Witness-Timestamp": stamp, "X-Witness-Signature": await signPing(secret, stamp, raw) },
      body: raw,
    });
    const response = await app.fetch(request, routeEnv);
    await response.arrayBuffer();
    if (!counting) continue;
    pings++;
    if (response.status !== 200) refusedPings++;
    const reason = response.headers.get("x-witness-write") ?? "?";
    writeReasons[reason] = (writeReasons[reason] ?? 0) + 1;
  }

  const budget = computeBudget(config);
  const firstHost = budget.hosts[0];
  return {
    plan: options.plan,
    hosts: options.hosts.length,
    intervalSeconds: options.hosts[0]?.intervalSeconds ?? 0,
    route: kv.counts.route,
    cron: kv.counts.cron,
    pings,
    ticks,
    refusedPings,
    writeReasons,
    telegramMessages,
    predicted: {
      writes: budget.total.writes,
      reads: budget.total.reads,
      perHostWrites: firstHost?.writes ?? 0,
      perHostReads: firstHost?.reads ?? 0,
      cronWrites: budget.cron.writes,
    },
  };
}

// ---- CPU time ----

export function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export interface TickCpu {
  hosts: number;
  runs: number;
  /** runTick with in-memory KV and a fake fetch (reads, decode, plan, maybe a write), microseconds. */
  runTickMedianUs: number;
  runTickP95Us: number;
  /** planTick alone (the pure judge over every host), microseconds. */
  planTickMedianUs: number;
  planTickP95Us: number;
}

/** CPU of one steady-state cron tick over `hostCount` healthy hosts. */
export async function measureTickCpu(hostCount: number, runs: number): Promise<TickCpu> {
  const kv = new MemoryKv();
  const shared = secrets();
  const hosts = Array.from({ length: hostCount }, (_, index) => ({ id: `host-${index}`, intervalSeconds: 60 }));
  const raw = rawConfig("paid", hosts, { alerts: { digestAt: null } });
  const config = parseConfig(raw);
  const env = makeEnv(kv.view("route"), raw, shared);
  let clock = DAY_START;
  const app = createApp({ now: () => clock });
  const deps: TickDeps = { now: () => clock, fetch: okTelegram, sleep: async () => {} };
  const ping = async (host: SimHost, seq: number) => {
    const body = pingBody(seq, clock, DAY_START - DAY_MS, 60);
    const rawBody = JSON.stringify(body);
    const secret = await deriveHostSecret(shared.WITNESS_MASTER_KEY, host.id);
    const response = await app.fetch(
      new Request(`https://witness.bench/v1/ping/${host.id}`, {
        method: "POST",
        headers: { "X-Witness-Timestamp": String(clock), "X-Witness-Signature": await signPing(secret, String(clock), rawBody) },
        body: rawBody,
      }),
      env,
    );
    if (response.status !== 200) throw new Error(`bench ping refused: ${response.status} ${await response.text()}`);
  };
  // Every host has a stored record and the cron has judged them all (the "watching" notice is out).
  for (const host of hosts) await ping(host, 1);
  await runTick(env, deps);
  clock += 60_000;
  await runTick(env, deps);

  const store = new Store(env.WITNESS_KV);
  const ids = hosts.map((host) => host.id);
  const runTickUs: number[] = [];
  const planTickUs: number[] = [];
  const warmUp = 5;
  for (let run = 0; run < runs + warmUp; run++) {
    // Keep the records fresh (the pings are not measured) so every tick judges healthy hosts.
    clock += 60_000;
    if (run % 3 === 0) for (const host of hosts) await ping(host, run + 2);
    const before = cpuMicros();
    await runTick(env, deps);
    const tickUs = cpuMicros() - before;

    const [stored, records, operators, commands] = await Promise.all([store.getCronState(), store.getPingRecords(ids), store.getOperatorStates(ids), store.getCommands(ids)]);
    const planBefore = cpuMicros();
    planTick(config, { stored, records, operators, commands }, clock);
    const planUs = cpuMicros() - planBefore;
    if (run >= warmUp) {
      runTickUs.push(tickUs);
      planTickUs.push(planUs);
    }
  }
  return {
    hosts: hostCount,
    runs,
    runTickMedianUs: percentile(runTickUs, 50),
    runTickP95Us: percentile(runTickUs, 95),
    planTickMedianUs: percentile(planTickUs, 50),
    planTickP95Us: percentile(planTickUs, 95),
  };
}

export interface PingCpu {
  runs: number;
  /** Whole request through app.fetch: signature check, zod, two KV reads, write policy. */
  medianUs: number;
  p95Us: number;
  writes: number;
}

/** CPU of one accepted ping through the route, steady state (mostly no write). */
export async function measurePingCpu(runs: number): Promise<PingCpu> {
  const kv = new MemoryKv();
  const shared = secrets();
  const raw = rawConfig("free", [{ id: "bench", intervalSeconds: 60 }]);
  const env = makeEnv(kv.view("route"), raw, shared);
  let clock = DAY_START;
  const app = createApp({ now: () => clock });
  const secret = await deriveHostSecret(shared.WITNESS_MASTER_KEY, "bench");
  const samples: number[] = [];
  const warmUp = 200;
  for (let run = 0; run < runs + warmUp; run++) {
    clock += 60_000;
    const rawBody = JSON.stringify(pingBody(run + 1, clock, DAY_START - DAY_MS, 60));
    // Signing is the agent's work: done before the clock starts.
    const signature = await signPing(secret, String(clock), rawBody);
    const request = new Request("https://witness.bench/v1/ping/bench", {
      method: "POST",
      headers: { "content-type": "application/json", "X-Witness-Timestamp": String(clock), "X-Witness-Signature": signature },
      body: rawBody,
    });
    const before = cpuMicros();
    const response = await app.fetch(request, env);
    await response.arrayBuffer();
    const used = cpuMicros() - before;
    if (response.status !== 200) throw new Error(`bench ping refused: ${response.status}`);
    if (run >= warmUp) samples.push(used);
  }
  return { runs, medianUs: percentile(samples, 50), p95Us: percentile(samples, 95), writes: kv.counts.route.writes };
}
