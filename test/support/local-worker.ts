// The real Worker under `wrangler dev --local`, with a generated config and secrets so
// the user's wrangler.toml is never touched: a wrangler.json and a .dev.vars (mode 600)
// in a directory of the caller's choosing, KV and the monitor's SQLite storage persisted
// to a fresh folder inside it. wrangler dev runs the monitor object and its alarms in
// real time; cron ticks (the safety net) go through wrangler's scheduled endpoint, one
// at a time, like Cloudflare's cron.
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { z } from "zod";
import { type ManagedChild, spawnGroup } from "./child-process.ts";

export interface WorkerSecrets {
  WITNESS_MASTER_KEY: string;
  TELEGRAM_BOT_TOKEN: string;
  STATUS_TOKEN: string;
  TELEGRAM_WEBHOOK_SECRET: string;
}

/** Fresh secrets for one run; nothing is ever reused or stored in the repository. */
export function randomSecrets(): WorkerSecrets {
  const hex = (bytes: number) => randomBytes(bytes).toString("hex");
  return {
    WITNESS_MASTER_KEY: hex(32),
    TELEGRAM_BOT_TOKEN: `${100000 + randomBytes(3).readUIntBE(0, 3)}:${hex(16)}`,
    STATUS_TOKEN: hex(24),
    TELEGRAM_WEBHOOK_SECRET: hex(24),
  };
}

/** A port nobody listens on right now, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

/** The subset of GET /v1/status the harness reads. */
export const StatusBody = z.object({
  ok: z.literal(true),
  now: z.number(),
  lastCronAt: z.number().nullable(),
  alarmAt: z.number().nullable(),
  undelivered: z.array(z.object({ id: z.number(), attempts: z.number(), lastError: z.string().optional() })),
  hosts: z.array(
    z.object({
      id: z.string(),
      conditions: z.record(z.string(), z.unknown()),
      lastPingAt: z.number().nullable(),
      agent: z.object({ startedAt: z.number(), bootId: z.string(), kind: z.string().optional() }).nullable(),
      heartbeat: z.looseObject({ state: z.string() }).nullable(),
      circuit: z.looseObject({ state: z.string() }).nullable(),
    }),
  ),
});
export type StatusBody = z.infer<typeof StatusBody>;

/** The Worker's answer to one webhook delivery. */
export interface WebhookAnswer {
  status: number;
  body: unknown;
}

/** The header Telegram carries the webhook secret in (src/phone/webhook.ts WEBHOOK_SECRET_HEADER). */
export const WEBHOOK_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token";

export interface LocalWorkerOptions {
  /** The repository root (where src/index.ts and node_modules live). */
  root: string;
  /** Where the generated config, .dev.vars, KV and monitor state go; created if absent. */
  dir: string;
  /** The WITNESS_CONFIG value. */
  config: unknown;
  secrets: WorkerSecrets;
  /** Every line wrangler and the Worker print. */
  onLog?: (line: string) => void;
  readyTimeoutMs?: number;
  /**
   * Build the Worker once as `wrangler deploy --dry-run` would and serve that bundle,
   * instead of serving src/ and reloading on every edit. The tests use this: it checks
   * the deploy build, and someone editing src/ mid-run cannot restart the Worker.
   */
  prebuilt?: boolean;
  /**
   * false: the monitor can never arm its alarm (see NO_ALARM_ENTRY), so only cron ticks
   * judge. For the tests of the cron path; default true, the Worker as deployed.
   */
  alarms?: boolean;
}

export interface LocalWorker {
  url: string;
  port: number;
  secrets: WorkerSecrets;
  /** Runs one cron tick and resolves when the scheduled handler finished. Ticks never overlap. */
  tick(): Promise<void>;
  status(): Promise<StatusBody>;
  /**
   * POSTs an update to /telegram/webhook as Telegram delivers it: JSON, with the
   * generated TELEGRAM_WEBHOOK_SECRET in its header (or `secret`; null sends none).
   */
  sendTelegramUpdate(update: unknown, options?: { secret?: string | null }): Promise<WebhookAnswer>;
  /** The last lines wrangler printed, for error messages. */
  recentLog(): string[];
  stop(): Promise<void>;
}

/** compatibility_date (and flags) from the user's wrangler.toml, so the demo runs what deploy runs. */
function compatibility(root: string): { compatibility_date: string; compatibility_flags?: string[] } {
  let toml = "";
  try {
    toml = readFileSync(join(root, "wrangler.toml"), "utf8");
  } catch {
    // Fall through to the default below.
  }
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)?.[1] ?? "2026-11-01";
  const flagsText = /^compatibility_flags\s*=\s*(\[[^\]]*\])/m.exec(toml)?.[1];
  const flags = flagsText === undefined ? undefined : z.array(z.string()).safeParse(JSON.parse(flagsText));
  return { compatibility_date: date, ...(flags?.success === true ? { compatibility_flags: flags.data } : {}) };
}

