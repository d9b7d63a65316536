import { describe, expect, it } from "vitest";
import { MonitorHarness } from "./monitor-harness.ts";
import { makePingBody, T0 } from "./helpers.ts";

const SECOND = 1000;

describe("a host that stops pinging", () => {
  it("is paged dark once at darkAfter, then recovers saying the agent restarted", async () => {
    const monitor = new MonitorHarness({ hosts: [{ id: "alpha", intervalSeconds: 30 }] });
    expect((await monitor.ping("alpha", makePingBody({ sentAt: T0 }))).status).toBe(200);
    await monitor.run(T0 + SECOND, "cron");
    expect(await monitor.messages()).toEqual([expect.stringContaining("is watching 1 host")]);
    // darkAfter defaults to two missed pings and 15 s: 75 s. The alarm points there.
    expect(monitor.armedAt).toBe(T0 + 75 * SECOND + 1 + 1000);
    await monitor.alarmsUntil(T0 + 10 * 60 * SECOND);
    const dark = (await monitor.messages()).filter((text) => text.includes("DARK"));
    expect(dark).toEqual([expect.stringContaining("<b>alpha</b> DARK: no ping for 76 s (dark after 75 s)")]);

    const back = makePingBody({ seq: 1, sentAt: T0 + 11 * 60 * SECOND, agent: { version: "0.1.0", startedAt: T0 + 10 * 60 * SECOND, bootId: "boot-1" } });
    expect((await monitor.ping("alpha", back)).status).toBe(200);
    await monitor.alarmsUntil(T0 + 11 * 60 * SECOND + 5 * SECOND);
    expect((await monitor.messages()).at(-1)).toContain("<b>alpha</b> DARK over after 11 min: pinging again: agent restart");
  });
});
