// Ground truth: from what really happened on each host (hosts.ts snapshots), when each
// condition held, second by second, and which of those episodes the configuration
// promises to page (long enough to be seen within the bound check-config states) and by
// when. Conditions judged from the mirror's contents are unknown while the host cannot
// reach the Worker, exactly as the product treats them: such a gap neither ends nor
// starts an episode.
import type { Config, HostConfig } from "../src/config.ts";
import { hostBudget } from "../src/budget.ts";
import type { ConditionKind } from "../src/judge/judge.ts";
import type { HostSnapshot, SimHost } from "./hosts.ts";
import { sessionsBetween } from "./sessions.ts";

export interface Episode {
  hostId: string;
  kind: ConditionKind;
  /** First second the condition held (for dark: the first second the host could not ping). */
  start: number;
  /** First second it no longer held; null if it still held when the run ended. */
  end: number | null;
  /** dark only: the host's last ping that could arrive before, and the first after. */
  lastPingBefore: number | null;
  firstPingAfter: number | null;
  /** Whether the configuration promises a page, and by when. */
  promised: boolean;
  deadline: number | null;
  /** Longest stretch the condition was visibly true, ms. */
  longestVisibleMs: number;
  /**
   * stale only: the heartbeat as the last ping carried it was past the limit, though the
   * file itself had been refreshed (or the clock stepped back) and no ping had carried
   * that yet. Never promised; a page in it is allowed (the product measures age at the
   * ping and counts on between pings, so it pages at the crossing), not false.
   */
  unseenRefresh?: true;
}

type Tri = 0 | 1 | 2; // false, true, unknown
const FALSE: Tri = 0;
const TRUE: Tri = 1;
const UNKNOWN: Tri = 2;

const STEP_MS = 1000;
const HEARTBEAT_AHEAD_LIMIT_MS = 300_000;

export interface TruthBounds {
  /** Seconds from the last ping to the dark page, alarm path (budget.ts). */
  darkPageWithinSeconds: number;
  /** Seconds from the moment stale becomes true to its page. */
  staleSlackSeconds: number;
  /** Seconds from a change on disk to its page (failing, unreadable, tripped). */
  changePageWithinSeconds: number;
  /** Seconds from a clock going wrong to the skew page (the change bound plus confirmation). */
  skewPageWithinSeconds: number;
}

export function truthBounds(host: HostConfig, config: Config): TruthBounds {
  const budget = hostBudget(host, config);
  // Skew is confirmed by pings like the other changes on the host (timing.confirmPings),
  // so it is held to the change bound check-config states.
  return {
    darkPageWithinSeconds: budget.darkPageWithinSeconds,
    staleSlackSeconds: budget.stalePageWithinSeconds - host.maxAgeInSessionSeconds,
    changePageWithinSeconds: budget.changePageWithinSeconds,
    skewPageWithinSeconds: budget.changePageWithinSeconds,
  };
}

const CONTENT_KINDS = ["stale", "failing", "heartbeat_unreadable", "circuit_unreadable", "tripped", "skewed"] as const;

