// The agent's memory between pushes and the one push cycle: build a ping (fresh file
// reads, seq + 1), send it signed, retry with jittered backoff inside the cycle's
// deadline, remember the outage, apply remote pauses. It logs on changes of state,
// not on every push (unless verbose). The clock, fetch, sleep and logger are injected.
import type { FileReport, PauseCommand, PingBody } from "../../src/protocol.ts";
import { applyRemotePause } from "./circuit-writer.ts";
import type { Config } from "./config.ts";
import { truncate } from "./errors.ts";
import type { Logger } from "./logger.ts";
import { backoffDelayMs, sendPingAttempt, type AttemptOutcome, type FetchLike } from "./push.ts";
import { readFileReport, type OpenForReading } from "./read-file.ts";
import { AGENT_VERSION } from "./version.ts";
import { MAX_BODY_BYTES, PROTOCOL_VERSION, pingBodyProblems } from "./wire.ts";

export interface AgentDeps {
  now(): number;
  random(): number;
  fetch: FetchLike;
  /** Resolves after `ms`, or as soon as `signal` aborts. Never rejects. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  openFile?: OpenForReading;
  log: Logger;
  bootId: string;
  startedAt: number;
}

export type PushOutage = NonNullable<PingBody["lastPushOutage"]>;
export type CommandResult = NonNullable<PingBody["commandResult"]>;

export type CycleResult =
  | { accepted: true; commands: PauseCommand[]; serverTime: number }
  | { accepted: false; lastFailure: string };

/**
 * The agent's mode as the Worker reads it: a --once or --check run beside the service
 * must never displace it (nor its start time, seq or outage).
 */
const WIRE_MODE: Record<Config["mode"], NonNullable<PingBody["agent"]["mode"]>> = { loop: "service", once: "once", check: "check" };

/** Bounded memory of command ids already handled, so a re-sent command is not re-applied. */
const HANDLED_IDS_KEPT = 200;
/** Clock offset from the Worker beyond which the agent warns (the Worker judges skew too). */
const SKEW_WARNING_MS = 30_000;

export class Agent {
  private seq = 0;
  private outage: PushOutage | null = null;
  private everAccepted = false;
  private lastFailureLogged: string | undefined;
  private skewWarned = false;
  private invalidBodyLogged = false;
  private ownershipWarned = false;
  private readonly fileStates = new Map<string, string>();
  private readonly handledCommandIds: string[] = [];
  private readonly pendingResults: CommandResult[] = [];
  /** Earliest time the Worker asked us to come back (Retry-After). */
  notBeforeMs = 0;

  private readonly config: Config;
  private readonly deps: AgentDeps;
  private readonly stopSignal: AbortSignal;

  constructor(config: Config, deps: AgentDeps, stopSignal: AbortSignal) {
    this.config = config;
    this.deps = deps;
    this.stopSignal = stopSignal;
  }

  /** The ping as it would be sent now; seq advances once per ping built. */
  async buildBody(): Promise<{ body: PingBody; rawBody: string }> {
    const [heartbeat, circuit] = await Promise.all([
      readFileReport(this.config.heartbeatPath, this.deps.openFile),
      readFileReport(this.config.circuitPath, this.deps.openFile),
    ]);
    this.noteFileState("heartbeat", this.config.heartbeatPath, heartbeat);
    this.noteFileState("circuit", this.config.circuitPath, circuit);
    this.seq += 1;
    const commandResult = this.pendingResults[0];
    const body: PingBody = {
      v: PROTOCOL_VERSION,
      seq: this.seq,
      sentAt: this.deps.now(),
      agent: { version: AGENT_VERSION, startedAt: this.deps.startedAt, bootId: this.deps.bootId, kind: "node", mode: WIRE_MODE[this.config.mode] },
      lastPushOutage: this.outage === null ? null : { ...this.outage },
      ...(commandResult !== undefined ? { commandResult } : {}),
      files: { heartbeat, circuit },
    };
    const fitted = fitBody(body);
    // Our own bug, not the operator's: say so once, and send anyway so the Worker's
    // 400 names the field.
    const problems = pingBodyProblems(fitted.body);
    if (problems.length > 0 && !this.invalidBodyLogged) {
      this.invalidBodyLogged = true;
      this.deps.log.error(`bug: the ping does not match protocol v1: ${problems.join("; ")}`);
    }
    return fitted;
  }

