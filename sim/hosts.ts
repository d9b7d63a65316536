// The simulated trading hosts. Each has a pipeline that rewrites heartbeat.json every
// cycle, a circuit.json, a clock that can drift, and an agent that pings every interval
// like the real one (sequence numbers, boot id, agent start time, lastPushOutage kept
// since/until/failures), all in simulated time. Incidents happen to them for real:
// power off (and boot again with a new boot id), quick reboots, network partitions, clock
// skew (within and beyond the replay window), pipeline stalls, bad status, torn heartbeat
// writes, circuit trips with manual resumes, corrupt circuit files and agent restarts.
// Every change of what is true on the host is logged for the ground truth (truth.ts).
import type { PingBody } from "../src/protocol.ts";
import type { Random } from "./random.ts";
import type { Scheduler } from "./scheduler.ts";
import type { SessionCalendar } from "./sessions.ts";

export const INCIDENT_CLASSES = [
  "power-off",
  "reboot",
  "partition",
  "pipeline-stall",
  "bad-status",
  "torn-heartbeat",
  "circuit-trip",
  "corrupt-circuit",
  "clock-skew",
  "agent-restart",
] as const;
export type IncidentClass = (typeof INCIDENT_CLASSES)[number];

export interface HostSpec {
  id: string;
  /** The Cloudflare location its pings land in. */
  location: string;
  intervalSeconds: number;
  pipelineCycleSeconds: number;
  maxAgeInSessionSeconds: number;
  maxAgeOutOfSessionSeconds: number | null;
  calendar: SessionCalendar | null;
  /** Whether circuit.json exists (saying paused: false) when all is well, or is absent. */
  circuitAtRest: "missing" | "green";
}

export interface Incident {
  hostId: string;
  kind: IncidentClass;
  start: number;
  end: number;
  detail: string;
}

/** One change of what is true on a host, for the ground truth. */
export interface HostSnapshot {
  at: number;
  powered: boolean;
  agentUp: boolean;
  partitioned: boolean;
  skewMs: number;
  heartbeatReadable: boolean;
  /** The heartbeat's `at` on the host clock, ms. */
  heartbeatAtHostMs: number;
  heartbeatStatus: string;
  circuitReadable: boolean;
  circuitPaused: boolean;
}

export interface PingAttempt {
  at: number;
  /** Whether the Worker could have received it (not partitioned, clock inside the replay window). */
  reachable: boolean;
}

type HeartbeatFile = { kind: "ok"; text: string; atHostMs: number; status: string; mtime: number } | { kind: "empty"; mtime: number } | { kind: "corrupt"; text: string; mtime: number };
type CircuitFile = { kind: "missing" } | { kind: "ok"; text: string; paused: boolean; mtime: number } | { kind: "corrupt"; text: string; mtime: number };
type PushOutage = NonNullable<PingBody["lastPushOutage"]>;

export interface HostWorld {
  scheduler: Scheduler;
  random: Random;
  replayWindowMs: number;
  /** Sends a signed ping to the real route from the host's location; resolves to the HTTP status. */
  sendPing(host: SimHost, rawBody: string, timestampMs: number): Promise<number>;
}

const BAD_STATUSES = ["error: broker rejected 3 orders", "degraded: market data gap on 2 symbols", "risk check failed: position limit"];
const TRIP_REASONS = ["heartbeat stale: 1200s > 900s", "drawdown limit: -2.1% > -2.0%", "manual: <b>operator</b> & co paused"];

export class SimHost {
  readonly spec: HostSpec;
  readonly snapshots: HostSnapshot[] = [];
  readonly attempts: PingAttempt[] = [];
  readonly incidents: Incident[] = [];
  /** Answers the route gave, by HTTP status ("network" for a push that never left). */
  readonly answers = new Map<string, number>();
  private readonly world: HostWorld;
  private readonly random: Random;

