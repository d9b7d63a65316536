// The agent's loop (agent/src/run.ts) with injected fetch, clock and sleep: when it asks
// for a full garbage collection (node --expose-gc's gc, which frees what each https push
// leaves behind), and that it runs the same without one.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../agent/src/config.ts";
import { COLLECT_GARBAGE_EVERY_CYCLES, run, type RunDeps } from "../../agent/src/run.ts";
import { removeDir } from "./agent-harness.ts";

describe("the loop's garbage collections", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "witness-run-"));
  });
  afterAll(() => removeDir(dir));

  /** Runs the loop for `cycles` accepted pushes; returns the push number before each collection. */
  async function loop(cycles: number, withCollector: boolean): Promise<{ pushes: number; collectedAfter: number[]; code: number }> {
    const config: Config = {
      pingUrl: "https://witness.example/v1/ping/trader-1",
      hostId: "trader-1",
      secret: "0123456789abcdef0123456789abcdef",
      secretSource: "test",
      heartbeatPath: join(dir, "heartbeat.json"),
      circuitPath: join(dir, "circuit.json"),
      intervalMs: 60_000,
      requestTimeoutMs: 10_000,
      allowRemotePause: false,
      mode: "loop",
      verbose: false,
    };
    const stop = new AbortController();
    let now = 1_700_000_000_000;
    let pushes = 0;
    const collectedAfter: number[] = [];
    const deps: RunDeps = {
      now: () => now,
      random: () => 0.5,
      fetch: () => {
        pushes += 1;
        return Promise.resolve({ status: 200, headers: { get: () => null }, text: () => Promise.resolve(JSON.stringify({ ok: true, serverTime: now, commands: [] })) });
      },
      sleep: (ms) => {
        now += ms;
        if (pushes >= cycles) stop.abort();
        return Promise.resolve();
      },
      log: { info: () => {}, warn: () => {}, error: () => {} },
      bootId: "boot-1",
      startedAt: now,
      print: () => {},
      ...(withCollector ? { collectGarbage: () => void collectedAfter.push(pushes) } : {}),
    };
    const code = await run(config, deps, stop.signal);
    return { pushes, collectedAfter, code };
  }

  it(`after the first push, then after every ${COLLECT_GARBAGE_EVERY_CYCLES}th: not after every push (a full collection costs more CPU than the push)`, async () => {
    const result = await loop(25, true);
    expect(result.pushes).toBe(25);
    expect(result.collectedAfter).toEqual([1, 1 + COLLECT_GARBAGE_EVERY_CYCLES, 1 + 2 * COLLECT_GARBAGE_EVERY_CYCLES]);
  });

  it("without a collector (node started without --expose-gc) the loop pushes the same", async () => {
    const result = await loop(25, false);
    expect(result).toEqual({ pushes: 25, collectedAfter: [], code: 0 });
  });
});
