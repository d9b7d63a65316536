// When the ping route spends a KV write. Writes are the scarce resource (1,000 a day on
// the free plan, for the whole account), so a ping is written only when the judge would
// otherwise see something untrue soon; everything else is a free read.
import type { Config, HostConfig } from "./config.ts";
import { clockSkewSeconds, heartbeatAgeSeconds, meaningfulFingerprint, type PingRecord, skewClearSeconds } from "./records.ts";

export type WriteReason = "first" | "changed" | "refresh" | "heartbeat-horizon";

/**
 * Why `next` must be written over `stored`, or null when the stored record still tells
 * the truth for long enough:
 * - changed: something the judge acts on differs (status, files, circuit, boot, agent, skew);
 * - refresh: the stored "last seen" is a refresh interval old (darkAfter budgets for this);
 * - heartbeat-horizon: the heartbeat advanced, but the stored record's older heartbeat
 *   would look stale before the next ping's write could reach the judge.
 */
export function writeReason(
  stored: PingRecord | null,
  next: PingRecord,
  host: HostConfig,
  timing: Config["timing"],
): WriteReason | null {
  if (stored === null) return "first";
  if (meaningfulFingerprint(stored) !== meaningfulFingerprint(next) || skewCrossed(stored, next, host.skewSeconds)) return "changed";
  if (next.receivedAt - stored.receivedAt >= timing.refreshSeconds * 1000) return "refresh";

  const tightestMaxAge = Math.min(host.maxAgeInSessionSeconds, host.maxAgeOutOfSessionSeconds ?? Infinity);
  if (stored.heartbeat.state === "ok" && next.heartbeat.state === "ok" && next.heartbeat.at > stored.heartbeat.at) {
    const judgedAgeNow = heartbeatAgeSeconds(stored, next.receivedAt) ?? 0;
    const notice = host.intervalSeconds + timing.kvLagSeconds + timing.cronPeriodSeconds;
    if (judgedAgeNow + notice >= tightestMaxAge) return "heartbeat-horizon";
  }
  return null;
}

/**
 * Whether the skew moved decisively across its limit. Between the clear line and the
 * limit is a band where latency jitter alone moves a clock back and forth; a move into
 * or out of it waits for the next refresh (the judge applies the same hysteresis).
 */
function skewCrossed(stored: PingRecord, next: PingRecord, limitSeconds: number): boolean {
  const clear = skewClearSeconds(limitSeconds);
  const zone = (record: PingRecord) => {
    const skew = Math.abs(clockSkewSeconds(record));
    return skew <= clear ? "clear" : skew <= limitSeconds ? "band" : "over";
  };
  const before = zone(stored);
  const after = zone(next);
  const farOver = Math.abs(clockSkewSeconds(next)) > limitSeconds + (limitSeconds - clear);
  if (before === "clear") return after === "over";
  if (before === "over") return after === "clear";
  return after === "clear" || farOver;
}

export type ReplayVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Rejects a ping that is not newer than the stored one from the same agent process.
 * Pings accepted but not written are not remembered (that would cost a write each), so
 * a replay of one inside the timestamp window can at worst delay a "dark" page by that
 * window, never hide an outage longer.
 */
export function replayVerdict(stored: PingRecord | null, next: PingRecord): ReplayVerdict {
  if (stored === null) return { ok: true };
  const sameAgent = stored.agent.bootId === next.agent.bootId && stored.agent.startedAt === next.agent.startedAt;
  if (sameAgent && next.seq <= stored.seq) {
    return { ok: false, reason: `replayed ping: sequence ${next.seq} is not after ${stored.seq}` };
  }
  if (!sameAgent && next.agent.startedAt < stored.agent.startedAt && next.agent.bootId === stored.agent.bootId) {
    return { ok: false, reason: "replayed ping: it comes from an agent process older than the one last seen" };
  }
  return { ok: true };
}