  private powered = true;
  private agentUp = false;
  private partitioned = false;
  private skewMs: number;
  private bootCount = 0;
  private bootId: string;
  private agentStartedAt = 0;
  private seq = 0;
  private outage: PushOutage | null = null;
  private agentGeneration = 0;
  private pipelineGeneration = 0;
  private stalled = false;
  private torn = false;
  private badStatus: string | null = null;
  private cycle = 0;
  private heartbeat: HeartbeatFile;
  private circuit: CircuitFile;
  private restingSkewMs: number;

  constructor(spec: HostSpec, world: HostWorld) {
    this.spec = spec;
    this.world = world;
    this.random = world.random.fork(`host:${spec.id}`);
    this.restingSkewMs = this.random.between(-300, 300);
    this.skewMs = this.restingSkewMs;
    this.bootId = `${spec.id}-boot-0`;
    const beatAt = this.hostNow() - this.random.between(0, spec.pipelineCycleSeconds * 1000);
    this.heartbeat = this.heartbeatFile(beatAt, "ok");
    this.circuit = spec.circuitAtRest === "missing" ? { kind: "missing" } : this.circuitFile({ paused: false });
  }

  private get now(): number {
    return this.world.scheduler.now;
  }

  private hostNow(): number {
    return this.now + this.skewMs;
  }

  /** Boots the agent and the pipeline at the start of the run. */
  start(): void {
    this.snapshot();
    this.startAgent(this.random.between(0, this.spec.intervalSeconds * 1000));
    this.startPipeline(this.random.between(0, this.spec.pipelineCycleSeconds * 1000));
  }

  // ---- ground truth ----

  private snapshot(): void {
    const heartbeat = this.heartbeat;
    const circuit = this.circuit;
    this.snapshots.push({
      at: this.now,
      powered: this.powered,
      agentUp: this.agentUp,
      partitioned: this.partitioned,
      skewMs: this.skewMs,
      heartbeatReadable: heartbeat.kind === "ok",
      heartbeatAtHostMs: heartbeat.kind === "ok" ? heartbeat.atHostMs : 0,
      heartbeatStatus: heartbeat.kind === "ok" ? heartbeat.status : "",
      circuitReadable: circuit.kind !== "corrupt",
      circuitPaused: circuit.kind === "ok" && circuit.paused,
    });
  }

  // ---- the agent ----

  private startAgent(delayMs: number): void {
    const generation = ++this.agentGeneration;
    this.world.scheduler.at(this.now + delayMs, () => {
      if (generation !== this.agentGeneration || !this.powered) return;
      this.agentUp = true;
      this.agentStartedAt = Math.round(this.hostNow());
      this.seq = 0;
      this.outage = null;
      this.snapshot();
      this.pingLoop(generation);
    });
  }

  private stopAgent(): void {
    this.agentGeneration++;
    this.agentUp = false;
  }

  private pingLoop(generation: number): void {
    if (generation !== this.agentGeneration || !this.agentUp) return;
    this.attemptPing(generation);
    this.world.scheduler.at(this.now + this.spec.intervalSeconds * 1000 + this.random.between(0, 400), () => this.pingLoop(generation));
  }

  private attemptPing(generation: number): void {
    this.seq++;
    const sentAt = Math.round(this.hostNow());
    const body: PingBody = {
      v: 1,
      seq: this.seq,
      sentAt,
      agent: { version: "0.1.0-sim", startedAt: this.agentStartedAt, bootId: this.bootId, kind: "node" },
      lastPushOutage: this.outage === null ? null : { ...this.outage },
      files: { heartbeat: this.heartbeatReport(), circuit: this.circuitReport() },
    };
    const reachable = !this.partitioned && Math.abs(this.skewMs) < this.world.replayWindowMs - 5000;
    this.attempts.push({ at: this.now, reachable });
    if (this.partitioned) {
      this.count("network");
      this.onFailure("network: fetch failed (ECONNREFUSED)");
      return;
    }
    const rawBody = JSON.stringify(body);
    const latencyMs = this.random.between(30, 400);
    this.world.scheduler.at(this.now + latencyMs, () => {
      this.world.scheduler.spawn(`ping ${this.spec.id}`, async () => {
        const status = await this.world.sendPing(this, rawBody, sentAt);
        this.count(String(status));
        if (generation !== this.agentGeneration) return;
        if (status === 200) this.onAccepted();
        else this.onFailure(`${status} from the Worker`);
      });
    });
  }

