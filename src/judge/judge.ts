// The pure judge: a host's last accepted ping, its previous judgement, its configuration,
// the operator's acks and mutes, and `now` in; the new judgement and the alert events
// out. No clock, storage or fetch in here, so every boundary is a table-driven test.
// The monitor object calls it on every ping (content observed) and whenever a deadline
// it computed (see schedule.ts) comes due (only time passed).
import { z } from "zod";
import { localDay, sessionOpenedAt } from "./calendar.ts";
import { formatSeconds, utcClock, utcMoment } from "../format.ts";
import type { Config, HostConfig } from "../config.ts";
import type { ActiveMaintenance } from "./maintenance.ts";
import { clockSkewSeconds, heartbeatAgeAtPingSeconds, heartbeatAgeSeconds, isSkewed, type PingRecord, skewClearSeconds } from "./records.ts";

export const CONDITIONS = [
  "dark",
  "stale",
  "failing",
  "heartbeat_unreadable",
  "circuit_unreadable",
  "tripped",
  "skewed",
] as const;
export const ConditionKind = z.enum(CONDITIONS);
export type ConditionKind = z.infer<typeof ConditionKind>;

/** Conditions judged from the mirror's contents: frozen while the host is dark. */
const FROM_CONTENT: ReadonlySet<ConditionKind> = new Set(["stale", "failing", "heartbeat_unreadable", "circuit_unreadable", "tripped", "skewed"]);

export const ConditionState = z.object({
  /** Worker ms when the condition was first observed; with the kind, the incident's identity. */
  openedAt: z.number(),
  detail: z.string(),
  /** When the alert went out (or was swallowed by a mute); null while still unconfirmed. */
  pagedAt: z.number().nullable(),
  /** Consecutive pings that showed it: one observation can lie (a half-written file, a flapping status). */
  seen: z.number().default(1),
  /** Consecutive pings that no longer showed a paged condition: its recovery is confirmed like its page. */
  clearSeen: z.number().optional(),
  lastSentAt: z.number().nullable(),
  /** Local date of the last daily reminder (tripped circuits remind daily, not on repeat). */
  reminderDate: z.string().nullable(),
  /** When a maintenance window held this condition's page (dark and stale only). */
  heldAt: z.number().optional(),
  /** While a maintenance window holds it: the window's end as last judged. Its end pages (or repeats) the condition. */
  heldUntil: z.number().optional(),
  /** For dark: who the host was before the gap, to explain the recovery. */
  before: z.object({ bootId: z.string(), startedAt: z.number(), lastSeenAt: z.number() }).optional(),
});
export type ConditionState = z.infer<typeof ConditionState>;

export const HostJudgement = z.object({
  /** When the judge first knew this host: a host that never pings goes dark counting from here. */
  firstJudgedAt: z.number(),
  conditions: z.partialRecord(ConditionKind, ConditionState),
});
export type HostJudgement = z.infer<typeof HostJudgement>;

export interface OperatorView {
  /** Incident ids (see incidentId) the operator acknowledged. */
  acked: readonly string[];
  /** Worker ms until which this host's pages are muted. */
  mutedUntil: number | null;
}

/**
 * "held": a condition opened in a maintenance window; "silenced": one that would have
 * paged while the host was muted; "cleared": either went away unsent. All three are
 * recorded in the history (the status page draws them) and never sent.
 */
export type AlertEventType = "alert" | "repeat" | "reminder" | "recovery" | "held" | "silenced" | "cleared";

/** Whether the event goes to the phone (held, silenced and cleared are history only). */
export function isSent(event: Pick<AlertEvent, "type">): boolean {
  return event.type !== "held" && event.type !== "silenced" && event.type !== "cleared";
}

/** Whether the event is a problem paged now: counted as a page, and given buttons. */
export function isProblem(event: Pick<AlertEvent, "type">): boolean {
  return event.type === "alert" || event.type === "repeat" || event.type === "reminder";
}

/** Conditions a maintenance window holds: the host is expected to be down or idle. */
export const HELD_IN_MAINTENANCE: ReadonlySet<ConditionKind> = new Set(["dark", "stale"]);

