// Workers KV as it really behaves, in memory. Values are written to a central store. A
// read happens in one Cloudflare location: it is served from that location's cache while
// the cacheTtl of an earlier read there lasts, and otherwise from the central store as
// the location sees it, where a write from elsewhere arrives only after a propagation
// delay (a write is visible in its own location at once). With the code's 30 s cacheTtl
// and propagation up to 60 s, a read can be 0-90 s stale. Last write wins; there is no
// compare-and-swap. Every operation is counted by kind, by key owner and by caller, and
// writes can be made to fail as an exhausted quota does.
import { unitHash } from "./random.ts";

interface Version {
  value: string | null;
  writtenAt: number;
  origin: string;
  /** Position in the key's history: with the key and a location, it fixes the delay. */
  index: number;
  expiresAt: number | null;
}

interface CacheEntry {
  version: Version | null;
  until: number;
}

export interface OperationCounts {
  /** Keys read (a bulk get of n keys counts n, as budget.ts does). */
  reads: number;
  /** get() calls, single or bulk. */
  getCalls: number;
  writes: number;
  failedWrites: number;
  deletes: number;
  lists: number;
}

export function emptyCounts(): OperationCounts {
  return { reads: 0, getCalls: 0, writes: 0, failedWrites: 0, deletes: 0, lists: 0 };
}

export interface StalenessStats {
  reads: number;
  stale: number;
  over30s: number;
  over60s: number;
  maxMs: number;
}

export type GetType = "text" | "json";
export interface GetOptions {
  type?: GetType;
  cacheTtl?: number;
}

/** KV's default edge cache when a read names none. */
const DEFAULT_CACHE_TTL_SECONDS = 60;

export interface SimulatedKvOptions {
  seed: number;
  clock: () => number;
  /** Longest propagation delay to another location (Cloudflare: "up to 60 s"). */
  maxPropagationMs: number;
}

export class SimulatedKv {
  private readonly history = new Map<string, Version[]>();
  private readonly caches = new Map<string, Map<string, CacheEntry>>();
  private readonly writeOutages: Array<{ from: number; until: number }> = [];
  /** Counts by owner: the host a key belongs to, or "cron" / "other". */
  readonly byOwner = new Map<string, OperationCounts>();
  /** Counts by caller: "ping", "cron", ... */
  readonly byCaller = new Map<string, OperationCounts>();
  readonly staleness: StalenessStats = { reads: 0, stale: 0, over30s: 0, over60s: 0, maxMs: 0 };
  private readonly options: SimulatedKvOptions;

  constructor(options: SimulatedKvOptions) {
    this.options = options;
  }

  /** The namespace as seen by one caller running in one location. */
  at(location: string, caller: string): SimulatedKvView {
    return new SimulatedKvView(this, location, caller);
  }

  /** Every write in [from, until) fails, as it does once the daily write quota is spent. */
  failWrites(from: number, until: number): void {
    this.writeOutages.push({ from, until });
  }

  now(): number {
    return this.options.clock();
  }

  writesFailAt(now: number): boolean {
    return this.writeOutages.some((outage) => now >= outage.from && now < outage.until);
  }

  /** The latest value as the central store holds it (for the simulator's own checks). */
  centralValue(key: string): string | null {
    const latest = this.history.get(key)?.at(-1);
    return latest === undefined ? null : this.live(latest, this.options.clock());
  }

  count(key: string, caller: string, update: (counts: OperationCounts) => void): void {
    for (const [map, name] of [
      [this.byOwner, ownerOf(key)],
      [this.byCaller, caller],
    ] as const) {
      let counts = map.get(name);
      if (counts === undefined) {
        counts = emptyCounts();
        map.set(name, counts);
      }
      update(counts);
    }
  }

  /** Propagation delay of one write to one location: mostly quick, a tail to the maximum. */
  private propagationMs(key: string, version: Version, location: string): number {
    if (location === version.origin) return 0;
    const draw = unitHash(this.options.seed, "kv-propagation", key, version.index, location);
    const max = this.options.maxPropagationMs;
    if (draw < 0.4) return (draw / 0.4) * 0.1 * max;
    if (draw < 0.8) return (0.1 + ((draw - 0.4) / 0.4) * 0.65) * max;
    return (0.75 + ((draw - 0.8) / 0.2) * 0.25) * max;
  }

  private live(version: Version, now: number): string | null {
    return version.expiresAt !== null && version.expiresAt <= now ? null : version.value;
  }

  read(key: string, location: string, cacheTtlSeconds: number | undefined): { value: string | null; staleMs: number } {
    const now = this.options.clock();
    let cache = this.caches.get(location);
    if (cache === undefined) {
      cache = new Map();
      this.caches.set(location, cache);
    }
    const versions = this.history.get(key) ?? [];
    const cached = cache.get(key);
    let version: Version | null;
    if (cached !== undefined && cached.until > now) {
      version = cached.version;
    } else {
      version = null;
      for (let i = versions.length - 1; i >= 0; i--) {
        const candidate = versions[i];
        if (candidate !== undefined && candidate.writtenAt + this.propagationMs(key, candidate, location) <= now) {
          version = candidate;
          break;
        }
      }
      cache.set(key, { version, until: now + (cacheTtlSeconds ?? DEFAULT_CACHE_TTL_SECONDS) * 1000 });
    }
    const staleMs = this.noteStaleness(versions, version, now);
    return { value: version === null ? null : this.live(version, now), staleMs };
  }