  /**
   * One push: attempts until accepted, a failure retrying cannot fix, the deadline,
   * or stop. `retries: false` makes a single attempt (for --check).
   */
  async pushCycle(
    deadlineMs: number,
    options: { retries: boolean; onBuilt?: (body: PingBody) => void } = { retries: true },
  ): Promise<CycleResult> {
    let lastFailure = "stopped";
    while (!this.stopSignal.aborted) {
      const { body, rawBody } = await this.buildBody();
      options.onBuilt?.(body);
      const outcome = await sendPingAttempt(
        {
          url: this.config.pingUrl,
          secret: this.config.secret,
          rawBody,
          timeoutMs: this.config.requestTimeoutMs,
          stopSignal: this.stopSignal,
        },
        this.deps,
      );
      if (this.stopSignal.aborted) break;
      if (outcome.kind === "accepted") {
        this.onAccepted(body, outcome);
        return { accepted: true, commands: outcome.accepted.commands, serverTime: outcome.accepted.serverTime };
      }
      this.onFailure(body, outcome);
      lastFailure = outcome.message;
      if (!outcome.retriable || !options.retries) break;
      // The exponent counts failures across cycles, so a long outage backs off to the
      // cap instead of restarting at one second every interval.
      let delayMs = backoffDelayMs(this.outage?.failures ?? 1, this.deps.random);
      if (outcome.retryAfterMs !== undefined) delayMs = Math.max(delayMs, outcome.retryAfterMs);
      const retryAt = this.deps.now() + delayMs;
      if (retryAt >= deadlineMs) {
        // Not within this interval: the next scheduled push waits for it too.
        this.notBeforeMs = Math.max(this.notBeforeMs, retryAt);
        break;
      }
      await this.deps.sleep(delayMs, this.stopSignal);
    }
    return { accepted: false, lastFailure };
  }

  /** Applies (or refuses) new commands; returns how many produced a result to report. */
  async handleCommands(commands: readonly PauseCommand[], serverTime: number): Promise<number> {
    let results = 0;
    for (const command of commands) {
      if (this.handledCommandIds.includes(command.id)) continue;
      this.rememberHandled(command.id);
      if (command.expiresAt <= serverTime) {
        this.deps.log.warn(`remote pause ${command.id} from ${command.requestedBy} had expired; ignored`);
        continue;
      }
      const at = this.deps.now();
      if (!this.config.allowRemotePause) {
        this.deps.log.warn(
          `remote pause ${command.id} requested by ${command.requestedBy} refused: this agent runs without --allow-remote-pause (WITNESS_ALLOW_REMOTE_PAUSE=1)`,
        );
        this.pendingResults.push({ id: command.id, outcome: "not_allowed", at });
        results += 1;
        continue;
      }
      const result = await applyRemotePause(this.config.circuitPath, command, at);
      if (result.outcome === "applied") {
        this.deps.log.warn(
          `remote pause applied: ${this.config.circuitPath} now paused (command ${command.id} by ${command.requestedBy}: ${command.reason})`,
        );
        if (result.notKept !== undefined && !this.ownershipWarned) {
          this.ownershipWarned = true;
          this.deps.log.warn(
            `${this.config.circuitPath}: the new file could not keep the old one's ${result.notKept} (only root may give a file away); ` +
              `it kept the mode. If the pipeline cannot read or resume it, share the directory through the witness group (agent/install.sh sets this up)`,
          );
        }
      } else if (result.outcome === "already_paused") {
        this.deps.log.info(`remote pause ${command.id}: ${this.config.circuitPath} was already paused; left untouched`);
      } else {
        this.deps.log.error(`remote pause ${command.id} FAILED to write ${this.config.circuitPath}: ${result.detail}`);
      }
      const detail = "detail" in result ? result.detail : undefined;
      this.pendingResults.push({ id: command.id, outcome: result.outcome, at, ...(detail !== undefined ? { detail } : {}) });
      results += 1;
    }
    return results;
  }

  private rememberHandled(id: string): void {
    this.handledCommandIds.push(id);
    if (this.handledCommandIds.length > HANDLED_IDS_KEPT) this.handledCommandIds.shift();
  }

  private onAccepted(body: PingBody, outcome: Extract<AttemptOutcome, { kind: "accepted" }>): void {
    const now = this.deps.now();
    const log = this.deps.log;
    if (this.outage !== null && this.outage.until === undefined) {
      this.outage.until = now;
      const minutes = (now - this.outage.since) / 60_000;
      log.info(
        `push recovered after ${this.outage.failures} failure${this.outage.failures === 1 ? "" : "s"} over ${minutes.toFixed(1)} min (last error: ${this.outage.lastError ?? "unknown"})`,
      );
    }
    const offsetMs = outcome.accepted.serverTime - outcome.timestampMs;
    if (!this.everAccepted) {
      this.everAccepted = true;
      log.info(`first push accepted by the Worker (this host's clock is ${formatOffset(-offsetMs)} the Worker's)`);
    } else if (this.config.verbose) {
      log.info(`push #${body.seq} accepted`);
    }
    const skewed = Math.abs(offsetMs) > SKEW_WARNING_MS;
    if (skewed !== this.skewWarned) {
      this.skewWarned = skewed;
      if (skewed) log.warn(`this host's clock is ${formatOffset(-offsetMs)} the Worker's; fix NTP (timedatectl status)`);
      else log.info("this host's clock agrees with the Worker's again");
    }
    this.lastFailureLogged = undefined;
    if (body.commandResult !== undefined) {
      const reported = body.commandResult.id;
      const index = this.pendingResults.findIndex((result) => result.id === reported);
      if (index >= 0) this.pendingResults.splice(index, 1);
    }
  }

