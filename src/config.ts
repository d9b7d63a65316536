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

/** Every per-host setting except the id; also the shape of the top-level `defaults`. */
const HostSettings = z
  .object({
    /** How often the agent pings. */
    intervalSeconds: seconds(10).default(60),
    /** No accepted ping for this long means the host is dark. Derived when absent. */
    darkAfterSeconds: seconds(1).optional(),
    /** Heartbeat age that pages during a session. */
    maxAgeInSessionSeconds: seconds(1).default(900),
    /** Heartbeat age that pages outside sessions; null turns stale checks off there. */
    maxAgeOutOfSessionSeconds: seconds(1).nullable().default(null),
    /** Trading sessions; absent means always in session. */
    calendar: Calendar.optional(),
    /** Host clock offset that pages. */
    skewSeconds: seconds(1).default(5),
    /** Local time (calendar time zone, else the alerts time zone) of the daily reminder for a paused circuit. */
    reminderAt: clockTime.default("09:00"),
    /** Whether the phone may queue a pause for this host (the agent must allow it too). */
    allowRemotePause: z.boolean().default(false),
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
        baseUrl: z.url().default("https://api.telegram.org"),
      })
      .strict(),
    timing: z
      .object({
        /** How often the ping route refreshes a host's unchanged record in KV. Defaults by plan. */
        refreshSeconds: seconds(30).optional(),
        /** How stale a KV read may be; Cloudflare documents "up to 60 s or more". */
        kvLagSeconds: seconds(0).default(60),
        /** A time-based condition must hold this long before it pages (guards against one stale read). */
        confirmSeconds: seconds(0).default(60),
        /** Accepted distance between an agent's timestamp and the Worker's clock. */
        replayWindowSeconds: seconds(30).max(3600).default(300),
        /** How often the cron records that it ran, when nothing else changed. Defaults by plan. */
        tickRecordSeconds: seconds(60).optional(),
        /**
         * Before sending, the cron waits this long and reads KV again, so a stale read of
         * its own state cannot repeat a page. Longer than KV's shortest edge cache (30 s).
         */
        settleSeconds: seconds(0).max(300).default(31),
        /**
         * How often the cron runs. Deployed Workers tick every minute (wrangler.toml);
         * only local runs that drive ticks faster (npm start, the demo) change it.
         */
        cronPeriodSeconds: seconds(1).max(3600).default(CRON_PERIOD_SECONDS),
      })
      .strict()
      .default({ kvLagSeconds: 60, confirmSeconds: 60, replayWindowSeconds: 300, settleSeconds: 31, cronPeriodSeconds: CRON_PERIOD_SECONDS }),
    alerts: z
      .object({
        /** Repeat an unacknowledged alert this often; 0 turns repeats off. */
        repeatMinutes: z.number().int().min(0).default(30),
        /** Time zone for the digest and for hosts without a calendar. */
        timezone: timeZone.default("UTC"),
        /** Local time of the daily "all quiet" digest; null turns it off. */
        digestAt: clockTime.nullable().default("08:00"),
        /** Optional dead-man URL fetched every tick, so an outside service notices if the cron stops. */
        deadManUrl: z.url().optional(),
      })
      .strict()
      .default({ repeatMinutes: 30, timezone: "UTC", digestAt: "08:00" }),
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
}

export interface Config {
  plan: "free" | "paid";
  telegram: { chatId: string; allowedChatIds: string[]; baseUrl: string };
  timing: {
    refreshSeconds: number;
    kvLagSeconds: number;
    confirmSeconds: number;
    replayWindowSeconds: number;
    tickRecordSeconds: number;
    settleSeconds: number;
    cronPeriodSeconds: number;
  };
  alerts: { repeatMinutes: number; timezone: string; digestAt: string | null; deadManUrl: string | null };
  hosts: HostConfig[];
}

/** A user's mistake in the configuration: one line saying what is wrong and how to fix it. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const PLAN_DEFAULTS = {
  // Free plan: 1,000 KV writes a day for the whole account, so refresh rarely.
  free: { refreshSeconds: 600, tickRecordSeconds: 600 },
  paid: { refreshSeconds: 60, tickRecordSeconds: 60 },
} as const;

/**
 * The shortest darkAfter that cannot page a live host: the last write may be a whole
 * refresh old, the next ping an interval away, the cron's read a KV lag stale, and the
 * tick a cron period late.
 */
export function minimumDarkAfterSeconds(intervalSeconds: number, timing: Config["timing"]): number {
  return intervalSeconds + timing.refreshSeconds + timing.kvLagSeconds + timing.cronPeriodSeconds;
}

/**
 * The shortest heartbeat max age the mirror can judge truthfully: the ping route
 * rewrites a host's record before its heartbeat could look older than this (see
 * ping-policy.ts), but it needs one interval, one KV lag and one cron period of notice.
 */
export function minimumMaxAgeSeconds(intervalSeconds: number, timing: Config["timing"]): number {
  return intervalSeconds + timing.kvLagSeconds + timing.cronPeriodSeconds;
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
    refreshSeconds: top.timing.refreshSeconds ?? planDefaults.refreshSeconds,
    kvLagSeconds: top.timing.kvLagSeconds,
    confirmSeconds: top.timing.confirmSeconds,
    replayWindowSeconds: top.timing.replayWindowSeconds,
    tickRecordSeconds: top.timing.tickRecordSeconds ?? planDefaults.tickRecordSeconds,
    settleSeconds: top.timing.settleSeconds,
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
    const darkAfterSeconds = host.darkAfterSeconds ?? defaultDarkAfter(host.intervalSeconds, timing);
    const minimumDark = minimumDarkAfterSeconds(host.intervalSeconds, timing);
    if (darkAfterSeconds < minimumDark) {
      throw new ConfigError(
        `WITNESS_CONFIG.hosts.${index}.darkAfterSeconds: ${darkAfterSeconds} s would page a live host; ` +
          `it must be at least interval + refresh + KV lag + cron period = ${minimumDark} s (raise it, or lower timing.refreshSeconds)`,
      );
    }
    const minimumAge = minimumMaxAgeSeconds(host.intervalSeconds, timing);
    for (const [field, value] of [
      ["maxAgeInSessionSeconds", host.maxAgeInSessionSeconds],
      ["maxAgeOutOfSessionSeconds", host.maxAgeOutOfSessionSeconds],
    ] as const) {
      if (value !== null && value < minimumAge) {
        throw new ConfigError(
          `WITNESS_CONFIG.hosts.${index}.${field}: ${value} s is shorter than interval + KV lag + cron period = ${minimumAge} s, ` +
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
    hosts,
  };
}

/** The derived darkAfter: the minimum rounded up to whole minutes. */
function defaultDarkAfter(intervalSeconds: number, timing: Config["timing"]): number {
  return Math.ceil(minimumDarkAfterSeconds(intervalSeconds, timing) / 60) * 60;
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
