// When something is next due for a host: the moment its judgement could change with no
// new ping (dark, stale, a session edge, a repeat, a reminder, a mute's end, the end of
// a maintenance window holding a page, a pause that was not applied in time). Pure, like the judge: the monitor arms its one alarm
// at the earliest of these across hosts, so nothing wakes it only to find nothing due.
import { nextLocalTime, nextSessionBoundary } from "./calendar.ts";
import type { Config, HostConfig } from "../config.ts";
import { commandDeadlineMs } from "./follow-ups.ts";
import { type HostJudgement, incidentId, PING_GRACE_SECONDS, silentSince } from "./judge.ts";
import { activeMaintenance } from "./maintenance.ts";
import { heartbeatAgeAtPingSeconds, type PingRecord } from "./records.ts";
import type { FollowUps, OperatorState, StoredCommand } from "../monitor/state.ts";

export interface HostDueInput {
  host: HostConfig;
  config: Pick<Config, "alerts" | "timing">;
  record: PingRecord | null;
  judgement: HostJudgement;
  operator: OperatorState;
  followUps: FollowUps;
  command: StoredCommand | null;
  listeningSince: number;
  /** When a signed ping was last refused for its clock (the host is alive then). */
  refusedAt?: number | null;
  now: number;
}

/** The earliest moment after `now` worth waking for this host, judged at `now`; null when nothing is pending. */
export function hostDueAt(input: HostDueInput): number | null {
  const { host, record, judgement, operator, now } = input;
  const candidates: number[] = [];
  const conditions = judgement.conditions;

  // Dark: one millisecond past darkAfter, since exactly darkAfter is not yet "longer than".
  if (conditions.dark === undefined) {
    candidates.push(silentSince(record, judgement.firstJudgedAt, input.listeningSince, input.refusedAt ?? null) + host.darkAfterSeconds * 1000 + 1);
  }

  // Stale: when the heartbeat crosses the age allowed, and at every session edge, where
  // the allowed age changes. Only while pings arrive: a silent host is judged dark.
  if (record !== null && record.heartbeat.state === "ok") {
    const pinging = now - record.receivedAt <= (host.intervalSeconds + PING_GRACE_SECONDS) * 1000;
    const ageAtPing = heartbeatAgeAtPingSeconds(record);
    if (pinging && ageAtPing !== null) {
      const beatAt = record.receivedAt - ageAtPing * 1000;
      candidates.push(beatAt + host.maxAgeInSessionSeconds * 1000 + 1);
      if (host.maxAgeOutOfSessionSeconds !== null) candidates.push(beatAt + host.maxAgeOutOfSessionSeconds * 1000 + 1);
      const edge = nextSessionBoundary(host.calendar, now);
      if (edge !== null) {
        candidates.push(edge);
        // In session, age counts from the open at the latest.
        candidates.push(edge + host.maxAgeInSessionSeconds * 1000 + 1);
      }
    }
  }

  // Repeats of unacknowledged pages, and the daily reminder of a paused circuit.
  const repeatMs = input.config.alerts.repeatMinutes * 60_000;
  const acked = new Set(operator.acked.map((ack) => ack.incidentId));
  // A condition a maintenance window holds pages (or is said again) the moment the
  // window ends, and does not repeat before: its end, as of now, is the due time. A
  // window ended early (/maintenance off) is due at once, which the monitor arms itself.
  const window = activeMaintenance(host, input.config, operator, now);
  for (const [kind, condition] of Object.entries(conditions)) {
    if (condition?.heldUntil !== undefined) {
      candidates.push(window?.until ?? condition.heldUntil);
      continue;
    }
    if (condition === undefined || condition.pagedAt === null) continue;
    if (kind === "tripped") {
      candidates.push(nextLocalTime(input.config.alerts.timezone, now, host.reminderAt));
    } else if (repeatMs > 0 && condition.lastSentAt !== null && !acked.has(incidentId(host.id, kind as "dark", condition.openedAt))) {
      candidates.push(condition.lastSentAt + repeatMs);
    }
  }

  // A mute's end is announced; a muted host's open alerts page again then.
  if (operator.mutedUntil !== null && input.followUps.muteEndAnnounced !== operator.mutedUntil) {
    candidates.push(operator.mutedUntil);
  }

  // A confirmed pause that no ping has answered by its deadline is reported as not applied.
  const command = input.command;
  if (
    command !== null &&
    command.confirmedAt !== null &&
    input.followUps.commandReported !== command.command.id &&
    input.followUps.commandTimedOut !== command.command.id
  ) {
    candidates.push(command.confirmedAt + commandDeadlineMs(host) + 1);
  }

  // The caller has just judged the host at `now`, so whatever was due by then is done;
  // a past candidate (a repeat held by a mute, a max age crossed outside sessions)
  // would only wake the monitor in a loop.
  const future = candidates.filter((at) => Number.isFinite(at) && at > now);
  return future.length === 0 ? null : Math.min(...future);
}