  private onFailure(body: PingBody, outcome: Extract<AttemptOutcome, { kind: "failed" }>): void {
    const now = this.deps.now();
    const lastError = truncate(outcome.message, 200);
    const hint = failureHint(outcome);
    if (this.outage === null || this.outage.until !== undefined) {
      this.outage = { since: now, failures: 1, lastError };
      this.lastFailureLogged = lastError;
      this.deps.log.warn(`push failing: ${lastError}${hint}; the agent keeps trying`);
      return;
    }
    this.outage.failures += 1;
    this.outage.lastError = lastError;
    // The Worker's own words are logged once per change, not once per push.
    if (outcome.workerError !== undefined && lastError !== this.lastFailureLogged) {
      this.lastFailureLogged = lastError;
      this.deps.log.warn(`push still failing, now: ${lastError}${hint}`);
    } else if (this.config.verbose) {
      this.deps.log.warn(`push #${body.seq} failed: ${lastError} (${this.outage.failures} failures so far)`);
    }
  }

  private noteFileState(name: string, path: string, report: FileReport): void {
    const state = `${report.state}${report.error !== undefined ? ` (${report.error})` : ""}`;
    const previous = this.fileStates.get(name);
    if (previous === state) return;
    this.fileStates.set(name, state);
    const size = report.size !== undefined ? `, ${report.size} bytes` : "";
    const line = previous === undefined ? `${name} ${path}: ${state}${size}` : `${name} ${path}: ${previous} → ${state}${size}`;
    if (report.state === "ok" || (name === "circuit" && report.state === "missing")) this.deps.log.info(line);
    else this.deps.log.warn(line);
  }
}

function failureHint(outcome: Extract<AttemptOutcome, { kind: "failed" }>): string {
  if (outcome.clockRejected !== undefined) {
    // The secret is fine: the Worker refused the time. Say by how much and how to fix it.
    const offsetMs = outcome.clockRejected.offsetMs;
    const off = offsetMs === undefined ? "outside the Worker's replay window" : `${formatOffset(offsetMs)} the Worker's`;
    const ntp = process.platform === "darwin" ? "`sudo sntp -sS time.apple.com`" : "`sudo timedatectl set-ntp true`";
    return ` (this host's clock is ${off}: enable NTP, e.g. ${ntp})`;
  }
  if (outcome.status === 401) return " (check that WITNESS_SECRET is the one printed by `npm run host-secret -- <host>`)";
  if (outcome.status === 404) return " (is WITNESS_HOST declared in the Worker's configuration?)";
  if (outcome.retryAfterAskedMs !== undefined && outcome.retryAfterMs !== undefined) {
    return ` (the Worker asked to wait ${Math.ceil(outcome.retryAfterAskedMs / 1000)} s; waiting ${Math.ceil(outcome.retryAfterMs / 1000)} s, the most the agent waits)`;
  }
  if (outcome.retryAfterMs !== undefined) return ` (the Worker asked to wait ${Math.ceil(outcome.retryAfterMs / 1000)} s)`;
  return "";
}

function formatOffset(aheadMs: number): string {
  const seconds = Math.abs(aheadMs) / 1000;
  return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s ${aheadMs >= 0 ? "ahead of" : "behind"}`;
}

/**
 * JSON escaping can grow a file's text up to six times (control characters), so two
 * capped files can still exceed the Worker's body limit. Rather than be refused with
 * 413 forever, report the largest text-bearing file as too_large, and say why.
 */
export function fitBody(body: PingBody): { body: PingBody; rawBody: string } {
  let current = body;
  for (let round = 0; round < 2; round++) {
    const rawBody = JSON.stringify(current);
    if (Buffer.byteLength(rawBody, "utf8") <= MAX_BODY_BYTES) return { body: current, rawBody };
    const { heartbeat, circuit } = current.files;
    const largest = (heartbeat.text?.length ?? 0) >= (circuit.text?.length ?? 0) ? "heartbeat" : "circuit";
    const report = current.files[largest];
    const shrunk: FileReport = {
      state: "too_large",
      ...(report.size !== undefined ? { size: report.size } : {}),
      ...(report.mtime !== undefined ? { mtime: report.mtime } : {}),
      error: "text too long for the ping body once JSON-escaped",
    };
    current = { ...current, files: { ...current.files, [largest]: shrunk } };
  }
  return { body: current, rawBody: JSON.stringify(current) };
}
