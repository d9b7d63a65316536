// The cron may read its own state from a stale KV edge cache. Before sending, it waits
// (timing.settleSeconds) and reads again, so such a read cannot repeat a page.
import { describe, expect, it } from "vitest";
import { runTick } from "../../src/scheduled.ts";
import { makePingBody, MINUTE, ping, sentMessages, T0, testEnv, tick } from "./helpers.ts";

/** A KV whose first read of `key` returns `staleValue`, as a lagging edge cache would. */
function staleOnce(kv: KVNamespace, key: string, staleValue: string): KVNamespace {
  let served = false;
  return new Proxy(kv, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (property !== "get") return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      return (name: string | string[], options?: unknown) => {
        if (name === key && !served) {
          served = true;
          return Promise.resolve(staleValue);
        }
        return (target.get as (n: string | string[], o?: unknown) => Promise<unknown>).call(target, name, options);
      };
    },
  });
}

async function darkHostPagedOnce(settleSeconds: number): Promise<string[]> {
  const env = testEnv({ hosts: [{ id: "alpha" }], timing: { settleSeconds } });
  await ping(env, "alpha", makePingBody());
  await tick(env, T0 + 10_000);
  for (let minute = 1; minute <= 4; minute++) await tick(env, T0 + minute * MINUTE + 10_000);
  // Dark is observed but not yet confirmed: the state just before the page goes out.
  const beforePage = (await env.WITNESS_KV.get("cron:state")) ?? "";
  await tick(env, T0 + 5 * MINUTE + 10_000);
  expect((await sentMessages(env)).filter((text) => text.includes("DARK"))).toHaveLength(1);

  // The next tick runs where the edge cache still serves the state from before the page.
  const lagging = { ...env, WITNESS_KV: staleOnce(env.WITNESS_KV, "cron:state", beforePage) };
  await runTick(lagging, { now: () => T0 + 6 * MINUTE + 10_000, fetch: (input, init) => fetch(input, init), sleep: async () => {} });
  return (await sentMessages(env)).filter((text) => text.includes("DARK"));
}

describe("a stale read of the cron's own state", () => {
  it("does not repeat a page when the cron settles and reads again", async () => {
    expect(await darkHostPagedOnce(31)).toHaveLength(1);
  });

  it("would repeat it without the settle step (the guard is what prevents it)", async () => {
    expect(await darkHostPagedOnce(0)).toHaveLength(2);
  });
});
