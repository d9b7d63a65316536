// The Durable Object's SQL storage for Node: the `Sql` interface MonitorStorage uses,
// over node:sqlite (DatabaseSync, in memory), and transactionSync's counterpart. Rows are
// counted as Cloudflare bills them, as near as node:sqlite lets us see: rows written are
// the `changes` of each INSERT, UPDATE, DELETE or REPLACE (an upsert counts 1; DDL 0,
// since SQLite's changes() keeps the last DML count across DDL); rows read are the rows a
// SELECT returns (Cloudflare counts rows scanned: the same for these keyed and whole-table
// reads, fewer than scanned only for the history prune's subquery).
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { Sql, SqlCursor } from "../src/monitor/storage.ts";

type Row = Record<string, string | number | null | ArrayBuffer>;
type SqlValue = string | number | null;

const WRITES = /^\s*(INSERT|UPDATE|DELETE|REPLACE)\b/i;
const READS = /^\s*(SELECT|WITH)\b/i;

export class NodeSql implements Sql {
  readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  private depth = 0;
  /** Every statement run, for anyone who wants to watch (the simulator reads the history inserts). */
  onExec: ((query: string, bindings: readonly SqlValue[]) => void) | null = null;
  rowsRead = 0;
  rowsWritten = 0;

  constructor() {
    this.db = new DatabaseSync(":memory:");
  }

  private statement(query: string): StatementSync {
    let statement = this.statements.get(query);
    if (statement === undefined) {
      statement = this.db.prepare(query);
      this.statements.set(query, statement);
    }
    return statement;
  }

  exec<T extends Row>(query: string, ...bindings: SqlValue[]): SqlCursor<T> {
    this.onExec?.(query, bindings);
    const statement = this.statement(query);
    let rows: T[] = [];
    let read = 0;
    let written = 0;
    if (READS.test(query)) {
      rows = statement.all(...bindings) as T[];
      read = rows.length;
    } else {
      const result = statement.run(...bindings);
      if (WRITES.test(query)) written = Number(result.changes);
    }
    this.rowsRead += read;
    this.rowsWritten += written;
    return { toArray: () => rows, rowsRead: read, rowsWritten: written };
  }

  /** transactionSync: all of `body` or none of it (a savepoint when nested). */
  transaction<T>(body: () => T): T {
    const name = `tx${this.depth}`;
    this.db.exec(this.depth === 0 ? "BEGIN" : `SAVEPOINT ${name}`);
    this.depth++;
    try {
      const result = body();
      this.depth--;
      this.db.exec(this.depth === 0 ? "COMMIT" : `RELEASE ${name}`);
      return result;
    } catch (error) {
      this.depth--;
      this.db.exec(this.depth === 0 ? "ROLLBACK" : `ROLLBACK TO ${name}; RELEASE ${name}`);
      throw error;
    }
  }
}