/**
 * TEST ONLY, never deployed: an entry module that serves the Worker of src/index.ts
 * unchanged except that its monitor's setAlarm does nothing, as if every alarm were
 * lost. It is written into the run's temp folder and used only with `alarms: false`,
 * so nothing in src/ knows about it; the cron's alarm repair then "repairs" in vain
 * each tick, and only the cron judges (the bound the safety net must keep).
 */
function noAlarmEntry(root: string): string {
  const index = JSON.stringify(join(root, "src", "index.ts"));
  return `// Generated by test/support/local-worker.ts for a test of the cron path. Not deployed.
import worker, { Monitor as DeployedMonitor } from ${index};

export class Monitor extends DeployedMonitor {
  constructor(ctx, env) {
    // The monitor arms through ctx.storage.setAlarm; here that does nothing.
    Object.defineProperty(ctx.storage, "setAlarm", { value: () => Promise.resolve(), configurable: true });
    super(ctx, env);
  }
}

export default worker;
`;
}

function writeGeneratedConfig(options: LocalWorkerOptions): string {
  mkdirSync(options.dir, { recursive: true });
  const configPath = join(options.dir, "wrangler.json");
  let main = join(options.root, "src", "index.ts");
  if (options.alarms === false) {
    // Named index.js, as the deploy build names its output after the entry (see prebuilt).
    mkdirSync(join(options.dir, "no-alarm-entry"), { recursive: true });
    main = join(options.dir, "no-alarm-entry", "index.js");
    writeFileSync(main, noAlarmEntry(options.root));
  }
  const wranglerConfig = {
    name: "witness-local",
    main,
    ...compatibility(options.root),
    // As in wrangler.toml: the one SQLite-backed monitor object.
    durable_objects: { bindings: [{ name: "MONITOR", class_name: "Monitor" }] },
    migrations: [{ tag: "v1", new_sqlite_classes: ["Monitor"] }],
    kv_namespaces: [{ binding: "WITNESS_KV", id: "witness-local" }],
    triggers: { crons: ["* * * * *"] },
    vars: { WITNESS_CONFIG: options.config },
  };
  writeFileSync(configPath, `${JSON.stringify(wranglerConfig, null, 2)}\n`);
  // wrangler reads .dev.vars from beside the config file.
  const devVars = Object.entries(options.secrets)
    .map(([name, value]) => `${name}=${value}`)
    .join("\n");
  writeFileSync(join(options.dir, ".dev.vars"), `${devVars}\n`, { mode: 0o600 });
  return configPath;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The environment for wrangler: ours, minus anything named like one of the Worker's
 * secrets (vitest.config.mts exports its own set), so .dev.vars is the only source.
 */
function wranglerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" };
  for (const name of ["WITNESS_MASTER_KEY", "TELEGRAM_BOT_TOKEN", "STATUS_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "WITNESS_CONFIG"]) delete env[name];
  return env;
}

/** Runs wrangler to completion; rejects with its output when it fails. */
function runWrangler(root: string, args: readonly string[], cwd: string): Promise<void> {
  const output: string[] = [];
  const child = spawnGroup(process.execPath, [join(root, "node_modules", "wrangler", "bin", "wrangler.js"), ...args], {
    cwd,
    env: wranglerEnv(),
    onLine: (line) => output.push(line),
  });
  return child.exited.then(async (code) => {
    await child.stop(0);
    if (code !== 0) throw new Error(`wrangler ${args.join(" ")} failed (exit ${String(code)}):\n${output.slice(-25).join("\n")}`);
  });
}

export async function startLocalWorker(options: LocalWorkerOptions): Promise<LocalWorker> {
  const configPath = writeGeneratedConfig(options);
  const persistTo = join(options.dir, "state");
  // Every run starts empty (KV and the monitor's storage): an earlier run's hosts and agents
  // were signed with another key.
  rmSync(persistTo, { recursive: true, force: true });
  const [port, inspectorPort] = await Promise.all([freePort(), freePort()]);

  const log: string[] = [];
  let readyResolve: (() => void) | undefined;
  const ready = new Promise<void>((resolve) => {
    readyResolve = resolve;
  });
  const wrangler = join(options.root, "node_modules", "wrangler", "bin", "wrangler.js");
  const bundleArgs: string[] = [];
  if (options.prebuilt === true) {
    const outdir = join(options.dir, "bundle");
    rmSync(outdir, { recursive: true, force: true });
    await runWrangler(options.root, ["deploy", "--dry-run", "--config", configPath, "--outdir", outdir], options.dir);
    bundleArgs.push(join(outdir, "index.js"), "--no-bundle");
  }
  // Colour codes would only get in the way of the log and of the ready line below.
  const plain = (line: string) => line.replace(/\u001b\[[0-9;]*m/g, "");
  const child: ManagedChild = spawnGroup(
    process.execPath,
    [
      wrangler,
      "dev",
      ...bundleArgs,
      "--config",
      configPath,
      "--local",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-ip",
      "127.0.0.1",
      "--inspector-port",
      String(inspectorPort),
      "--persist-to",
      persistTo,
      "--show-interactive-dev-session=false",
      // "log" includes the Worker's own console.log lines (the tick summaries).
      "--log-level",
      "log",
    ],
    {
      cwd: options.dir,
      env: wranglerEnv(),
      onLine: (raw) => {
        const line = plain(raw);
        log.push(line);
        if (log.length > 200) log.shift();
        if (line.includes(`Ready on http://127.0.0.1:${port}`)) readyResolve?.();
        options.onLog?.(line);
      },
    },
  );

  const url = `http://127.0.0.1:${port}`;
  const failure = (what: string) => new Error(`wrangler dev ${what}; its last lines:\n${log.slice(-25).join("\n")}`);
  const timeoutMs = options.readyTimeoutMs ?? 60_000;
  const outcome = await Promise.race([
    ready.then(() => "ready" as const),
    child.exited.then(() => "exited" as const),
    sleep(timeoutMs).then(() => "timeout" as const),
  ]);
  if (outcome !== "ready") {
    await child.stop();
    throw failure(outcome === "exited" ? "exited before it was ready" : `was not ready within ${timeoutMs / 1000} s`);
  }
  // "Ready" is printed as the socket opens; wait until the Worker itself answers.
  for (let attempt = 0; ; attempt++) {
    try {
      await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(5000) });
      break;
    } catch (error) {
      if (attempt > 50) {
        await child.stop();
        throw failure(`does not answer (${error instanceof Error ? error.message : String(error)})`);
      }
      await sleep(200);
    }
  }

  let lastTick: Promise<void> = Promise.resolve();
  const runTick = async (): Promise<void> => {
    const response = await fetch(`${url}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("* * * * *")}`, {
      signal: AbortSignal.timeout(60_000),
    });
    const body = await response.text();
    if (!response.ok) throw new Error(`scheduled handler failed: HTTP ${response.status} ${body.slice(0, 300)}`);
  };

  return {
    url,
    port,
    secrets: options.secrets,
    tick() {
      const next = lastTick.then(runTick, runTick);
      lastTick = next.catch(() => undefined);
      return next;
    },
    async status() {
      const response = await fetch(`${url}/v1/status`, {
        headers: { authorization: `Bearer ${options.secrets.STATUS_TOKEN}` },
        signal: AbortSignal.timeout(10_000),
      });
      const json: unknown = await response.json();
      const parsed = StatusBody.safeParse(json);
      if (!parsed.success) throw new Error(`unexpected /v1/status answer (HTTP ${response.status}): ${JSON.stringify(json).slice(0, 300)}`);
      return parsed.data;
    },
    async sendTelegramUpdate(update, sendOptions = {}) {
      const secret = sendOptions.secret === undefined ? options.secrets.TELEGRAM_WEBHOOK_SECRET : sendOptions.secret;
      const response = await fetch(`${url}/telegram/webhook`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(secret === null ? {} : { [WEBHOOK_SECRET_HEADER]: secret }) },
        body: JSON.stringify(update),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // Not JSON: keep the text, for the error message.
      }
      return { status: response.status, body };
    },
    recentLog: () => [...log],
    stop: () => child.stop(),
  };
}

export interface Ticker {
  /** Ticks run so far. */
  readonly count: number;
  stop(): Promise<void>;
}

/**
 * The cron, sped up: a tick, then a pause of `everyMs`, then the next, so a slow tick
 * (Telegram retries) delays the next one instead of overlapping it.
 */
export function startTicker(worker: LocalWorker, everyMs: number, onError: (error: unknown) => void): Ticker {
  let stopped = false;
  let count = 0;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      try {
        await worker.tick();
        count++;
      } catch (error) {
        if (!stopped) onError(error);
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, everyMs);
      });
    }
  })();
  return {
    get count() {
      return count;
    },
    async stop() {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}
