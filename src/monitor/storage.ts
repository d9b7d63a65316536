// The only code that knows the monitor's tables and the KV keys it publishes. SQLite in
// the Durable Object holds all judgement state; the monitor is its single writer, so a
// read-modify-write here cannot lose an update. Reads are validated on the way out: a
// corrupt value is logged and read as the default, never thrown at a caller.
//
//   hosts(host_id, state)        one row a host: last ping, judgement, acks and mutes,
//                                 follow-ups, queued pause, agents seen (one write a ping)
//   outbox(id, ...)               pages not yet delivered, oldest first
//   events(id, at, ...)           the history: pages, recoveries, acks, mutes, pauses (30 days)
//   meta(key, value)              the monitor's own state (one row, key "monitor")
//   telegram_updates(update_id)   updates already handled (Telegram redelivers)
//   KV "snapshot"                 what readers see: health and each host's conditions
import { z } from "zod";
import { HostJudgement } from "../judge/judge.ts";
import { PingRecord } from "../judge/records.ts";
import {
  AgentSeen,
  ClockRefusal,
  FollowUps,
  type HistoryEvent,
  type HostState,
  MonitorMeta,
  OperatorState,
  OutboxMessage,
  type Snapshot,
  StoredCommand,
} from "./state.ts";

/** The part of SqlStorage the monitor uses, so Node (simulator, bench) can supply node:sqlite. */
export interface SqlCursor<T> {
  toArray(): T[];
  readonly rowsRead: number;
  readonly rowsWritten: number;
}
export interface Sql {
  exec<T extends Record<string, string | number | null | ArrayBuffer>>(query: string, ...bindings: (string | number | null)[]): SqlCursor<T>;
}

/** The KV calls the monitor makes (publishing only: nothing reads KV to decide). */
export interface SnapshotKv {
  put(key: string, value: string): Promise<void>;
  get(key: string): Promise<string | null>;
}

export const SNAPSHOT_KEY = "snapshot";
/** Written by the Worker, not the monitor: the monitor was unreachable (quota) and this was said. */
export const DEGRADED_KEY = "degraded-notice";

const HISTORY_DAYS = 30;
const MAX_SEEN_UPDATES = 500;
/** Events one history read returns at most (30 days of a few hosts is far fewer). */
const MAX_EVENTS_READ = 10_000;

const StoredHost = z.object({
  record: PingRecord.nullable(),
  judgement: HostJudgement,
  operator: OperatorState,
  followUps: FollowUps,
  command: StoredCommand.nullable(),
  agents: z.array(AgentSeen),
  boots: z.array(z.string()).default([]),
  clockRefusal: ClockRefusal.nullable().default(null),
});

const SCHEMA = [
  "CREATE TABLE IF NOT EXISTS hosts (host_id TEXT PRIMARY KEY, state TEXT NOT NULL)",
  "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, message TEXT NOT NULL)",
  "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, host_id TEXT, type TEXT NOT NULL, kind TEXT, detail TEXT NOT NULL, by TEXT)",
  "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
  "CREATE TABLE IF NOT EXISTS telegram_updates (update_id INTEGER PRIMARY KEY, at INTEGER NOT NULL)",
];

function decode<T extends z.ZodType>(schema: T, what: string, text: string): z.infer<T> | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    console.error(`monitor storage: ${what} is not JSON; reading it as absent`);
    return null;
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    console.error(`monitor storage: ${what} does not match its schema (${result.error.issues[0]?.message ?? "?"}); reading it as absent`);
    return null;
  }
  return result.data;
}

export function emptyHostState(hostId: string, now: number): HostState {
  return {
    hostId,
    record: null,
    judgement: { firstJudgedAt: now, conditions: {} },
    operator: { acked: [], mutedUntil: null, maintenance: [] },
    followUps: { muteEndAnnounced: null, commandReported: null, commandTimedOut: null },
    command: null,
    agents: [],
    boots: [],
    clockRefusal: null,
  };
}

export class MonitorStorage {
  private readonly sql: Sql;
  /** Rows written since the counter was last taken (for the budget and the bench). */
  rowsWritten = 0;
  rowsRead = 0;

  constructor(sql: Sql) {
    this.sql = sql;
  }

  private run<T extends Record<string, string | number | null | ArrayBuffer>>(query: string, ...bindings: (string | number | null)[]): T[] {
    const cursor = this.sql.exec<T>(query, ...bindings);
    const rows = cursor.toArray();
    this.rowsRead += cursor.rowsRead;
    this.rowsWritten += cursor.rowsWritten;
    return rows;
  }

  migrate(): void {
    for (const statement of SCHEMA) this.run(statement);
  }

  // ---- hosts ----

  loadHosts(now: number): Map<string, HostState> {
    const hosts = new Map<string, HostState>();
    for (const row of this.run<{ host_id: string; state: string }>("SELECT host_id, state FROM hosts")) {
      const stored = decode(StoredHost, `host ${row.host_id}`, row.state);
      hosts.set(row.host_id, stored === null ? emptyHostState(row.host_id, now) : { hostId: row.host_id, ...stored });
    }
    return hosts;
  }

