// What a configuration costs in Workers KV operations and requests per day, and how
// late it can page. Pure arithmetic over the same rules the code follows (ping-policy,
// the cron's reads and writes, the judge's confirmation), so `check-config` can refuse
// a configuration before it burns the free quota at 3 PM and starts paging "dark".
import { DateTime } from "luxon";
import { sessionOpenedAt } from "./calendar.ts";
import type { Config, HostConfig } from "./config.ts";

export const QUOTAS = {
  // Cloudflare's documented limits (2026). Paid figures are the monthly inclusion / 30.
  free: { writes: 1_000, reads: 100_000, lists: 1_000, requests: 100_000 },
  paid: { writes: 1_000_000 / 30, reads: 10_000_000 / 30, lists: 1_000_000 / 30, requests: 10_000_000 / 30 },
} as const;

/** Allowance for writes that follow real changes (status, circuit, files, reboots) per host per day. */
export const CHANGE_WRITES_PER_HOST_PER_DAY = 20;
/** Above this share of a quota, check-config warns; above 100 % it refuses. */
export const WARN_SHARE = 0.8;

const DAY_SECONDS = 86_400;

export interface HostBudget {
  hostId: string;
  pingsPerDay: number;
  /** Seconds between writes of an unchanged, healthy host's record. */
  writeEverySeconds: number;
  writes: number;
  reads: number;
  requests: number;
  /** Worst case from the host's last ping to the dark page, seconds. */
  darkPageWithinSeconds: number;
  /**
   * The shortest real silence that can page dark. darkAfter counts from the last
   * *stored* ping, which can be a refresh interval (plus KV lag) older than the last
   * ping, so a shorter gap that straddles a refresh can page; raise darkAfter to
   * tolerate longer gaps (e.g. a nightly reboot).
   */
  darkMinimumSilenceSeconds: number;
  /** Worst case from the heartbeat's last beat to the stale page, seconds (in session). */
  stalePageWithinSeconds: number;
  /** Worst case from a change on disk (status, circuit, file) to its page, seconds. */
  changePageWithinSeconds: number;
  /** Share of the week inside trading sessions (1 without a calendar). */
  sessionShare: number;
}

export interface Budget {
  plan: Config["plan"];
  hosts: HostBudget[];
  cron: { writes: number; reads: number; requests: number };
  total: { writes: number; reads: number; lists: number; requests: number };
  quota: (typeof QUOTAS)[Config["plan"]];
  /** Problems that make the configuration unable to hold; empty when it holds. */
  refusals: string[];
  warnings: string[];
}

/** The cron period rounded up to whole ticks: a condition is seen on a tick, never between. */
function ticks(seconds: number, cronPeriodSeconds: number): number {
  return Math.ceil(seconds / cronPeriodSeconds) * cronPeriodSeconds;
}

/** Share of one sample week inside sessions, sampled every 5 minutes (holidays ignored). */
export function sessionShare(host: HostConfig): number {
  if (host.calendar === null) return 1;
  const start = DateTime.fromISO("2026-06-01T00:00:00Z").toMillis(); // a Monday, clear of DST changes
  let inSession = 0;
  const samples = (7 * DAY_SECONDS) / 300;
  for (let i = 0; i < samples; i++) {
    if (sessionOpenedAt({ ...host.calendar, holidays: [] }, start + i * 300_000) !== null) inSession++;
  }
  return inSession / samples;
}

export function hostBudget(host: HostConfig, config: Config): HostBudget {
  const { timing } = config;
  const pingsPerDay = DAY_SECONDS / host.intervalSeconds;
  // ping-policy rewrites an unchanged record before its heartbeat could look stale to the
  // judge: with the tightest max age M, a heartbeat about one interval old at each write
  // and the notice it needs, that is every M - notice - interval seconds.
  const tightestMaxAge = Math.min(host.maxAgeInSessionSeconds, host.maxAgeOutOfSessionSeconds ?? Infinity);
  const notice = host.intervalSeconds + timing.kvLagSeconds + timing.cronPeriodSeconds;
  const horizon = Math.max(host.intervalSeconds, tightestMaxAge - notice - host.intervalSeconds);
  const writeEverySeconds = Math.min(timing.refreshSeconds, horizon);
  const writes = DAY_SECONDS / writeEverySeconds + CHANGE_WRITES_PER_HOST_PER_DAY;
  // Each ping reads its stored record and any pending command; each tick reads the
  // host's record, its operator state (acks, mutes) and its pending command.
  const ticksPerDay = DAY_SECONDS / timing.cronPeriodSeconds;
  const reads = pingsPerDay * 2 + ticksPerDay * 3;
  // The judge confirms once confirmSeconds have passed since the tick that opened the
  // condition. Cron ticks start a second or two off the minute, so the tick that gets
  // there may be the one after: allow one more period.
  const confirm = timing.confirmSeconds === 0 ? 0 : ticks(timing.confirmSeconds, timing.cronPeriodSeconds) + timing.cronPeriodSeconds;
  return {
    hostId: host.id,
    pingsPerDay,
    writeEverySeconds,
    writes,
    reads,
    requests: pingsPerDay,
    darkPageWithinSeconds: host.darkAfterSeconds + timing.cronPeriodSeconds + confirm + timing.settleSeconds,
    darkMinimumSilenceSeconds: host.darkAfterSeconds - timing.refreshSeconds - timing.kvLagSeconds,
    stalePageWithinSeconds: host.maxAgeInSessionSeconds + timing.cronPeriodSeconds + confirm + timing.settleSeconds,
    changePageWithinSeconds: host.intervalSeconds + timing.kvLagSeconds + timing.cronPeriodSeconds + timing.settleSeconds,
    sessionShare: sessionShare(host),
  };
}

export function computeBudget(config: Config): Budget {
  const { timing } = config;
  const hosts = config.hosts.map((host) => hostBudget(host, config));
  const ticksPerDay = DAY_SECONDS / timing.cronPeriodSeconds;
  const cron = {
    // The tick record, plus writes on ticks that change a judgement or queue a page
    // (counted in the hosts' change allowance, twice: state before sending, outbox after).
    writes: DAY_SECONDS / timing.tickRecordSeconds + 2 * CHANGE_WRITES_PER_HOST_PER_DAY * config.hosts.length,
    // The cron state key once a tick (hosts' keys are counted per host).
    reads: ticksPerDay,
    requests: ticksPerDay,
  };
  const sum = (pick: (host: HostBudget) => number) => hosts.reduce((total, host) => total + pick(host), 0);
  const total = {
    writes: sum((host) => host.writes) + cron.writes,
    reads: sum((host) => host.reads) + cron.reads,
    lists: 0,
    requests: sum((host) => host.requests) + cron.requests,
  };
  const quota = QUOTAS[config.plan];
  const refusals: string[] = [];
  const warnings: string[] = [];
  for (const resource of ["writes", "reads", "lists", "requests"] as const) {
    const share = total[resource] / quota[resource];
    const line = `${resource}: ${Math.round(total[resource])} a day is ${(share * 100).toFixed(0)} % of the ${config.plan} plan's ${Math.round(quota[resource])}`;
    if (share > 1) refusals.push(`${line}: raise timing.refreshSeconds or tickRecordSeconds, lengthen intervals, or switch plan = "paid"`);
    else if (share > WARN_SHARE) warnings.push(`${line}: little room left for other Workers on this account`);
  }
  return { plan: config.plan, hosts, cron, total, quota, refusals, warnings };
}
