import { describe, expect, it } from "vitest";
import { makePingBody, MINUTE, ping, sentMessages, T0, testEnv, tick } from "./helpers.ts";

describe("a host that stops pinging", () => {
  it("is paged dark once, then recovers saying the agent restarted", async () => {
    const env = testEnv({ hosts: [{ id: "alpha" }] });
    expect((await ping(env, "alpha", makePingBody())).status).toBe(200);
    await tick(env, T0 + 10_000);
    expect(await sentMessages(env)).toEqual([expect.stringContaining("is watching 1 host")]);
    for (let minute = 1; minute <= 10; minute++) await tick(env, T0 + minute * MINUTE + 10_000);
    let messages = await sentMessages(env);
    expect(messages.filter((text) => text.includes("DARK"))).toEqual([
      expect.stringContaining("<b>alpha</b> DARK: no ping for 5 min (dark after 4 min)"),
    ]);

    const back = makePingBody({ seq: 1, sentAt: T0 + 11 * MINUTE, agent: { version: "0.1.0", startedAt: T0 + 10 * MINUTE, bootId: "boot-1" } });
    expect((await ping(env, "alpha", back)).status).toBe(200);
    await tick(env, T0 + 11 * MINUTE + 10_000);
    messages = await sentMessages(env);
    expect(messages.at(-1)).toContain("<b>alpha</b> DARK over after 11 min: pinging again: agent restart");
  });
});
