// What a configuration costs a day on Cloudflare (Worker requests, Durable Object
// requests, rows written and read, KV reads and writes) and how late it can page. Pure
// arithmetic over the rules the monitor follows (monitor/core.ts: one row a ping, the
// alarm moved only when it must, a snapshot published on change and every
// publishSeconds), so `check-config` can refuse on the free plan what cannot fit.
import type { Config, HostConfig } from "./config.ts";

export const QUOTAS = {
  // Cloudflare's documented limits (2026): free per day; paid per month as included.
  free: { workerRequests: 100_000, doRequests: 100_000, rowsWritten: 100_000, rowsRead: 5_000_000, kvReads: 100_000, kvWrites: 1_000, doGbSeconds: 13_000 },
  paid: {
    workerRequests: 10_000_000 / 30,
    doRequests: 1_000_000 / 30,
    rowsWritten: 50_000_000 / 30,
    rowsRead: 25_000_000_000 / 30,
    kvReads: 10_000_000 / 30,
    kvWrites: 1_000_000 / 30,
    doGbSeconds: 400_000 / 30,
  },
} as const;
export type Resource = keyof (typeof QUOTAS)["free"];
export const RESOURCES = Object.keys(QUOTAS.free) as Resource[];

/** Paid plan, US dollars per unit beyond the included usage (Cloudflare's 2026 list). */
export const PAID_PRICE_PER_UNIT: Record<Resource, number> = {
  workerRequests: 0.3 / 1e6,
  doRequests: 0.15 / 1e6,
  rowsWritten: 1.0 / 1e6,
  rowsRead: 0.001 / 1e6,
  kvReads: 0.5 / 1e6,
  kvWrites: 5.0 / 1e6,
  doGbSeconds: 12.5 / 1e6,
};

/** Allowance per host per day for real changes: pages, recoveries, acks (each a run and a few rows). */
export const CHANGES_PER_HOST_PER_DAY = 20;
/** Above this share of a quota, check-config warns; above 100 % it refuses (free plan). */
export const WARN_SHARE = 0.8;
/** The batch window and a Telegram round trip: from a deadline to the message sent. */
export const DELIVERY_SLACK_SECONDS = 3;
/** How late an alarm may fire during a failover (Cloudflare: up to about a minute). */
export const ALARM_FAILOVER_SECONDS = 60;
/** Wall time a monitor request keeps the object busy (judging one host and one write), for duration. */
const DO_WALL_SECONDS_PER_REQUEST = 0.005;
const DO_MEMORY_GB = 0.128;
/** An outside uptime check of /v1/health once a minute. */
const HEALTH_READS_PER_DAY = 1440;

const DAY_SECONDS = 86_400;

export type Usage = Record<Resource, number>;

export interface HostBudget {
  hostId: string;
  pingsPerDay: number;
  usage: Usage;
  /** Alarm path, worst case from the host's last accepted ping to the dark page, seconds. */
  darkPageWithinSeconds: number;
  /** If alarms fail (lost, or a failover minute): the cron's path, seconds. */
  darkPageWithinSecondsIfAlarmsFail: number;
  /** The shortest real silence that can page dark: darkAfter itself, now that every ping counts. */
  darkMinimumSilenceSeconds: number;
  /** Worst case from the heartbeat's last beat to the stale page, in session, seconds. */
  stalePageWithinSeconds: number;
  /** Worst case from a change on disk (status, file) to its page, confirmations included, seconds. */
  changePageWithinSeconds: number;
}

export interface Budget {
  plan: Config["plan"];
  hosts: HostBudget[];
  /** The monitor's own share: the cron each minute, its meta row, the snapshot, health reads. */
  monitor: Usage;
  total: Usage;
  quota: Usage;
  /** Paid plan: US dollars a month beyond the included usage; 0 on the free plan. */
  monthlyCostUsd: number;
  refusals: string[];
  warnings: string[];
}

function usage(values: Partial<Usage>): Usage {
  return { workerRequests: 0, doRequests: 0, rowsWritten: 0, rowsRead: 0, kvReads: 0, kvWrites: 0, doGbSeconds: 0, ...values };
}

/**
 * Share of pings that also move the alarm (one row each), found by replaying an hour of
 * the monitor's rule (monitor/core.ts, arm): the alarm sits at the earliest dark
 * deadline and moves later only when it would otherwise fire before the next ping, from
 * any host, could move it (some host pings every interval / n).
 */
export function alarmMovesPerPing(host: HostConfig, hostCount: number): number {
  const key = `${host.intervalSeconds}/${host.darkAfterSeconds}/${hostCount}`;
  const known = replayed.get(key);
  if (known !== undefined) return known;
  const share = replayAlarmMoves(host, hostCount);
  replayed.set(key, share);
  return share;
}

/** Replays are the same for every host with the same timing: computed once each. */
const replayed = new Map<string, number>();