export interface AlertEvent {
  hostId: string;
  kind: ConditionKind;
  type: AlertEventType;
  /** Host-supplied text stays raw here; the renderer escapes it. */
  detail: string;
  incidentId: string;
  openedAt: number;
  /** For recoveries: how long the condition lasted. */
  durationMs?: number;
}

export interface JudgeInput {
  host: HostConfig;
  config: Pick<Config, "timing" | "alerts">;
  /** The host's last accepted ping (every accepted ping is stored, so this is the newest). */
  record: PingRecord | null;
  previous: HostJudgement | undefined;
  operator: OperatorView;
  /** "ping": `record` arrived just now, so its contents count as one more observation. "time": only time passed. */
  observed: "ping" | "time";
  /**
   * Since when the monitor could hear pings: a silence counts only from here. After the
   * monitor was unreachable (a quota ran out) it restarts, so no host pages dark for
   * the time nobody was listening.
   */
  listeningSince: number;
  /** The last correctly signed ping refused for its clock, if newer than `record`. */
  clockRefusal?: { at: number; skewSeconds: number } | null;
  /** The maintenance window the host is in at `now` (see maintenance.ts), if any. */
  maintenance?: ActiveMaintenance | null;
  now: number;
}

export interface JudgeOutput {
  judgement: HostJudgement;
  events: AlertEvent[];
  /** Whether the judgement differs in a way worth a write (details that merely tick on do not count). */
  changed: boolean;
}

/** The conditions that paged (confirmed, or swallowed by a mute): what readers are told is wrong. */
export function pagedKinds(judgement: HostJudgement): ConditionKind[] {
  return CONDITIONS.filter((kind) => {
    const condition = judgement.conditions[kind];
    return condition !== undefined && condition.pagedAt !== null;
  });
}

export function incidentId(hostId: string, kind: ConditionKind, openedAt: number): string {
  return `${hostId}:${kind}:${openedAt.toString(36)}`;
}

interface Observation {
  /** Conditions true now, with their detail. */
  present: Map<ConditionKind, string>;
  /** Conditions this observation cannot speak to: they keep their previous state. */
  unknown: Set<ConditionKind>;
}


/**
 * Once a host's next ping is overdue (its last is more than an interval and this margin
 * old) it may have stopped pinging: its stored heartbeat's age then says nothing about
 * the pipeline (a silent host is DARK, never STALE), so stale is left as it was until
 * the next ping or darkAfter decides. Zero: the next ping itself judges a late one.
 */
export const PING_GRACE_SECONDS = 0;

/**
 * When the host's silence started counting: its last ping, a signed ping refused only
 * for its clock (the host is alive), or when listening (re)started.
 */
export function silentSince(record: PingRecord | null, firstJudgedAt: number, listeningSince: number, refusedAt: number | null = null): number {
  return Math.max(record?.receivedAt ?? firstJudgedAt, listeningSince, refusedAt ?? -Infinity);
}

/** A refusal newer than the last accepted ping: the host's pings are being refused now. */
function currentRefusal(record: PingRecord | null, refusal: JudgeInput["clockRefusal"]): { at: number; skewSeconds: number } | null {
  if (refusal === undefined || refusal === null) return null;
  return record === null || refusal.at > record.receivedAt ? refusal : null;
}