export function groundTruth(host: SimHost, hostConfig: HostConfig, config: Config, start: number, end: number, replayWindowMs: number): Episode[] {
  const bounds = truthBounds(hostConfig, config);
  const sessions = host.spec.calendar === null ? null : sessionsBetween(host.spec.calendar, start, end);
  const snapshots = host.snapshots;
  const episodes: Episode[] = [];
  const open = new Map<ConditionKind, { start: number; visibleFrom: number | null; longest: number; firstLongRun: number | null }>();
  const requiredMs = (kind: ConditionKind): number => {
    switch (kind) {
      case "dark":
        return 0;
      case "stale":
        return bounds.staleSlackSeconds * 1000;
      case "skewed":
        return bounds.skewPageWithinSeconds * 1000;
      default:
        return bounds.changePageWithinSeconds * 1000;
    }
  };

  // Stale as the monitor can know it, second by second (see carriedStale).
  const carried = carriedStale(host, hostConfig, sessions, start, end);
  let snapshotIndex = 0;
  let sessionIndex = 0;
  let current: HostSnapshot | undefined = snapshots[0];
  for (let t = start; t < end; t += STEP_MS) {
    while (snapshotIndex + 1 < snapshots.length && (snapshots[snapshotIndex + 1]?.at ?? Infinity) <= t) snapshotIndex++;
    current = snapshots[snapshotIndex];
    if (current === undefined) continue;
    let sessionOpenedAt: number | null = 0;
    if (sessions !== null) {
      while (sessionIndex < sessions.length && (sessions[sessionIndex]?.close ?? Infinity) <= t) sessionIndex++;
      const session = sessions[sessionIndex];
      sessionOpenedAt = session !== undefined && session.open <= t ? session.open : null;
    }
    const states = conditionStates(current, t, sessionOpenedAt, hostConfig, replayWindowMs);
    for (const [kind, observed] of states) {
      // The age is measured at the ping on the host's clock: a stale heartbeat no ping has
      // shown yet (a clock stepped forward past the limit, say) cannot be paged until one does.
      const state: Tri = kind === "stale" && observed === TRUE && carried[(t - start) / STEP_MS] !== 1 ? UNKNOWN : observed;
      const episode = open.get(kind);
      if (state === TRUE) {
        if (episode === undefined) {
          open.set(kind, { start: t, visibleFrom: t, longest: 0, firstLongRun: null });
        } else if (episode.visibleFrom === null) {
          episode.visibleFrom = t;
        }
      }
      const live = open.get(kind);
      if (live === undefined) continue;
      if (state !== TRUE && live.visibleFrom !== null) live.visibleFrom = null;
      if (live.visibleFrom !== null) {
        const run = t + STEP_MS - live.visibleFrom;
        live.longest = Math.max(live.longest, run);
        if (live.firstLongRun === null && run >= requiredMs(kind)) live.firstLongRun = live.visibleFrom;
      }
      if (state === FALSE) {
        episodes.push(finish(host, kind, live, t, bounds, requiredMs(kind)));
        open.delete(kind);
      }
    }
  }
  for (const [kind, live] of open) episodes.push(finish(host, kind, live, null, bounds, requiredMs(kind)));
  const real = episodes.filter((episode) => episode.end === null || episode.end > episode.start);
  return [...real, ...unseenRefreshEpisodes(host.spec.id, carried, start, real)];
}

/**
 * Stale as the monitor can know it, one entry a second (1 = past the limit): the age the
 * last ping carried (host clock at the send minus the heartbeat's `at`), counted on
 * since, only while pings arrive. The monitor judges exactly this, so it lags the file
 * by up to one interval: a pipeline that beats, or a clock stepped, after a ping is seen
 * at the next.
 */
function carriedStale(host: SimHost, hostConfig: HostConfig, sessions: ReadonlyArray<{ open: number; close: number }> | null, start: number, end: number): Uint8Array {
  const snapshots = host.snapshots;
  const reachable = host.attempts.filter((attempt) => attempt.reachable);
  const series = new Uint8Array(Math.ceil((end - start) / STEP_MS));
  let snapshotIndex = 0;
  let attemptIndex = -1;
  let carried: HostSnapshot | undefined;
  let sessionIndex = 0;
  for (let t = start, index = 0; t < end; t += STEP_MS, index++) {
    // The monitor holds a ping once it has arrived (latency under a second).
    while (attemptIndex + 1 < reachable.length && (reachable[attemptIndex + 1]?.at ?? Infinity) <= t - STEP_MS) {
      attemptIndex++;
      const attemptAt = reachable[attemptIndex]?.at ?? 0;
      while (snapshotIndex + 1 < snapshots.length && (snapshots[snapshotIndex + 1]?.at ?? Infinity) <= attemptAt) snapshotIndex++;
      carried = snapshots[snapshotIndex];
    }
    const lastAt = reachable[attemptIndex]?.at;
    let openedAt: number | null = 0;
    if (sessions !== null) {
      while (sessionIndex < sessions.length && (sessions[sessionIndex]?.close ?? Infinity) <= t) sessionIndex++;
      const session = sessions[sessionIndex];
      openedAt = session !== undefined && session.open <= t ? session.open : null;
    }
    const maxAgeSeconds = openedAt === null ? hostConfig.maxAgeOutOfSessionSeconds : hostConfig.maxAgeInSessionSeconds;
    // Only while pings arrive: a host silent past its interval is judged dark, not stale.
    const pinging = lastAt !== undefined && t - lastAt <= hostConfig.intervalSeconds * 1000 + 2 * STEP_MS;
    if (!pinging || carried === undefined || !carried.heartbeatReadable || maxAgeSeconds === null) continue;
    const ageMs = t + carried.skewMs - carried.heartbeatAtHostMs;
    const effectiveAgeMs = openedAt === null ? ageMs : Math.min(ageMs, t - openedAt);
    if (effectiveAgeMs > maxAgeSeconds * 1000) series[index] = 1;
  }
  return series;
}

/**
 * Where the monitor sees stale from the last ping but the file is fresh (the pipeline
 * beat, or the clock stepped back, after that ping), it pages by its contract: such a
 * stretch is an episode, never a promised one, so a page in it is not false and its
 * recovery comes with the next ping.
 */