function replayAlarmMoves(host: HostConfig, hostCount: number): number {
  const n = Math.max(1, hostCount);
  const intervalMs = host.intervalSeconds * 1000;
  const darkMs = host.darkAfterSeconds * 1000;
  const batchMs = 1000;
  const gapMs = intervalMs / n;
  const lastPing = Array.from({ length: n }, (_, i) => -intervalMs + i * gapMs);
  let alarm = Math.min(...lastPing) + darkMs + batchMs;
  let moves = 0;
  let pings = 0;
  for (let now = 0; now < 3_600_000; now += gapMs) {
    const index = pings % n;
    lastPing[index] = now;
    pings++;
    const target = Math.min(...lastPing) + darkMs + batchMs;
    if (target < alarm || (alarm < target && alarm <= now + gapMs + batchMs)) {
      alarm = target;
      moves++;
    }
  }
  return moves / pings;
}

export function hostBudget(host: HostConfig, config: Config): HostBudget {
  const pingsPerDay = DAY_SECONDS / host.intervalSeconds;
  const moves = alarmMovesPerPing(host, config.hosts.length);
  // A change is judged at the ping, queued in its transaction, sent by an alarm set to now.
  const changeRuns = CHANGES_PER_HOST_PER_DAY;
  const doRequests = pingsPerDay + changeRuns;
  const cron = config.timing.cronPeriodSeconds;
  const worstConfirmations = Math.max(config.timing.confirmPings.failing, config.timing.confirmPings.heartbeatUnreadable);
  return {
    hostId: host.id,
    pingsPerDay,
    usage: usage({
      workerRequests: pingsPerDay,
      doRequests,
      // One row a ping (the host's), the alarm's moves, and a few rows per change (outbox, history, meta).
      rowsWritten: pingsPerDay * (1 + moves) + changeRuns * 4,
      rowsRead: changeRuns * 4,
      doGbSeconds: doRequests * DO_WALL_SECONDS_PER_REQUEST * DO_MEMORY_GB,
    }),
    darkPageWithinSeconds: host.darkAfterSeconds + DELIVERY_SLACK_SECONDS,
    darkPageWithinSecondsIfAlarmsFail: host.darkAfterSeconds + cron + DELIVERY_SLACK_SECONDS,
    darkMinimumSilenceSeconds: host.darkAfterSeconds,
    stalePageWithinSeconds: host.maxAgeInSessionSeconds + DELIVERY_SLACK_SECONDS,
    // The agent reads the file at its next ping; each confirmation waits one more.
    changePageWithinSeconds: host.intervalSeconds * worstConfirmations + DELIVERY_SLACK_SECONDS,
  };
}

export function computeBudget(config: Config): Budget {
  const hosts = config.hosts.map((host) => hostBudget(host, config));
  const cronRuns = DAY_SECONDS / config.timing.cronPeriodSeconds;
  const monitor = usage({
    workerRequests: cronRuns,
    doRequests: cronRuns + 1, // and the digest's alarm
    // The meta row each cron run; the alarm re-armed now and then.
    rowsWritten: cronRuns * 1.1,
    rowsRead: cronRuns,
    // The cron asks KV whether a degraded notice is outstanding; an uptime check reads health.
    kvReads: cronRuns + HEALTH_READS_PER_DAY,
    kvWrites: DAY_SECONDS / config.timing.publishSeconds + CHANGES_PER_HOST_PER_DAY * config.hosts.length,
    doGbSeconds: cronRuns * DO_WALL_SECONDS_PER_REQUEST * DO_MEMORY_GB,
  });
  const total = usage({});
  for (const resource of RESOURCES) {
    total[resource] = monitor[resource] + hosts.reduce((sum, host) => sum + host.usage[resource], 0);
  }
  const quota: Usage = { ...QUOTAS[config.plan] };
  const refusals: string[] = [];
  const warnings: string[] = [];
  let monthlyCostUsd = 0;
  for (const resource of RESOURCES) {
    const share = total[resource] / quota[resource];
    const line = `${resource}: ${Math.round(total[resource]).toLocaleString("en-US")} a day is ${(share * 100).toFixed(1)} % of the ${config.plan} plan's ${Math.round(quota[resource]).toLocaleString("en-US")}${config.plan === "paid" ? " included" : ""}`;
    if (config.plan === "free") {
      if (share > 1) refusals.push(`${line}: lengthen intervalSeconds, watch fewer hosts, or switch plan = "paid"`);
      else if (share > WARN_SHARE) warnings.push(`${line}: little room left for other Workers on this account`);
    } else if (share > 1) {
      monthlyCostUsd += (total[resource] - quota[resource]) * 30 * PAID_PRICE_PER_UNIT[resource];
    }
  }
  return { plan: config.plan, hosts, monitor, total, quota, monthlyCostUsd, refusals, warnings };
}
