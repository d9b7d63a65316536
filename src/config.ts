// What witness watches and how, validated once with zod. The raw config lives in
// wrangler.toml under [vars.WITNESS_CONFIG]; this module turns it into a fully
// defaulted, derived Config, or into one error that names the field and the fix.
import { z } from "zod";
import { HostId } from "./protocol.ts";

/** The cron period: wrangler.toml runs the judge every minute ([triggers] crons). */
export const CRON_PERIOD_SECONDS = 60;

const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const clockTime = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, "use 24-hour HH:MM, e.g. \"09:30\"");
const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "use YYYY-MM-DD, e.g. \"2026-12-25\"");
const seconds = (min: number) => z.number().int().min(min);
const confirmCount = z.number().int().min(1).max(10);
/** TOML has no null: every setting documented "null = off" also takes false. */
const orOff = <T extends z.ZodType>(schema: T) =>
  z.union([schema, z.literal(false), z.null()]).transform((value): z.infer<T> | null => (value === false ? null : value));

/**
 * Settings of the first, KV-only judge that mean nothing to the monitor object. Named
 * with the fix rather than refused as merely "unrecognized".
 */
const retired = (name: string) =>
  z
    .never({ error: `${name} is no longer used: the monitor object keeps every ping and judges at the deadline; remove it` })
    .optional();
const retiredTimingKeys = {
  refreshSeconds: retired("timing.refreshSeconds"),
  kvLagSeconds: retired("timing.kvLagSeconds"),
  confirmSeconds: retired("timing.confirmSeconds (see timing.confirmPings)"),
  tickRecordSeconds: retired("timing.tickRecordSeconds"),
  settleSeconds: retired("timing.settleSeconds"),
};

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
const timeZone = z.string().refine(isTimeZone, "not an IANA time zone; use a name like \"America/New_York\" or \"UTC\"");

const Calendar = z
  .object({
    timezone: timeZone,
    weekdays: z.array(z.enum(WEEKDAYS)).min(1).default(["mon", "tue", "wed", "thu", "fri"]),
    open: clockTime,
    close: clockTime,
    holidays: z.array(isoDate).default([]),
  })
  .strict();
export type Calendar = z.infer<typeof Calendar>;

/**
 * A weekly maintenance window: DARK and STALE do not page inside it. `days` are the days
 * it starts on; `to` before `from` ends it the next day (equal is refused). The zone defaults to the
 * host calendar's, else alerts.timezone (resolved in judge/maintenance.ts).
 */
const MaintenanceWindow = z
  .object({
    days: z.array(z.enum(WEEKDAYS, { error: 'use day names "mon", "tue", "wed", "thu", "fri", "sat" or "sun"' })).min(1, 'name at least one day, e.g. days = ["sat"]'),
    from: clockTime,
    to: clockTime,
    timezone: timeZone.optional(),
  })
  .strict()
  .refine((window) => window.from !== window.to, {
    path: ["to"],
    message: "equals from, so the window would be empty; set to later than from, or earlier to end the next day",
  });
export type MaintenanceWindow = z.infer<typeof MaintenanceWindow>;

/** Every per-host setting except the id; also the shape of the top-level `defaults`. */
const HostSettings = z
  .object({
    /** How often the agent pings. */
    intervalSeconds: seconds(10).default(30),
    /** No accepted ping for this long means the host is dark. Default: two missed pings and 15 s. */
    darkAfterSeconds: seconds(1).optional(),
    /** Heartbeat age that pages during a session. */
    maxAgeInSessionSeconds: seconds(1).default(900),
    /** Heartbeat age that pages outside sessions; null turns stale checks off there. */
    maxAgeOutOfSessionSeconds: orOff(seconds(1)).default(null),
    /** Trading sessions; absent means always in session. */
    calendar: Calendar.optional(),
    /** Host clock offset that pages. */
    skewSeconds: seconds(1).default(5),
    /** Local time, in alerts.timezone (the operator's), of the daily reminder for a paused circuit. */
    reminderAt: clockTime.default("09:00"),
    /** Whether the phone may queue a pause for this host (the agent must allow it too). */
    allowRemotePause: z.boolean().default(false),
    /** Weekly windows in which DARK and STALE are recorded but not paged. */
    maintenance: z.array(MaintenanceWindow).default([]),
  })
  .strict();

const Host = HostSettings.extend({ id: HostId, name: z.string().max(64).optional() }).strict();

