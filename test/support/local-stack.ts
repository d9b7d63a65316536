// Every real piece of witness on one machine, wired the way production is: the Telegram
// stand-in, the Worker under wrangler dev with short demo thresholds, and per host a
// data folder, a sample pipeline, a chmod-600 secret and the bundled agent (optionally
// behind a TCP proxy that can be cut). `npm start`, `npm run demo` and the end-to-end
// tests all stand on this, so what the demo shows is what the tests prove.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CRON_PERIOD_SECONDS, defaultDarkAfterSeconds } from "../../src/config.ts";
import { deriveHostSecret } from "../../src/edge/signature.ts";
import { type AgentProcess, startNodeAgent, writeSecretFile } from "./agent-process.ts";
import { type FakeTelegram, type RecordedCall, startFakeTelegram } from "./fake-telegram.ts";
import { type LocalWorker, randomSecrets, startLocalWorker, startTicker, type Ticker } from "./local-worker.ts";
import { type Pipeline, startPipeline } from "./pipeline.ts";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

/**
 * Demo thresholds, the smallest parseConfig accepts: a ping every 10 s (the shortest
 * interval), dark after the default two missed pings and 15 s (35 s), stale after
 * interval + 10 s (20 s). The monitor judges each ping at once and wakes on its alarm at
 * the dark deadline, so a page follows its condition by about a second.
 */
export const DEMO_HOST_SETTINGS = {
  intervalSeconds: 10,
  maxAgeInSessionSeconds: 20,
  skewSeconds: 5,
} as const;

/** darkAfter for DEMO_HOST_SETTINGS: config.ts's default, 2 × 10 s + 15 s. */
export const DEMO_DARK_AFTER_SECONDS = defaultDarkAfterSeconds(DEMO_HOST_SETTINGS.intervalSeconds);

/**
 * The shortest agent push interval a demo host accepts: the monitor answers 429 to an
 * agent pinging faster than half its intervalSeconds (5 s), so a little more than that.
 */
export const DEMO_AGENT_INTERVAL_SECONDS = 6;

/**
 * For a host whose agent will go silent. Its last heartbeat then ages with the silence,
 * and the monitor cannot tell a silent host from a stalled pipeline until darkAfter has
 * passed, so with a max age under darkAfter (35 s) a dead agent pages STALE before DARK.
 * A max age above it makes silence page DARK alone, as the production defaults do
 * (900 s against 75 s).
 */
export const SILENCE_PAGES_DARK_SETTINGS = { maxAgeInSessionSeconds: 50 } as const;

/**
 * Local timing. cronPeriodSeconds is what the ticker really does (the monitor counts
 * three silent cron periods as "nobody could reach me"); without a ticker it is the
 * deployed minute. The confirmation counts are the defaults (two pings; a trip at once).
 */
export function demoTiming(cronPeriodSeconds: number): Record<string, unknown> {
  return {
    replayWindowSeconds: 300,
    // The shortest republish period: /v1/health reads the snapshot.
    publishSeconds: 60,
    cronPeriodSeconds,
  };
}

/** The cron period to declare for a ticker pausing `tickEveryMs` between ticks (null: none). */
export function cronPeriodFor(tickEveryMs: number | null): number {
  return tickEveryMs === null ? CRON_PERIOD_SECONDS : Math.max(5, Math.ceil(tickEveryMs / 1000) + 1);
}

/** A made-up chat id: the stand-in accepts any. */
export const DEMO_CHAT_ID = "100200300";
/**
 * The made-up operator's Telegram user id: the one allowed to pause from the (group) alert
 * chat, since without telegram.allowedUserIds only a private chat with the bot may.
 */
export const DEMO_OPERATOR_USER_ID = 7;