  putHost(state: HostState): void {
    const { hostId, ...stored } = state;
    this.run(
      "INSERT INTO hosts (host_id, state) VALUES (?, ?) ON CONFLICT (host_id) DO UPDATE SET state = excluded.state",
      hostId,
      JSON.stringify(stored),
    );
  }

  deleteHost(hostId: string): void {
    this.run("DELETE FROM hosts WHERE host_id = ?", hostId);
  }

  // ---- meta ----

  loadMeta(): MonitorMeta | null {
    const row = this.run<{ value: string }>("SELECT value FROM meta WHERE key = 'monitor'")[0];
    return row === undefined ? null : decode(MonitorMeta, "monitor meta", row.value);
  }

  putMeta(meta: MonitorMeta): void {
    this.run(
      "INSERT INTO meta (key, value) VALUES ('monitor', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      JSON.stringify(meta),
    );
  }

  // ---- outbox ----

  outbox(): OutboxMessage[] {
    return this.run<{ id: number; message: string }>("SELECT id, message FROM outbox ORDER BY id").flatMap((row) => {
      const message = decode(OutboxMessage.omit({ id: true }), `outbox ${row.id}`, row.message);
      return message === null ? [] : [{ ...message, id: row.id }];
    });
  }

  /** The oldest undelivered message, reading one row. */
  outboxHead(): OutboxMessage | undefined {
    const row = this.run<{ id: number; message: string }>("SELECT id, message FROM outbox ORDER BY id LIMIT 1")[0];
    if (row === undefined) return undefined;
    const message = decode(OutboxMessage.omit({ id: true }), `outbox ${row.id}`, row.message);
    if (message === null) {
      // A row that cannot be read can never be sent: drop it rather than block every page.
      this.deleteOutbox(row.id);
      return this.outboxHead();
    }
    return { ...message, id: row.id };
  }

  outboxSize(): number {
    return this.run<{ size: number }>("SELECT COUNT(*) AS size FROM outbox")[0]?.size ?? 0;
  }

  enqueue(message: Omit<OutboxMessage, "id">): void {
    this.run("INSERT INTO outbox (message) VALUES (?)", JSON.stringify(message));
  }

  updateOutbox(message: OutboxMessage): void {
    const { id, ...rest } = message;
    this.run("UPDATE outbox SET message = ? WHERE id = ?", JSON.stringify(rest), id);
  }

  deleteOutbox(id: number): void {
    this.run("DELETE FROM outbox WHERE id = ?", id);
  }

  // ---- events ----

  record(event: HistoryEvent): void {
    this.run(
      "INSERT INTO events (at, host_id, type, kind, detail, by) VALUES (?, ?, ?, ?, ?, ?)",
      event.at,
      event.hostId,
      event.type,
      event.kind,
      event.detail,
      event.by,
    );
  }

  /** The newest `limit` events since `since` (one host or all), oldest first. */
  events(options: { hostId?: string; since: number; limit?: number }): HistoryEvent[] {
    const limit = options.limit ?? MAX_EVENTS_READ;
    const rows = this.run<{ at: number; host_id: string | null; type: string; kind: string | null; detail: string; by: string | null }>(
      options.hostId === undefined
        ? "SELECT at, host_id, type, kind, detail, by FROM events WHERE at >= ? ORDER BY id DESC LIMIT ?"
        : "SELECT at, host_id, type, kind, detail, by FROM events WHERE at >= ? AND host_id = ? ORDER BY id DESC LIMIT ?",
      ...(options.hostId === undefined ? [options.since, limit] : [options.since, options.hostId, limit]),
    );
    return rows.reverse().map((row) => ({ at: row.at, hostId: row.host_id, type: row.type, kind: row.kind, detail: row.detail, by: row.by }));
  }

  pruneHistory(now: number): void {
    this.run("DELETE FROM events WHERE at < ?", now - HISTORY_DAYS * 86_400_000);
    this.run("DELETE FROM telegram_updates WHERE update_id NOT IN (SELECT update_id FROM telegram_updates ORDER BY update_id DESC LIMIT ?)", MAX_SEEN_UPDATES);
  }

  // ---- telegram updates ----

  /** Marks the update handled; false when it already was (Telegram redelivered it). */
  markUpdate(updateId: number, now: number): boolean {
    const seen = this.run("SELECT 1 AS seen FROM telegram_updates WHERE update_id = ?", updateId);
    if (seen.length > 0) return false;
    this.run("INSERT INTO telegram_updates (update_id, at) VALUES (?, ?)", updateId, now);
    return true;
  }
}

/** Publishes the snapshot readers see; the monitor decides when. */
export async function publishSnapshot(kv: SnapshotKv, snapshot: Snapshot): Promise<void> {
  await kv.put(SNAPSHOT_KEY, JSON.stringify(snapshot));
}