  private count(answer: string): void {
    this.answers.set(answer, (this.answers.get(answer) ?? 0) + 1);
  }

  private onAccepted(): void {
    if (this.outage !== null && this.outage.until === undefined) this.outage.until = Math.round(this.hostNow());
  }

  private onFailure(lastError: string): void {
    if (this.outage === null || this.outage.until !== undefined) {
      this.outage = { since: Math.round(this.hostNow()), failures: 1, lastError };
    } else {
      this.outage.failures++;
      this.outage.lastError = lastError;
    }
  }

  private heartbeatReport(): PingBody["files"]["heartbeat"] {
    const file = this.heartbeat;
    const mtime = Math.round(file.mtime);
    if (file.kind === "empty") return { state: "empty", size: 0, mtime };
    return { state: "ok", size: file.text.length, mtime, text: file.text };
  }

  private circuitReport(): PingBody["files"]["circuit"] {
    const file = this.circuit;
    if (file.kind === "missing") return { state: "missing" };
    return { state: "ok", size: file.text.length, mtime: Math.round(file.mtime), text: file.text };
  }

  // ---- the pipeline and the files ----

  private heartbeatFile(atHostMs: number, status: string): HeartbeatFile {
    const text = JSON.stringify({
      at: Math.round(atHostMs) / 1000,
      iso: new Date(atHostMs).toISOString().replace(/\.\d+Z$/, "Z"),
      status,
      cycle: this.cycle,
      open_orders: this.cycle % 7,
    });
    return { kind: "ok", text, atHostMs: Math.round(atHostMs), status, mtime: atHostMs };
  }

  private circuitFile(content: { paused: boolean; reason?: string; since?: number }): CircuitFile {
    return { kind: "ok", text: JSON.stringify(content), paused: content.paused, mtime: this.hostNow() };
  }

  private startPipeline(firstBeatDelayMs: number): void {
    const generation = ++this.pipelineGeneration;
    this.world.scheduler.at(this.now + firstBeatDelayMs, () => this.pipelineLoop(generation));
  }

  private pipelineLoop(generation: number): void {
    if (generation !== this.pipelineGeneration || !this.powered) return;
    this.beat();
    this.world.scheduler.at(this.now + this.spec.pipelineCycleSeconds * 1000 + this.random.between(0, 2000), () => this.pipelineLoop(generation));
  }

  /** The end of one pipeline cycle: a new heartbeat, unless the pipeline is stuck. */
  private beat(): void {
    if (this.stalled || this.torn || !this.powered) return;
    this.cycle++;
    this.heartbeat = this.heartbeatFile(this.hostNow(), this.badStatus ?? "ok");
    this.snapshot();
  }

  // ---- incidents ----

