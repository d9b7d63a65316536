// The only code that knows KV key names, encodings and TTLs. Every key has exactly one
// writer, because KV has no compare-and-swap and the last write wins:
//   ping:<host>        the ping route   (what the host last reported)
//   cmd:<host>         the Telegram webhook (a pending remote pause)
//   op:<host>          the Telegram webhook (acks and mutes)
//   tg-update:<id>     the Telegram webhook (update dedupe, expires)
//   cron:state         the cron          (judgements, undelivered pages, tick record)
// Values are validated on the way out; a corrupt value reads as absent and is logged,
// never thrown at a caller.
import { z } from "zod";
import { HostJudgement } from "./judge.ts";
import { PauseCommand } from "./protocol.ts";
import { PingRecord } from "./records.ts";

/** Shortest edge cache KV allows: a read may be this much older than the last write, plus propagation. */
const READ_CACHE_TTL_SECONDS = 30;
const MAX_BULK_KEYS = 100;

export const OperatorState = z.object({
  acked: z.array(z.object({ incidentId: z.string(), by: z.string(), at: z.number() })).default([]),
  mutedUntil: z.number().nullable().default(null),
  mutedBy: z.string().optional(),
});
export type OperatorState = z.infer<typeof OperatorState>;

export const InlineButton = z.object({ text: z.string(), data: z.string().max(64) });
export type InlineButton = z.infer<typeof InlineButton>;

export const OutboxMessage = z.object({
  id: z.string(),
  createdAt: z.number(),
  text: z.string(),
  /** Rows of inline buttons (acknowledge, mute, pause) under the message. */
  buttons: z.array(z.array(InlineButton)).optional(),
  attempts: z.number(),
  lastError: z.string().optional(),
});
export type OutboxMessage = z.infer<typeof OutboxMessage>;

/** A remote pause as the webhook stores it: queued for the agent only once confirmed. */
export const StoredCommand = z.object({
  command: PauseCommand,
  requestedAt: z.number(),
  confirmedAt: z.number().nullable(),
});
export type StoredCommand = z.infer<typeof StoredCommand>;

/** What the cron already told the chat about the operator's own actions, per host. */
export const FollowUps = z.object({
  /** The mutedUntil whose end was announced. */
  muteEndAnnounced: z.number().nullable().default(null),
  /** The remote command whose outcome (applied, refused, failed) was reported. */
  commandReported: z.string().nullable().default(null),
  /** The remote command reported as not applied by its deadline (its outcome may still follow). */
  commandTimedOut: z.string().nullable().default(null),
});
export type FollowUps = z.infer<typeof FollowUps>;

export const CronState = z.object({
  version: z.literal(1),
  /** Worker ms of the last tick this state records. */
  lastTickAt: z.number(),
  hosts: z.record(z.string(), HostJudgement),
  followUps: z.record(z.string(), FollowUps).default({}),
  /** Pages not yet delivered, oldest first. */
  outbox: z.array(OutboxMessage),
  telegram: z.object({
    lastDeliveredAt: z.number().nullable(),
    /** A permanent delivery error (chat not found, bot blocked): shown on /v1/status. */
    permanentError: z.string().nullable(),
  }),
  /** Worker ms of pages sent, for the digest's "pages in the last 24 h". */
  pagesSentAt: z.array(z.number()),
  digestDate: z.string().nullable(),
  /** The configuration error already paged, so it pages once. */
  configErrorPaged: z.string().nullable(),
  /** Since when KV failed, if it did; set again once KV answers. */
  degradedSince: z.number().nullable(),
});
export type CronState = z.infer<typeof CronState>;

export function emptyCronState(now: number): CronState {
  return {
    version: 1,
    lastTickAt: now,
    hosts: {},
    followUps: {},
    outbox: [],
    telegram: { lastDeliveredAt: null, permanentError: null },
    pagesSentAt: [],
    digestDate: null,
    configErrorPaged: null,
    degradedSince: null,
  };
}

const keys = {
  ping: (hostId: string) => `ping:${hostId}`,
  command: (hostId: string) => `cmd:${hostId}`,
  operator: (hostId: string) => `op:${hostId}`,
  telegramUpdate: (updateId: number) => `tg-update:${updateId}`,
  cronState: "cron:state",
} as const;

export class Store {
  private readonly kv: KVNamespace;

  constructor(kv: KVNamespace) {
    this.kv = kv;
  }