/** What the record says right now, before confirmation, acks or mutes. */
export function observe(
  input: Pick<JudgeInput, "host" | "record" | "now" | "observed" | "listeningSince" | "clockRefusal"> & {
    firstJudgedAt: number;
    skewedBefore?: boolean;
    /** When the open dark incident began, if one is open: only a ping heard after it ends it. */
    darkOpenedAt?: number;
  },
): Observation {
  const { host, record, now } = input;
  const present = new Map<ConditionKind, string>();
  const unknown = new Set<ConditionKind>();
  const refusal = currentRefusal(record, input.clockRefusal);

  // Listening restarting (after the monitor was unreachable) is no ping: a host already
  // dark stays dark until it is heard from again.
  const heardAt = Math.max(record?.receivedAt ?? -Infinity, refusal?.at ?? -Infinity);
  if (input.darkOpenedAt !== undefined && heardAt <= input.darkOpenedAt) {
    const lastSeen = record?.receivedAt ?? input.firstJudgedAt;
    present.set(
      "dark",
      record === null
        ? `never pinged since the monitor started watching ${formatSeconds((now - lastSeen) / 1000)} ago`
        : `no ping for ${formatSeconds((now - lastSeen) / 1000)} (dark after ${formatSeconds(host.darkAfterSeconds)})`,
    );
    for (const kind of FROM_CONTENT) unknown.add(kind);
    return { present, unknown };
  }

  const since = silentSince(record, input.firstJudgedAt, input.listeningSince, refusal?.at ?? null);
  const silentSeconds = (now - since) / 1000;
  if (silentSeconds > host.darkAfterSeconds) {
    const deafGap = record !== null && input.listeningSince > record.receivedAt;
    present.set(
      "dark",
      record === null
        ? `never pinged since the monitor started watching ${formatSeconds(silentSeconds)} ago`
        : deafGap
          ? `no ping for ${formatSeconds(silentSeconds)} since the monitor could listen again (dark after ${formatSeconds(host.darkAfterSeconds)}; last ping ${formatSeconds((now - record.receivedAt) / 1000)} ago)`
          : `no ping for ${formatSeconds(silentSeconds)} (dark after ${formatSeconds(host.darkAfterSeconds)})`,
    );
    for (const kind of FROM_CONTENT) unknown.add(kind);
    return { present, unknown };
  }
  if (refusal !== null) {
    // Alive, but nothing it says is accepted until its clock is fixed.
    const off = Math.abs(refusal.skewSeconds);
    present.set(
      "skewed",
      `host clock is ${off.toFixed(0)} s ${refusal.skewSeconds > 0 ? "ahead" : "behind"}; its pings are refused until it is fixed (enable NTP on the host)`,
    );
    for (const kind of FROM_CONTENT) if (kind !== "skewed") unknown.add(kind);
    return { present, unknown };
  }
  if (record === null) {
    for (const kind of FROM_CONTENT) unknown.add(kind);
    return { present, unknown };
  }
  // Between pings only time passes: the contents were judged when the ping arrived.
  // Staleness alone grows with time, so it is judged at any moment.
  const contentObserved = input.observed === "ping";
  const pingsMayHaveStopped = (now - record.receivedAt) / 1000 > host.intervalSeconds + PING_GRACE_SECONDS;

  const { heartbeat, circuit } = record;
  if (heartbeat.state === "ok") {
    if (heartbeat.status !== "ok") {
      present.set("failing", `status "${heartbeat.status}"${heartbeat.extra ? ` ${heartbeat.extra}` : ""}`);
    }
    const stale = pingsMayHaveStopped ? null : staleDetail(host, record, now);
    if (pingsMayHaveStopped) unknown.add("stale");
    else if (stale !== null) present.set("stale", stale);
  } else {
    present.set("heartbeat_unreadable", `heartbeat.json ${heartbeat.state.replace("_", " ")}: ${heartbeat.detail}`);
    unknown.add("failing");
    unknown.add("stale");
  }

  if (circuit.state === "ok") {
    if (circuit.paused) {
      const reason = circuit.reason ?? "(no reason given)";
      // A hostile or mistaken since (ms, not s) can overflow Date; show it raw rather than throw.
      const sinceDate = new Date((circuit.since ?? Number.NaN) * 1000);
      const sinceText =
        circuit.since === undefined
          ? ""
          : ` since ${Number.isNaN(sinceDate.getTime()) ? `${circuit.since} (not a Unix time)` : sinceDate.toISOString().replace(".000Z", "Z")}`;
      present.set("tripped", `circuit paused: ${reason}${sinceText}`);
    }
  } else if (circuit.state !== "missing") {
    // A missing circuit.json means green by definition; any other bad state means unknown.
    present.set("circuit_unreadable", `circuit.json ${circuit.state.replace("_", " ")}: ${circuit.detail}`);
    unknown.add("tripped");
  }

  const skew = clockSkewSeconds(record);
  // Once skewed, the clock must come well back inside the limit (latency jitters).
  if (isSkewed(record, host.skewSeconds, input.skewedBefore ?? false)) {
    const limit =
      Math.abs(skew) > host.skewSeconds ? `limit ${host.skewSeconds} s` : `limit ${host.skewSeconds} s; counted until under ${skewClearSeconds(host.skewSeconds)} s`;
    present.set("skewed", `host clock ${skew > 0 ? "ahead" : "behind"} by ${Math.abs(skew).toFixed(1)} s (${limit})`);
  }
  if (!contentObserved) {
    for (const kind of FROM_CONTENT) {
      if (kind === "stale") continue;
      present.delete(kind);
      unknown.add(kind);
    }
  }
  return { present, unknown };
}

