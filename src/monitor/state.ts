// The shapes of what the monitor object keeps, as zod schemas: every value is checked
// on its way out of storage, so a corrupt row reads as a logged default, never a throw.
import { z } from "zod";
import { HostJudgement } from "../judge/judge.ts";
import { PauseCommand } from "../protocol.ts";
import { PingRecord } from "../judge/records.ts";

export const OperatorState = z.object({
  acked: z.array(z.object({ incidentId: z.string(), by: z.string(), at: z.number() })).default([]),
  mutedUntil: z.number().nullable().default(null),
  mutedBy: z.string().optional(),
  /** The open conditions when the mute began, so its end can say what changed meanwhile. */
  mutedConditions: z.array(z.string()).optional(),
  /**
   * Maintenance windows set from the phone (/maintenance, the page's button), Worker ms;
   * kept 8 days after they end, so the status page can show the last week.
   */
  maintenance: z.array(z.object({ from: z.number(), until: z.number(), by: z.string() })).default([]),
});
export type OperatorState = z.infer<typeof OperatorState>;

export const InlineButton = z.object({ text: z.string(), data: z.string().max(64) });
export type InlineButton = z.infer<typeof InlineButton>;

/** A remote pause as the monitor keeps it: handed to the agent only once confirmed. */
export const StoredCommand = z.object({
  command: PauseCommand,
  requestedAt: z.number(),
  confirmedAt: z.number().nullable(),
});
export type StoredCommand = z.infer<typeof StoredCommand>;

/** What the monitor already told the chat about the operator's own actions, per host. */
export const FollowUps = z.object({
  /** The mutedUntil whose end was announced. */
  muteEndAnnounced: z.number().nullable().default(null),
  /** The remote command whose outcome (applied, refused, failed) was reported. */
  commandReported: z.string().nullable().default(null),
  /** The remote command reported as not applied by its deadline (its outcome may still follow). */
  commandTimedOut: z.string().nullable().default(null),
});
export type FollowUps = z.infer<typeof FollowUps>;

/** One agent process the monitor heard from, for the replay rule. */
export const AgentSeen = z.object({
  bootId: z.string(),
  startedAt: z.number(),
  seq: z.number(),
  /** Worker ms of its last accepted ping. */
  lastAt: z.number(),
  /** Its own clock (the signed timestamp) at that ping: the rate limit counts on it. */
  sentAt: z.number().default(0),
  /** "service", or a one-shot run ("once", "check") beside it. */
  mode: z.enum(["service", "once", "check"]).default("service"),
});
export type AgentSeen = z.infer<typeof AgentSeen>;

/**
 * The last correctly signed ping refused because its timestamp was outside the window:
 * the host is alive (not dark) but its clock is off (skewed).
 */
export const ClockRefusal = z.object({
  /** Worker ms when it arrived. */
  at: z.number(),
  /** Host clock minus Worker clock, seconds. */
  skewSeconds: z.number(),
});
export type ClockRefusal = z.infer<typeof ClockRefusal>;

/** Everything the monitor keeps about one host: one row, so a ping writes one row. */
export interface HostState {
  hostId: string;
  record: PingRecord | null;
  judgement: HostJudgement;
  operator: OperatorState;
  followUps: FollowUps;
  command: StoredCommand | null;
  agents: AgentSeen[];
  /** Boot ids heard from, newest first: a refused ping from an older boot is a replay. */
  boots: string[];
  clockRefusal: ClockRefusal | null;
}

export const OutboxMessage = z.object({
  id: z.number(),
  createdAt: z.number(),
  text: z.string(),
  /** Rows of inline buttons (acknowledge, mute, pause) under the message. */
  buttons: z.array(z.array(InlineButton)).optional(),
  attempts: z.number(),
  lastError: z.string().optional(),
  /** Worker ms before which a retry is pointless (Telegram's retry_after, or backoff). */
  notBefore: z.number(),
});
export type OutboxMessage = z.infer<typeof OutboxMessage>;