export function localConfig(
  telegramUrl: string,
  hosts: ReadonlyArray<{ id: string; settings?: Record<string, unknown> }>,
  cronPeriodSeconds: number = CRON_PERIOD_SECONDS,
): Record<string, unknown> {
  return {
    // The paid plan's budget: a 10 s demo interval would not fit the free plan's writes.
    plan: "paid",
    telegram: { chatId: DEMO_CHAT_ID, allowedUserIds: [String(DEMO_OPERATOR_USER_ID)], baseUrl: telegramUrl },
    timing: demoTiming(cronPeriodSeconds),
    alerts: { repeatMinutes: 30, timezone: "UTC", digestAt: null },
    defaults: DEMO_HOST_SETTINGS,
    hosts: hosts.map((host) => ({ id: host.id, ...host.settings })),
  };
}

export interface StackHostOptions {
  id: string;
  /** This host's entry in WITNESS_CONFIG beyond its id (defaults: DEMO_HOST_SETTINGS). */
  settings?: Record<string, unknown>;
  /** Where heartbeat.json and circuit.json live. */
  dataDir: string;
  /** Put a cuttable TCP proxy between this host's agent and the Worker. */
  viaProxy?: boolean;
  /** Start the Node agent with the stack (default true). */
  agent?: boolean;
  /**
   * Run the agent with --allow-remote-pause (default false). The Worker hands it
   * commands only if `settings` also has allowRemotePause: true.
   */
  agentAllowsRemotePause?: boolean;
  /** The pipeline pauses while this file exists. */
  pipelineStopFile?: string;
}

export interface LocalStackOptions {
  root: string;
  /** Generated config, KV state, secrets and logs. */
  dir: string;
  hosts: readonly StackHostOptions[];
  agentBundle: string;
  /** Agent push interval; shorter than the configured 10 s so changes reach the Worker quickly. */
  agentIntervalSeconds: number;
  pipelineEveryMs: number;
  /**
   * The sped-up cron's pause between ticks; null: the ticker is off, so only the
   * monitor's own alarm judges (the caller may still run worker.tick() itself).
   */
  tickEveryMs: number | null;
  /** false: the monitor cannot arm its alarm, so only cron ticks judge (LocalWorkerOptions.alarms). */
  alarms?: boolean;
  /** Serve the deploy build instead of src/ (see LocalWorkerOptions.prebuilt). */
  prebuiltWorker?: boolean;
  onTelegram?: (call: RecordedCall) => void;
  onAgentLine?: (hostId: string, line: string) => void;
  onWorkerLog?: (line: string) => void;
  onTickError?: (error: unknown) => void;
}

export interface StackHost {
  id: string;
  dataDir: string;
  heartbeatPath: string;
  circuitPath: string;
  secretFile: string;
  /** The URL the agent pushes to: the Worker's, or the proxy's. */
  agentUrl: string;
  proxy: TcpProxy | null;
  pipeline: Pipeline;
  readonly agent: AgentProcess | null;
  /** Starts the agent if it is not running; returns the running one. */
  startAgent(): AgentProcess;
  /** "stop" asks it to exit (SIGTERM); "kill" is a crash (SIGKILL). */
  stopAgent(how: "stop" | "kill"): Promise<void>;
}