/**
 * Stale when the heartbeat is older than the age allowed now. In a session, age counts
 * from the later of the last beat and the session's open, so the overnight gap does not
 * page at the opening bell.
 */
function staleDetail(host: HostConfig, record: PingRecord, now: number): string | null {
  const ageAtPing = heartbeatAgeAtPingSeconds(record);
  if (ageAtPing === null) return null;
  // The heartbeat's moment on the Worker's clock, measured on the host's clock.
  const beatAt = record.receivedAt - ageAtPing * 1000;
  const openedAt = sessionOpenedAt(host.calendar, now);
  const maxAge = openedAt === null ? host.maxAgeOutOfSessionSeconds : host.maxAgeInSessionSeconds;
  if (maxAge === null) return null;
  const age = (now - Math.max(beatAt, openedAt ?? -Infinity)) / 1000;
  if (age <= maxAge) return null;
  const where = openedAt === null ? "outside sessions" : "in session";
  return `heartbeat ${formatSeconds((now - beatAt) / 1000)} old (limit ${formatSeconds(maxAge)} ${where})`;
}

/** Conditions a ping shows that one observation can fake; the others page at once. */
const CONFIRMED_BY_PINGS: ReadonlySet<ConditionKind> = new Set(["failing", "heartbeat_unreadable", "circuit_unreadable", "skewed"]);

/** Consecutive pings that must show a condition before it pages (dark and stale are measured, not observed). */
export function confirmationsNeeded(kind: ConditionKind, timing: Config["timing"]): number {
  const counts = timing.confirmPings;
  switch (kind) {
    case "failing":
      return counts.failing;
    case "heartbeat_unreadable":
      return counts.heartbeatUnreadable;
    case "circuit_unreadable":
      return counts.circuitUnreadable;
    case "skewed":
      return counts.skewed;
    default:
      return 1;
  }
}