  /** Schedules one incident: its start, its end, and the record of what happened. */
  schedule(kind: IncidentClass, start: number, durationMs: number): Incident {
    const incident: Incident = { hostId: this.spec.id, kind, start, end: start + durationMs, detail: "" };
    this.incidents.push(incident);
    const at = (time: number, action: () => void) =>
      this.world.scheduler.at(time, () => {
        action();
        this.snapshot();
      });
    switch (kind) {
      case "power-off":
      case "reboot":
        at(start, () => {
          this.powered = false;
          this.stopAgent();
          this.pipelineGeneration++;
        });
        at(incident.end, () => this.boot());
        break;
      case "partition":
        at(start, () => (this.partitioned = true));
        at(incident.end, () => (this.partitioned = false));
        break;
      case "pipeline-stall":
        at(start, () => (this.stalled = true));
        at(incident.end, () => {
          this.stalled = false;
          this.beat();
        });
        break;
      case "bad-status":
        incident.detail = this.random.pick(BAD_STATUSES);
        at(start, () => {
          this.badStatus = incident.detail;
          this.beat();
        });
        at(incident.end, () => {
          this.badStatus = null;
          this.beat();
        });
        break;
      case "torn-heartbeat":
        incident.detail = this.random.chance(0.5) ? "empty" : "truncated";
        at(start, () => {
          this.torn = true;
          const mtime = this.hostNow();
          if (incident.detail === "empty") this.heartbeat = { kind: "empty", mtime };
          else this.heartbeat = { kind: "corrupt", text: '{"at": 17', mtime };
        });
        at(incident.end, () => {
          this.torn = false;
          this.beat();
        });
        break;
      case "circuit-trip": {
        const reason = this.random.pick(TRIP_REASONS);
        const resume = this.random.chance(0.5) ? "paused: false" : "file removed";
        incident.detail = `${reason}; resumed by ${resume}`;
        at(start, () => (this.circuit = this.circuitFile({ paused: true, reason, since: Math.round(this.hostNow()) / 1000 })));
        at(incident.end, () => (this.circuit = resume === "file removed" ? { kind: "missing" } : this.circuitFile({ paused: false })));
        break;
      }
      case "corrupt-circuit": {
        let before: CircuitFile = this.circuit;
        at(start, () => {
          before = this.circuit;
          this.circuit = { kind: "corrupt", text: '{"paused": tr', mtime: this.hostNow() };
        });
        at(incident.end, () => (this.circuit = before.kind === "corrupt" ? { kind: "missing" } : before));
        break;
      }
      case "clock-skew": {
        const beyondWindow = this.random.chance(0.15);
        const magnitudeMs = beyondWindow ? this.random.between(400_000, 1_200_000) : this.random.between(8_000, 120_000);
        const skewMs = (this.random.chance(0.5) ? 1 : -1) * magnitudeMs;
        incident.detail = `${Math.round(skewMs / 1000)} s${beyondWindow ? " (beyond the replay window)" : ""}`;
        at(start, () => (this.skewMs = skewMs));
        at(incident.end, () => (this.skewMs = this.restingSkewMs));
        break;
      }
      case "agent-restart":
        at(start, () => {
          this.stopAgent();
          this.startAgent(durationMs);
        });
        break;
    }
    return incident;
  }

  private boot(): void {
    this.powered = true;
    this.bootCount++;
    this.bootId = `${this.spec.id}-boot-${this.bootCount}`;
    this.startAgent(this.random.between(5_000, 20_000));
    this.startPipeline(this.random.between(10_000, 30_000) + this.random.between(0.2, 1) * this.spec.pipelineCycleSeconds * 1000);
  }

  /** How long an incident of this class lasts: a mix of too short to page and long enough. */
  drawDuration(kind: IncidentClass): number {
    const r = this.random;
    const minutes = (low: number, high: number) => r.between(low, high) * 60_000;
    switch (kind) {
      case "power-off":
        return r.chance(0.35) ? minutes(1, 10) : minutes(15, 240);
      case "reboot":
        return r.between(30_000, 120_000);
      case "partition":
        return r.chance(0.4) ? minutes(0.5, 10) : r.chance(0.33) ? minutes(10, 19) : minutes(20, 180);
      case "pipeline-stall":
        return r.chance(0.4) ? minutes(5, 20) : minutes(20, 240);
      case "bad-status":
      case "torn-heartbeat":
      case "corrupt-circuit":
        return r.chance(0.3) ? r.between(20_000, 150_000) : minutes(3, 45);
      case "circuit-trip":
        return r.chance(0.6) ? minutes(10, 120) : minutes(120, 1500);
      case "clock-skew":
        return r.chance(0.2) ? r.between(60_000, 200_000) : minutes(5, 360);
      case "agent-restart":
        return r.between(2_000, 5_000);
    }
  }
}
