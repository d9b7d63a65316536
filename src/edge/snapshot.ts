// Reading the snapshot the monitor publishes to KV: health, the public page and badges
// answer from it, so they cost one KV read and no Durable Object request.
import type { Config } from "../config.ts";
import { errorMessage } from "../format.ts";
import { Snapshot } from "../monitor/state.ts";
import { SNAPSHOT_KEY } from "../monitor/storage.ts";
import { RequestError } from "./http.ts";

/** The last snapshot, or null when none was published (or it does not parse). A KV failure is a 503. */
export async function readSnapshot(env: Env): Promise<Snapshot | null> {
  try {
    const text = await env.WITNESS_KV.get(SNAPSHOT_KEY);
    const parsed = text === null ? null : Snapshot.safeParse(JSON.parse(text));
    return parsed?.success ? parsed.data : null;
  } catch (error) {
    throw new RequestError(503, `KV unavailable: ${errorMessage(error)}`);
  }
}

/** A snapshot older than this says nothing about now: the monitor republishes every publishSeconds; allow two cron periods and KV's lag more. */
export function snapshotLateAfterMs(config: Config): number {
  return (config.timing.publishSeconds + 2 * config.timing.cronPeriodSeconds + 60) * 1000;
}
