// The end-to-end harness's own pieces, fast: the local config it generates, how a message
// reads on the phone, which lines belong to which host, the pipeline stand-in's rules,
// and the TCP proxy's cut.
// The e2e suite trusts these; if one is wrong, its assertions would be too.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { parseConfig } from "../../src/config.ts";
import {
  cronPeriodFor,
  DEMO_AGENT_INTERVAL_SECONDS,
  DEMO_DARK_AFTER_SECONDS,
  localConfig,
  SILENCE_PAGES_DARK_SETTINGS,
} from "../support/local-stack.ts";
import { eventLines, phoneText } from "../support/phone.ts";
import { beat } from "../support/pipeline.ts";
import { startTcpProxy } from "../support/tcp-proxy.ts";

describe("generated local config", () => {
  test("parses as the Worker parses it (no retired timing keys), with the thresholds the suite and the demo narrate", () => {
    const hosts = [{ id: "a" }, { id: "b", settings: SILENCE_PAGES_DARK_SETTINGS }];
    const config = parseConfig(localConfig("http://127.0.0.1:9", hosts, cronPeriodFor(4000)));
    expect(config.hosts.map((host) => [host.id, host.intervalSeconds, host.darkAfterSeconds, host.maxAgeInSessionSeconds])).toEqual([
      ["a", 10, DEMO_DARK_AFTER_SECONDS, 20],
      ["b", 10, DEMO_DARK_AFTER_SECONDS, 50],
    ]);
    expect(DEMO_DARK_AFTER_SECONDS).toBe(35);
    // Silence pages DARK alone only if the stale limit is past darkAfter.
    expect(SILENCE_PAGES_DARK_SETTINGS.maxAgeInSessionSeconds).toBeGreaterThan(DEMO_DARK_AFTER_SECONDS);
    expect(config.timing).toMatchObject({ cronPeriodSeconds: 5, confirmPings: { failing: 2, heartbeatUnreadable: 2, circuitUnreadable: 2, skewed: 2 } });
    // Without a ticker the monitor is told the deployed minute (it counts 3 silent periods as unreachable).
    expect(parseConfig(localConfig("http://127.0.0.1:9", hosts, cronPeriodFor(null))).timing.cronPeriodSeconds).toBe(60);
    // The monitor answers 429 to an agent pinging faster than half its interval.
    expect(DEMO_AGENT_INTERVAL_SECONDS * 2).toBeGreaterThan(10);
  });
});

describe("phone rendering", () => {
  test("tags go, entities decode, bold is plain unless a terminal asks for it", () => {
    const html = '🔴 <b>trader-1</b> FAILING: status &quot;a &lt;b&gt; &amp; c&quot;\nrun <code>npm run check-config</code>';
    expect(phoneText(html)).toBe('🔴 trader-1 FAILING: status "a <b> & c"\nrun npm run check-config');
    expect(phoneText("<b>x</b>", { ansi: true })).toBe("\u001b[1mx\u001b[22m");
  });

  test("event lines are picked per host; headings and the watching notice are not events", () => {
    const messages = [
      "👋 <b>witness</b> is watching 2 host(s):\n• <b>a</b>: ping every 10 s, dark after 2 min\n• <b>b</b>: ping every 10 s",
      "<b>witness</b>: 2 problems\n🔴 <b>a</b> DARK: no ping for 101 s\n🔴 <b>b</b> STALE: heartbeat 80 s old",
      "<b>witness</b>: recovered\n✅ <b>a</b> DARK over after 2 min: pinging again: agent restart",
    ];
    expect(eventLines(messages, "a").map((line) => line.text)).toEqual([
      "🔴 a DARK: no ping for 101 s",
      "✅ a DARK over after 2 min: pinging again: agent restart",
    ]);
    expect(eventLines(messages).map((line) => line.hostId)).toEqual(["a", "b", "a"]);
  });
});

describe("pipeline stand-in", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("creates a missing heartbeat, refreshes `at` keeping status and extras, leaves a corrupt file alone", () => {
    dir = mkdtempSync(join(tmpdir(), "witness-pipeline-"));
    const path = join(dir, "heartbeat.json");
    expect(beat(path, 1_000_000)).toBe("created");
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({ status: "ok", at: 1000, iso: "1970-01-01T00:16:40Z" });

    writeFileSync(path, JSON.stringify({ at: 1, status: "error", orders: 3 }));
    expect(beat(path, 2_000_000)).toBe("written");
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({ status: "error", orders: 3, at: 2000, iso: "1970-01-01T00:33:20Z" });

    writeFileSync(path, '{"at": 17');
    expect(beat(path, 3_000_000)).toBe("left-alone");
    expect(readFileSync(path, "utf8")).toBe('{"at": 17');
    writeFileSync(path, "");
    expect(beat(path, 3_000_000)).toBe("left-alone");
    expect(readFileSync(path, "utf8")).toBe("");
  });
});

describe("TCP proxy", () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  test("forwards, fails every request while cut (kept-alive connections included), forwards again once restored", async () => {
    const backend = createServer((_request, response) => response.end("pong"));
    server = backend;
    await new Promise<void>((resolve) => backend.listen(0, "127.0.0.1", resolve));
    const address = backend.address();
    const proxy = await startTcpProxy(typeof address === "object" && address !== null ? address.port : 0);
    try {
      const get = () => fetch(`${proxy.url}/`, { signal: AbortSignal.timeout(1000) }).then((response) => response.text());
      expect(await get()).toBe("pong");
      proxy.cut("reset");
      await expect(get()).rejects.toThrow();
      proxy.cut("blackhole");
      await expect(get()).rejects.toThrow(); // times out: accepted, never answered
      proxy.restore();
      expect(await get()).toBe("pong");
    } finally {
      await proxy.close();
    }
  });
});