export const RawConfig = z
  .object({
    /** Which Workers KV quota to budget against. */
    plan: z.enum(["free", "paid"]).default("free"),
    telegram: z
      .object({
        chatId: z.union([z.string().regex(/^-?\d+$|^@\w+$/, "a numeric chat id or @channelname"), z.number().int()]).transform(String),
        /** Chats whose commands the bot obeys; the alert chat is always allowed. */
        allowedChatIds: z.array(z.union([z.string(), z.number().int()]).transform(String)).default([]),
        /**
         * Telegram user ids that may pause trading. Empty: only from a private chat with
         * the bot (in a group, anyone in it could otherwise pause).
         */
        allowedUserIds: z.array(z.union([z.string(), z.number().int()]).transform(String)).default([]),
        baseUrl: z.url().default("https://api.telegram.org"),
      })
      .strict(),
    timing: z
      .object({
        ...retiredTimingKeys,
        /** Consecutive pings that must show a condition before it pages (a trip pages at once). */
        confirmPings: z
          .object({
            failing: confirmCount.default(2),
            heartbeatUnreadable: confirmCount.default(2),
            circuitUnreadable: confirmCount.default(2),
            skewed: confirmCount.default(2),
          })
          .strict()
          .default({ failing: 2, heartbeatUnreadable: 2, circuitUnreadable: 2, skewed: 2 }),
        /** Accepted distance between an agent's timestamp and the Worker's clock. */
        replayWindowSeconds: seconds(30).max(3600).default(300),
        /** How often the monitor republishes its snapshot to KV when nothing changed. Defaults by plan. */
        publishSeconds: seconds(60).max(3600).optional(),
        /**
         * How often the cron runs. Deployed Workers tick every minute (wrangler.toml);
         * only local runs that drive ticks faster (npm start, the demo) change it.
         */
        cronPeriodSeconds: seconds(1).max(3600).default(CRON_PERIOD_SECONDS),
      })
      .strict()
      .default({
        confirmPings: { failing: 2, heartbeatUnreadable: 2, circuitUnreadable: 2, skewed: 2 },
        replayWindowSeconds: 300,
        cronPeriodSeconds: CRON_PERIOD_SECONDS,
      }),
    alerts: z
      .object({
        /** Repeat an unacknowledged alert this often; 0 turns repeats off. */
        repeatMinutes: z.number().int().min(0).default(30),
        /** Time zone for the digest and for hosts without a calendar. */
        timezone: timeZone.default("UTC"),
        /** Local time of the daily "all quiet" digest; null turns it off. */
        digestAt: orOff(clockTime).default("08:00"),
        /** Optional dead-man URL fetched every tick, so an outside service notices if the cron stops. */
        deadManUrl: z.url().optional(),
      })
      .strict()
      .default({ repeatMinutes: 30, timezone: "UTC", digestAt: "08:00" }),
    /** A page of host names and up or down at /public, for anyone: off unless set. */
    publicStatus: z.boolean().default(false),
    /** Up-or-down SVG badges at /badge/<host>.svg, for anyone: off unless set. */
    publicBadges: z.boolean().default(false),
    defaults: HostSettings.partial().optional(),
    hosts: z.array(z.unknown()).min(1, "declare at least one host under [[vars.WITNESS_CONFIG.hosts]]"),
  })
  .strict();

export interface HostConfig {
  id: string;
  name: string;
  intervalSeconds: number;
  darkAfterSeconds: number;
  maxAgeInSessionSeconds: number;
  maxAgeOutOfSessionSeconds: number | null;
  calendar: Calendar | null;
  skewSeconds: number;
  reminderAt: string;
  allowRemotePause: boolean;
  maintenance: MaintenanceWindow[];
}

export interface Config {
  plan: "free" | "paid";
  telegram: { chatId: string; allowedChatIds: string[]; allowedUserIds: string[]; baseUrl: string };
  timing: {
    confirmPings: { failing: number; heartbeatUnreadable: number; circuitUnreadable: number; skewed: number };
    replayWindowSeconds: number;
    publishSeconds: number;
    cronPeriodSeconds: number;
  };
  alerts: { repeatMinutes: number; timezone: string; digestAt: string | null; deadManUrl: string | null };
  publicStatus: boolean;
  publicBadges: boolean;
  hosts: HostConfig[];
}

/** A user's mistake in the configuration: one line saying what is wrong and how to fix it. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const PLAN_DEFAULTS = {
  // Free plan: 1,000 KV writes a day for the whole account, so the snapshot that readers
  // see is republished every 5 minutes when nothing changed (a change publishes at once).
  free: { publishSeconds: 300 },
  paid: { publishSeconds: 60 },
} as const;

/** Margin over one interval before a host counts as silent: a ping may be a little late. */
export const DARK_MARGIN_SECONDS = 10;

/** The shortest darkAfter witness accepts: one interval and a margin (one late ping must not page). */
export function minimumDarkAfterSeconds(intervalSeconds: number): number {
  return intervalSeconds + DARK_MARGIN_SECONDS;
}

/** The default darkAfter: two missed pings and 15 s (75 s at 30 s pings, 35 s at 10 s). */
export function defaultDarkAfterSeconds(intervalSeconds: number): number {
  return 2 * intervalSeconds + 15;
}