/**
 * Today's platform usage as the monitor counts it (a UTC day, as Cloudflare's free
 * quotas reset). Kept in the meta row, which every run writes anyway, so counting costs
 * no write of its own; what came after the last run's write is lost with an eviction.
 */
export const DailyUsage = z.object({
  date: z.string(),
  /** Durable Object requests: pings, cron visits, webhook updates, reads, and alarms. */
  requests: z.number(),
  alarms: z.number(),
  rowsWritten: z.number(),
  rowsRead: z.number(),
  kvWrites: z.number(),
});
export type DailyUsage = z.infer<typeof DailyUsage>;

/** The monitor's own state: one row. */
export const MonitorMeta = z.object({
  /** When this monitor first ran: hosts that never pinged count their silence from here. */
  createdAt: z.number(),
  /** Since when the monitor could hear pings (restarts after it was unreachable). */
  listeningSince: z.number(),
  /** When the "witness is watching" notice was queued; null until the first run. */
  watchingAnnouncedAt: z.number().nullable().default(null),
  /** Worker ms of the last time the monitor ran for any reason (ping, alarm, cron). */
  lastAwakeAt: z.number(),
  lastCronAt: z.number().nullable(),
  lastAlarmAt: z.number().nullable(),
  digestDate: z.string().nullable(),
  telegram: z.object({
    lastDeliveredAt: z.number().nullable(),
    /** A permanent delivery error (chat not found, bot removed): pages wait, health is red. */
    permanentError: z.string().nullable(),
    /** Worker ms since which the outbox head has been failing. */
    failingSince: z.number().nullable(),
  }),
  /** Worker ms of pages sent, for the digest's "pages in the last 24 h". */
  pagesSentAt: z.array(z.number()),
  /** The configuration error already paged, so it pages once. */
  configErrorPaged: z.string().nullable(),
  /** The chat a group migrated to, announced once with what to change in the config. */
  migratedChatId: z.string().nullable().default(null),
  /** The UTC date the event history was last pruned. */
  prunedDate: z.string().nullable().default(null),
  lastPublishedAt: z.number().nullable(),
  publishedFingerprint: z.string().nullable(),
  usage: DailyUsage.nullable().default(null),
});
export type MonitorMeta = z.infer<typeof MonitorMeta>;

export function newMonitorMeta(now: number): MonitorMeta {
  return {
    createdAt: now,
    listeningSince: now,
    watchingAnnouncedAt: null,
    lastAwakeAt: now,
    lastCronAt: null,
    lastAlarmAt: null,
    digestDate: null,
    telegram: { lastDeliveredAt: null, permanentError: null, failingSince: null },
    pagesSentAt: [],
    configErrorPaged: null,
    migratedChatId: null,
    prunedDate: null,
    lastPublishedAt: null,
    publishedFingerprint: null,
    usage: null,
  };
}

/** What the monitor publishes to KV for readers at the edge (health, public views). */
export const Snapshot = z.object({
  publishedAt: z.number(),
  lastCronAt: z.number().nullable(),
  alarmAt: z.number().nullable(),
  telegram: z.object({
    lastDeliveredAt: z.number().nullable(),
    permanentError: z.string().nullable(),
    /** Since when deliveries have been failing (retriably or not); null when the last one went out. */
    failingSince: z.number().nullable().default(null),
    undelivered: z.number(),
  }),
  hosts: z.array(
    z.object({
      id: z.string(),
      conditions: z.array(z.string()),
      lastPingAt: z.number().nullable(),
    }),
  ),
});
export type Snapshot = z.infer<typeof Snapshot>;

/** One line of the event history (30 days kept). */
export interface HistoryEvent {
  at: number;
  hostId: string | null;
  type: string;
  kind: string | null;
  detail: string;
  by: string | null;
}