export interface LocalStack {
  telegram: FakeTelegram;
  worker: LocalWorker;
  /** With tickEveryMs null, one that never ticks (count stays 0). */
  ticker: Ticker;
  config: Record<string, unknown>;
  host(id: string): StackHost;
  hosts: StackHost[];
  /** The HTML texts of every message the Worker sent, in order. */
  messages(): string[];
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a value other than undefined; throws after `timeoutMs` saying `what`. */
export async function waitUntil<T>(what: string, timeoutMs: number, check: () => T | undefined | Promise<T | undefined>, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const stoppers: Array<() => Promise<void> | void> = [];
  const stopAll = async () => {
    for (const stop of stoppers.reverse()) {
      try {
        await stop();
      } catch {
        // Keep stopping the rest.
      }
    }
    stoppers.length = 0;
  };

  try {
    const telegram = await startFakeTelegram(options.onTelegram ? { onCall: options.onTelegram } : {});
    stoppers.push(() => telegram.close());

    const secrets = randomSecrets();
    const config = localConfig(telegram.url, options.hosts, cronPeriodFor(options.tickEveryMs));
    const worker = await startLocalWorker({
      root: options.root,
      dir: join(options.dir, "worker"),
      config,
      secrets,
      prebuilt: options.prebuiltWorker === true,
      alarms: options.alarms !== false,
      ...(options.onWorkerLog ? { onLog: options.onWorkerLog } : {}),
    });
    stoppers.push(() => worker.stop());
    // One cron run before any agent starts, as the deployed cron runs within a minute of
    // a deploy: it says "watching" and stores the monitor's start. (Until a run stores
    // it, an object evicted between pings forgets when it began listening and restarts
    // the dark grace: wrangler dev evicts an idle object after about 10 s.)
    await worker.tick();

    const secretDir = join(options.dir, "secrets");
    rmSync(secretDir, { recursive: true, force: true });
    mkdirSync(secretDir, { recursive: true, mode: 0o700 });

    const hosts: StackHost[] = [];
    for (const hostOptions of options.hosts) {
      mkdirSync(hostOptions.dataDir, { recursive: true });
      const secretFile = join(secretDir, `${hostOptions.id}.secret`);
      writeSecretFile(secretFile, await deriveHostSecret(secrets.WITNESS_MASTER_KEY, hostOptions.id));
      const proxy = hostOptions.viaProxy === true ? await startTcpProxy(worker.port) : null;
      if (proxy !== null) stoppers.push(() => proxy.close());
      const heartbeatPath = join(hostOptions.dataDir, "heartbeat.json");
      const pipeline = startPipeline({
        heartbeatPath,
        everyMs: options.pipelineEveryMs,
        ...(hostOptions.pipelineStopFile === undefined ? {} : { stopFile: hostOptions.pipelineStopFile }),
      });
      stoppers.push(() => pipeline.stop());

      let agent: AgentProcess | null = null;
      const host: StackHost = {
        id: hostOptions.id,
        dataDir: hostOptions.dataDir,
        heartbeatPath,
        circuitPath: join(hostOptions.dataDir, "circuit.json"),
        secretFile,
        agentUrl: proxy?.url ?? worker.url,
        proxy,
        pipeline,
        get agent() {
          return agent !== null && agent.running ? agent : null;
        },
        startAgent() {
          if (agent !== null && agent.running) return agent;
          const started = startNodeAgent({
            bundle: options.agentBundle,
            cwd: options.root,
            url: host.agentUrl,
            hostId: host.id,
            secretFile,
            heartbeatPath,
            circuitPath: host.circuitPath,
            intervalSeconds: options.agentIntervalSeconds,
            allowRemotePause: hostOptions.agentAllowsRemotePause === true,
            ...(options.onAgentLine ? { onLine: (line: string) => options.onAgentLine?.(host.id, line) } : {}),
          });
          agent = started;
          return started;
        },
        async stopAgent(how) {
          const running = agent;
          if (running === null) return;
          await (how === "kill" ? running.kill() : running.stop());
        },
      };
      stoppers.push(() => host.stopAgent("stop"));
      hosts.push(host);
    }

    const ticker: Ticker =
      options.tickEveryMs === null
        ? { count: 0, stop: () => Promise.resolve() }
        : startTicker(worker, options.tickEveryMs, options.onTickError ?? (() => undefined));
    // Stopped before the Worker, so no tick is cut off half way.
    stoppers.push(() => ticker.stop());
    for (const [index, host] of hosts.entries()) if (options.hosts[index]?.agent !== false) host.startAgent();

    return {
      telegram,
      worker,
      ticker,
      config,
      hosts,
      host(id) {
        const found = hosts.find((host) => host.id === id);
        if (found === undefined) throw new Error(`no host ${id} in this stack`);
        return found;
      },
      messages: () => telegram.messages(secrets.TELEGRAM_BOT_TOKEN),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