  private decode<T extends z.ZodType>(schema: T, key: string, text: string | null): z.infer<T> | null {
    if (text === null) return null;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      console.error(`store: ${key} holds text that is not JSON; treating it as absent`);
      return null;
    }
    const result = schema.safeParse(json);
    if (!result.success) {
      console.error(`store: ${key} does not match its schema (${result.error.issues[0]?.message ?? "?"}); treating it as absent`);
      return null;
    }
    return result.data;
  }

  private async getOne<T extends z.ZodType>(schema: T, key: string): Promise<z.infer<T> | null> {
    return this.decode(schema, key, await this.kv.get(key, { cacheTtl: READ_CACHE_TTL_SECONDS }));
  }

  private async getMany<T extends z.ZodType>(schema: T, keyList: string[]): Promise<Map<string, z.infer<T> | null>> {
    const values = new Map<string, z.infer<T> | null>();
    for (let start = 0; start < keyList.length; start += MAX_BULK_KEYS) {
      const chunk = keyList.slice(start, start + MAX_BULK_KEYS);
      const texts = await this.kv.get(chunk, { type: "text", cacheTtl: READ_CACHE_TTL_SECONDS });
      for (const key of chunk) values.set(key, this.decode(schema, key, texts.get(key) ?? null));
    }
    return values;
  }

  // ---- ping:<host>, written by the ping route only ----

  getPingRecord(hostId: string): Promise<PingRecord | null> {
    return this.getOne(PingRecord, keys.ping(hostId));
  }

  async getPingRecords(hostIds: string[]): Promise<Map<string, PingRecord | null>> {
    const byKey = await this.getMany(PingRecord, hostIds.map(keys.ping));
    return new Map(hostIds.map((id) => [id, byKey.get(keys.ping(id)) ?? null]));
  }

  putPingRecord(record: PingRecord): Promise<void> {
    return this.kv.put(keys.ping(record.hostId), JSON.stringify(record));
  }

  // ---- cmd:<host>, written by the Telegram webhook only ----

  getCommand(hostId: string): Promise<StoredCommand | null> {
    return this.getOne(StoredCommand, keys.command(hostId));
  }

  async getCommands(hostIds: string[]): Promise<Map<string, StoredCommand | null>> {
    const byKey = await this.getMany(StoredCommand, hostIds.map(keys.command));
    return new Map(hostIds.map((id) => [id, byKey.get(keys.command(id)) ?? null]));
  }

  putCommand(hostId: string, command: StoredCommand): Promise<void> {
    // Expired commands are only history: let KV drop them a day after they expire.
    const ttlSeconds = Math.max(60, Math.ceil((command.command.expiresAt - Date.now()) / 1000) + 86_400);
    return this.kv.put(keys.command(hostId), JSON.stringify(command), { expirationTtl: ttlSeconds });
  }

  deleteCommand(hostId: string): Promise<void> {
    return this.kv.delete(keys.command(hostId));
  }

  // ---- op:<host>, written by the Telegram webhook only ----

  async getOperatorStates(hostIds: string[]): Promise<Map<string, OperatorState | null>> {
    const byKey = await this.getMany(OperatorState, hostIds.map(keys.operator));
    return new Map(hostIds.map((id) => [id, byKey.get(keys.operator(id)) ?? null]));
  }

  getOperatorState(hostId: string): Promise<OperatorState | null> {
    return this.getOne(OperatorState, keys.operator(hostId));
  }

  putOperatorState(hostId: string, state: OperatorState): Promise<void> {
    return this.kv.put(keys.operator(hostId), JSON.stringify(state));
  }

  // ---- tg-update:<id>, written by the Telegram webhook only ----

  async hasSeenTelegramUpdate(updateId: number): Promise<boolean> {
    return (await this.kv.get(keys.telegramUpdate(updateId))) !== null;
  }

  markTelegramUpdateSeen(updateId: number): Promise<void> {
    // Telegram retries a delivery for up to a day at most.
    return this.kv.put(keys.telegramUpdate(updateId), "1", { expirationTtl: 2 * 86400 });
  }

  // ---- cron:state, written by the cron only ----

  getCronState(): Promise<CronState | null> {
    return this.getOne(CronState, keys.cronState);
  }

  putCronState(state: CronState): Promise<void> {
    return this.kv.put(keys.cronState, JSON.stringify(state));
  }
}