export function judgeHost(input: JudgeInput): JudgeOutput {
  const { host, record, now, operator } = input;
  const previous: HostJudgement = input.previous ?? { firstJudgedAt: now, conditions: {} };
  const observation = observe({
    ...input,
    firstJudgedAt: previous.firstJudgedAt,
    skewedBefore: previous.conditions.skewed !== undefined,
    ...(previous.conditions.dark === undefined ? {} : { darkOpenedAt: previous.conditions.dark.openedAt }),
  });
  const repeatMs = input.config.alerts.repeatMinutes * 60_000;
  const muted = operator.mutedUntil !== null && operator.mutedUntil > now;
  // The reminder wakes the operator, so it keeps the operator's clock, not the exchange's.
  const today = localDay(input.config.alerts.timezone, now, host.reminderAt);

  const conditions: HostJudgement["conditions"] = {};
  const events: AlertEvent[] = [];
  // A new host must be remembered at once, or its never-pinged grace restarts every tick.
  let changed = input.previous === undefined;

  for (const kind of CONDITIONS) {
    const before = previous.conditions[kind];
    const detail = observation.present.get(kind);

    if (observation.unknown.has(kind)) {
      if (before) conditions[kind] = before;
      continue;
    }

    if (detail === undefined) {
      // A paged condition that one ping no longer shows may be flapping (a status that
      // alternates, a file caught mid-write): its recovery needs as many clean pings in
      // a row as its page needed bad ones, or a flapping host pages and recovers forever.
      const clearSeen = (before?.clearSeen ?? 0) + 1;
      if (before !== undefined && before.pagedAt !== null && input.observed === "ping" && CONFIRMED_BY_PINGS.has(kind) && clearSeen < confirmationsNeeded(kind, input.config.timing)) {
        changed = true;
        conditions[kind] = { ...before, clearSeen };
        continue;
      }
      if (before) {
        changed = true;
        // An unconfirmed condition that went away was never an incident: drop it quietly.
        // One held by a maintenance window was: its end is recorded, not sent.
        const type = before.pagedAt !== null ? (muted ? "cleared" : "recovery") : before.heldAt !== undefined ? "cleared" : null;
        if (type !== null) {
          events.push({
            hostId: host.id,
            kind,
            type,
            detail: recoveryDetail(kind, before, record, host, now),
            incidentId: incidentId(host.id, kind, before.openedAt),
            openedAt: before.openedAt,
            // A dark host was gone since its last ping, not since the judge noticed.
            durationMs: now - (before.before?.lastSeenAt ?? before.openedAt),
          });
        }
      }
      continue;
    }

    const countsAsObservation = input.observed === "ping" && CONFIRMED_BY_PINGS.has(kind);
    // A host whose pings are all refused for its clock is otherwise unheard: page at once.
    const refusedNow = kind === "skewed" && currentRefusal(record, input.clockRefusal) !== null;
    const state: ConditionState = before
      ? { ...withoutClearSeen(before), detail, seen: before.seen + (countsAsObservation && before.pagedAt === null ? 1 : 0) }
      : {
          openedAt: now,
          detail,
          pagedAt: null,
          seen: 1,
          lastSentAt: null,
          // Tripped before today's reminder time: remind this morning; after it: tomorrow.
          reminderDate: today.reached ? today.date : null,
          ...(kind === "dark" && record !== null
            ? { before: { bootId: record.agent.bootId, startedAt: record.agent.startedAt, lastSeenAt: record.receivedAt } }
            : {}),
        };
    if (!before || state.seen !== before.seen || before.clearSeen !== undefined) changed = true;
    const id = incidentId(host.id, kind, state.openedAt);
    const event = (type: AlertEventType, suffix = ""): AlertEvent => ({ hostId: host.id, kind, type, detail: detail + suffix, incidentId: id, openedAt: state.openedAt });

    const window = HELD_IN_MAINTENANCE.has(kind) ? (input.maintenance ?? null) : null;
    if (window !== null) {
      // In maintenance: recorded (held) but not paged; an incident paged before the
      // window does not repeat in it. Its end is remembered, for the page it owes then.
      if (state.heldUntil !== window.until) {
        changed = true;
        state.heldUntil = window.until;
      }
      if (state.pagedAt === null && state.heldAt === undefined) {
        changed = true;
        state.heldAt = now;
        events.push(event("held", ` (maintenance until ${utcMoment(window.until, now)})`));
      }
      conditions[kind] = state;
      continue;
    }
    if (state.heldUntil !== undefined) {
      // The window ended (or was ended early from the phone) with the condition still
      // there: page at once, saying so. An incident paged before the window is said again
      // unless acknowledged, whatever the repeat interval: the window was the operator's
      // own "tell me if it is still down by then".
      const { heldUntil, ...rest } = state;
      const ended: ConditionState = rest;
      const suffix = ` (maintenance window ended ${utcClock(Math.min(heldUntil, now))})`;
      changed = true;
      if (ended.pagedAt === null) {
        ended.pagedAt = now;
        ended.lastSentAt = now;
        events.push(event(muted ? "silenced" : "alert", suffix));
      } else if (!muted && !operator.acked.includes(id)) {
        ended.lastSentAt = now;
        events.push(event("repeat", suffix));
      }
      conditions[kind] = ended;
      continue;
    }

    if (state.pagedAt === null) {
      if (refusedNow || state.seen >= confirmationsNeeded(kind, input.config.timing)) {
        changed = true;
        state.pagedAt = now;
        state.lastSentAt = now;
        events.push(event(muted ? "silenced" : "alert"));
      }
    } else if (!muted) {
      // A paused circuit is reminded daily even once acknowledged: an ack at 3 AM is how
      // one forgets that trading is still paused. Other alerts repeat until acknowledged.
      if (kind === "tripped") {
        if (today.reached && state.reminderDate !== today.date) {
          changed = true;
          state.reminderDate = today.date;
          state.lastSentAt = now;
          events.push(event("reminder"));
        }
      } else if (!operator.acked.includes(id) && repeatMs > 0 && state.lastSentAt !== null && now - state.lastSentAt >= repeatMs) {
        changed = true;
        state.lastSentAt = now;
        events.push(event("repeat"));
      }
    }
    conditions[kind] = state;
  }

  const judgement: HostJudgement = { firstJudgedAt: previous.firstJudgedAt, conditions };
  return { judgement, events, changed };
}