/**
 * The shortest heartbeat max age the mirror can judge truthfully: the stored heartbeat
 * can be up to one interval (and a margin) older than the file on disk.
 */
export function minimumMaxAgeSeconds(intervalSeconds: number): number {
  return intervalSeconds + DARK_MARGIN_SECONDS;
}

function formatIssue(issue: z.core.$ZodIssue, prefix: string): string {
  const path = [prefix, ...issue.path.map(String)].filter(Boolean).join(".");
  return `${path || "WITNESS_CONFIG"}: ${issue.message}`;
}

function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, prefix: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const first = result.error.issues[0];
    const more = result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more)` : "";
    throw new ConfigError(first ? formatIssue(first, prefix) + more : `${prefix}: invalid`);
  }
  return result.data;
}

/** Validates the raw WITNESS_CONFIG value; throws ConfigError naming the first bad field. */
export function parseConfig(raw: unknown): Config {
  if (raw === undefined || raw === null) {
    throw new ConfigError("WITNESS_CONFIG is not set: add [vars.WITNESS_CONFIG] to wrangler.toml (see README, Configuration)");
  }
  const value: unknown = typeof raw === "string" ? parseJsonConfig(raw) : raw;
  const top = parseOrThrow(RawConfig, value, "WITNESS_CONFIG");
  const planDefaults = PLAN_DEFAULTS[top.plan];
  const timing: Config["timing"] = {
    confirmPings: top.timing.confirmPings,
    replayWindowSeconds: top.timing.replayWindowSeconds,
    publishSeconds: top.timing.publishSeconds ?? planDefaults.publishSeconds,
    cronPeriodSeconds: top.timing.cronPeriodSeconds,
  };

  const seen = new Set<string>();
  const hosts = top.hosts.map((rawHost, index): HostConfig => {
    const merged = mergeDefaults(top.defaults, rawHost);
    const host = parseOrThrow(Host, merged, `WITNESS_CONFIG.hosts.${index}`);
    if (seen.has(host.id)) {
      throw new ConfigError(`WITNESS_CONFIG.hosts.${index}.id: "${host.id}" is declared twice; host ids must be unique`);
    }
    seen.add(host.id);
    const darkAfterSeconds = host.darkAfterSeconds ?? defaultDarkAfterSeconds(host.intervalSeconds);
    const minimumDark = minimumDarkAfterSeconds(host.intervalSeconds);
    if (darkAfterSeconds < minimumDark) {
      throw new ConfigError(
        `WITNESS_CONFIG.hosts.${index}.darkAfterSeconds: ${darkAfterSeconds} s would page a live host whose ping is a little late; ` +
          `it must be at least interval + ${DARK_MARGIN_SECONDS} s = ${minimumDark} s (the default is two missed pings and 15 s: ${defaultDarkAfterSeconds(host.intervalSeconds)} s)`,
      );
    }
    const minimumAge = minimumMaxAgeSeconds(host.intervalSeconds);
    for (const [field, value] of [
      ["maxAgeInSessionSeconds", host.maxAgeInSessionSeconds],
      ["maxAgeOutOfSessionSeconds", host.maxAgeOutOfSessionSeconds],
    ] as const) {
      if (value !== null && value < minimumAge) {
        throw new ConfigError(
          `WITNESS_CONFIG.hosts.${index}.${field}: ${value} s is shorter than interval + ${DARK_MARGIN_SECONDS} s = ${minimumAge} s, ` +
            `so a healthy heartbeat could look stale; raise it to at least ${minimumAge}`,
        );
      }
    }
    return {
      id: host.id,
      name: host.name ?? host.id,
      intervalSeconds: host.intervalSeconds,
      darkAfterSeconds,
      maxAgeInSessionSeconds: host.maxAgeInSessionSeconds,
      maxAgeOutOfSessionSeconds: host.maxAgeOutOfSessionSeconds,
      calendar: host.calendar ?? null,
      skewSeconds: host.skewSeconds,
      reminderAt: host.reminderAt,
      allowRemotePause: host.allowRemotePause,
      maintenance: host.maintenance,
    };
  });

  return {
    plan: top.plan,
    telegram: top.telegram,
    timing,
    alerts: {
      repeatMinutes: top.alerts.repeatMinutes,
      timezone: top.alerts.timezone,
      digestAt: top.alerts.digestAt,
      deadManUrl: top.alerts.deadManUrl ?? null,
    },
    publicStatus: top.publicStatus,
    publicBadges: top.publicBadges,
    hosts,
  };
}

function parseJsonConfig(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ConfigError(`WITNESS_CONFIG is not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
}

function mergeDefaults(defaults: unknown, host: unknown): unknown {
  if (defaults === undefined || typeof host !== "object" || host === null || Array.isArray(host)) return host;
  return { ...(defaults as object), ...host };
}

export function findHost(config: Config, hostId: string): HostConfig | undefined {
  return config.hosts.find((host) => host.id === hostId);
}