  /** How long ago the value returned stopped being the newest one written. */
  private noteStaleness(versions: readonly Version[], returned: Version | null, now: number): number {
    const stats = this.staleness;
    stats.reads++;
    const first = versions[0];
    const nextIndex = returned === null ? 0 : returned.index + 1 - (first?.index ?? 0);
    const superseding = versions[nextIndex];
    if (superseding === undefined || superseding.writtenAt > now) return 0;
    const staleMs = now - superseding.writtenAt;
    stats.stale++;
    if (staleMs > 30_000) stats.over30s++;
    if (staleMs > 60_000) stats.over60s++;
    stats.maxMs = Math.max(stats.maxMs, staleMs);
    return staleMs;
  }

  write(key: string, value: string | null, location: string, expirationTtlSeconds: number | undefined): void {
    const now = this.options.clock();
    let versions = this.history.get(key);
    if (versions === undefined) {
      versions = [];
      this.history.set(key, versions);
    }
    const index = (versions.at(-1)?.index ?? -1) + 1;
    versions.push({
      value,
      writtenAt: now,
      origin: location,
      index,
      expiresAt: expirationTtlSeconds === undefined ? null : now + expirationTtlSeconds * 1000,
    });
    // Old versions no location can still be shown (propagation and caches long over) go.
    while (versions.length > 8 && (versions[1]?.writtenAt ?? now) < now - 10 * 60_000) versions.shift();
    // Visible in its own location at once: drop what that location had cached.
    this.caches.get(location)?.delete(key);
  }

  listKeys(prefix: string): string[] {
    const now = this.options.clock();
    const names: string[] = [];
    for (const [key, versions] of this.history) {
      const latest = versions.at(-1);
      if (key.startsWith(prefix) && latest !== undefined && this.live(latest, now) !== null) names.push(key);
    }
    return names.sort();
  }
}

function ownerOf(key: string): string {
  const [kind, owner] = key.split(":", 2);
  if (kind === "cron") return "cron";
  if ((kind === "ping" || kind === "cmd" || kind === "op") && owner !== undefined) return owner;
  return "other";
}

/** What src/store.ts calls on a KVNamespace, answered by the simulated store from one location. */
export class SimulatedKvView {
  private readonly kv: SimulatedKv;
  readonly location: string;
  private readonly caller: string;
  /** Every read through this view with how stale it was: how a tick's decisions are explained. */
  readonly reads: Array<{ key: string; at: number; staleMs: number }> = [];

  constructor(kv: SimulatedKv, location: string, caller: string) {
    this.kv = kv;
    this.location = location;
    this.caller = caller;
  }

  get(key: string | string[], options?: GetOptions | GetType): Promise<unknown> {
    const type = typeof options === "string" ? options : (options?.type ?? "text");
    const cacheTtl = typeof options === "object" ? options.cacheTtl : undefined;
    const decode = (text: string | null): unknown => (text === null || type === "text" ? text : (JSON.parse(text) as unknown));
    const keys = Array.isArray(key) ? key : [key];
    if (keys.length === 0) return Promise.resolve(new Map());
    const first = keys[0] ?? "";
    this.kv.count(first, this.caller, (counts) => counts.getCalls++);
    const values = new Map<string, unknown>();
    for (const name of keys) {
      this.kv.count(name, this.caller, (counts) => counts.reads++);
      const read = this.kv.read(name, this.location, cacheTtl);
      this.reads.push({ key: name, at: this.now(), staleMs: read.staleMs });
      values.set(name, decode(read.value));
    }
    return Promise.resolve(Array.isArray(key) ? values : (values.get(first) ?? null));
  }

  put(key: string, value: string, options?: { expirationTtl?: number }): Promise<void> {
    if (this.kv.writesFailAt(this.now())) {
      this.kv.count(key, this.caller, (counts) => counts.failedWrites++);
      return Promise.reject(new Error("KV PUT failed: 429 Too Many Requests (daily write limit exceeded)"));
    }
    this.kv.count(key, this.caller, (counts) => counts.writes++);
    this.kv.write(key, value, this.location, options?.expirationTtl);
    return Promise.resolve();
  }

  delete(key: string): Promise<void> {
    if (this.kv.writesFailAt(this.now())) {
      this.kv.count(key, this.caller, (counts) => counts.failedWrites++);
      return Promise.reject(new Error("KV DELETE failed: 429 Too Many Requests (daily write limit exceeded)"));
    }
    this.kv.count(key, this.caller, (counts) => counts.deletes++);
    this.kv.write(key, null, this.location, undefined);
    return Promise.resolve();
  }

  list(options?: { prefix?: string }): Promise<{ keys: Array<{ name: string }>; list_complete: true; cacheStatus: null }> {
    this.kv.count("list:", this.caller, (counts) => counts.lists++);
    const keys = this.kv.listKeys(options?.prefix ?? "").map((name) => ({ name }));
    return Promise.resolve({ keys, list_complete: true, cacheStatus: null });
  }

  private now(): number {
    return this.kv.now();
  }
}