/** The condition showing again: a recovery that was being confirmed starts over. */
function withoutClearSeen(condition: ConditionState): ConditionState {
  const copy = { ...condition };
  delete copy.clearSeen;
  return copy;
}

/** What the agent's report says about the gap, for the message that ends it. */
function recoveryDetail(kind: ConditionKind, before: ConditionState, record: PingRecord | null, host: HostConfig, now: number): string {
  if (record === null) return "cleared";
  switch (kind) {
    case "dark": {
      const previous = before.before;
      const outage = record.lastPushOutage;
      // The agent sets `until` only once a push is accepted, so the first ping after the
      // gap still has it open: that accepted ping is itself the end of the outage.
      const outageEnd = outage === null ? undefined : (outage.until ?? record.sentAt);
      // Only an outage that ended after the last ping seen before the gap explains it; an
      // older one was already reported (and written) before the host went quiet.
      const gapStartedAt = previous?.lastSeenAt ?? before.openedAt - 24 * 3600_000;
      const partition =
        outage !== null && outageEnd !== undefined && outageEnd > gapStartedAt
          ? `network partition: pushes failed for ${formatSeconds((outageEnd - outage.since) / 1000)} (${outage.failures} attempts)`
          : null;
      if (previous && previous.bootId !== record.agent.bootId) return "pinging again: the host rebooted (new boot id)";
      if (previous && previous.startedAt !== record.agent.startedAt) {
        return `pinging again: agent restart${partition ? `; before that, ${partition}` : ""}`;
      }
      if (partition) return `pinging again after a ${partition}, boot id unchanged`;
      return "pinging again (the agent reported no failed pushes: the gap was between it and the Worker)";
    }
    case "stale": {
      // A session that closes ends the incident, but must not claim the pipeline is back.
      const age = heartbeatAgeSeconds(record, now);
      if (age !== null && age > host.maxAgeInSessionSeconds && sessionOpenedAt(host.calendar, now) === null) {
        const outside = host.maxAgeOutOfSessionSeconds === null ? "off" : "relaxed";
        return `the session closed and stale checks are ${outside} outside sessions; the heartbeat is still ${formatSeconds(age)} old`;
      }
      return "heartbeat fresh again";
    }
    case "failing":
      return record.heartbeat.state === "ok" ? `status "${record.heartbeat.status}" again` : "status cleared";
    case "heartbeat_unreadable":
      return "heartbeat.json readable again";
    case "circuit_unreadable":
      return record.circuit.state === "missing" ? "circuit.json removed (green)" : "circuit.json readable again";
    case "tripped":
      return record.circuit.state === "missing" ? "circuit.json removed: trading resumed" : "circuit resumed (paused: false)";
    case "skewed":
      return `host clock within limits (${clockSkewSeconds(record).toFixed(1)} s)`;
  }
}