function unseenRefreshEpisodes(hostId: string, carried: Uint8Array, start: number, real: readonly Episode[]): Episode[] {
  const realStale = real.filter((episode) => episode.kind === "stale");
  const result: Episode[] = [];
  let runStart: number | null = null;
  for (let index = 0; index <= carried.length; index++) {
    const t = start + index * STEP_MS;
    const visible = carried[index] === 1;
    if (visible && runStart === null) runStart = t;
    if (visible || runStart === null) continue;
    const from = runStart - STEP_MS;
    const ended = index < carried.length;
    if (!realStale.some((episode) => episode.start <= t && (episode.end ?? Infinity) >= from)) {
      result.push({ hostId, kind: "stale", start: from, end: ended ? t : null, lastPingBefore: null, firstPingAfter: null, promised: false, deadline: null, longestVisibleMs: t - runStart, unseenRefresh: true });
    }
    runStart = null;
  }
  return result;
}

function conditionStates(
  snapshot: HostSnapshot,
  t: number,
  sessionOpenedAt: number | null,
  host: HostConfig,
  replayWindowMs: number,
): Array<[ConditionKind, Tri]> {
  const reachable = snapshot.powered && snapshot.agentUp && !snapshot.partitioned && Math.abs(snapshot.skewMs) < replayWindowMs - 5000;
  const states: Array<[ConditionKind, Tri]> = [["dark", reachable ? FALSE : TRUE]];
  if (!reachable) {
    for (const kind of CONTENT_KINDS) states.push([kind, UNKNOWN]);
    return states;
  }
  // A heartbeat more than 5 min ahead of the host's own clock (a clock stepped back) is
  // wrong_shape by the product's rule (src/judge/records.ts): it would otherwise look fresh forever.
  const heartbeat = snapshot.heartbeatReadable && snapshot.heartbeatAtHostMs - (t + snapshot.skewMs) <= HEARTBEAT_AHEAD_LIMIT_MS;
  // Age as the product defines it: on the host's own clock, counted in session from the open.
  const ageMs = t + snapshot.skewMs - snapshot.heartbeatAtHostMs;
  const maxAgeSeconds = sessionOpenedAt === null ? host.maxAgeOutOfSessionSeconds : host.maxAgeInSessionSeconds;
  const effectiveAgeMs = sessionOpenedAt === null ? ageMs : Math.min(ageMs, t - sessionOpenedAt);
  states.push(
    ["stale", !heartbeat ? UNKNOWN : maxAgeSeconds !== null && effectiveAgeMs > maxAgeSeconds * 1000 ? TRUE : FALSE],
    ["failing", !heartbeat ? UNKNOWN : snapshot.heartbeatStatus !== "ok" ? TRUE : FALSE],
    ["heartbeat_unreadable", heartbeat ? FALSE : TRUE],
    ["circuit_unreadable", snapshot.circuitReadable ? FALSE : TRUE],
    ["tripped", !snapshot.circuitReadable ? UNKNOWN : snapshot.circuitPaused ? TRUE : FALSE],
    ["skewed", Math.abs(snapshot.skewMs) > host.skewSeconds * 1000 ? TRUE : FALSE],
  );
  return states;
}

function finish(
  host: SimHost,
  kind: ConditionKind,
  live: { start: number; longest: number; firstLongRun: number | null },
  end: number | null,
  bounds: TruthBounds,
  requiredMs: number,
): Episode {
  // Sampling is per second: the condition may have begun up to a second before `start`.
  const start = live.start - STEP_MS;
  if (kind === "dark") {
    const before = [...host.attempts].reverse().find((attempt) => attempt.reachable && attempt.at < live.start);
    const after = end === null ? undefined : host.attempts.find((attempt) => attempt.reachable && attempt.at >= end - STEP_MS);
    const lastPingBefore = before?.at ?? null;
    const firstPingAfter = after?.at ?? null;
    // The record of the last ping carries its arrival time, a network latency later.
    const deadline = lastPingBefore === null ? null : lastPingBefore + bounds.darkPageWithinSeconds * 1000 + 1000;
    const promised = deadline !== null && (firstPingAfter === null || firstPingAfter > deadline);
    return {
      hostId: host.spec.id,
      kind,
      start,
      end,
      lastPingBefore,
      firstPingAfter,
      promised,
      deadline: promised ? deadline : null,
      longestVisibleMs: (end ?? Infinity) - live.start,
    };
  }
  const promised = live.firstLongRun !== null;
  return {
    hostId: host.spec.id,
    kind,
    start,
    end,
    lastPingBefore: null,
    firstPingAfter: null,
    promised,
    deadline: live.firstLongRun === null ? null : live.firstLongRun - STEP_MS + requiredMs,
    longestVisibleMs: live.longest,
  };
}
