// Flags and environment → a validated Config, or a UserError whose message is the one
// line the operator sees. Flags win over environment variables. Nothing here touches
// the network; the secret file is the only file read.
import { statSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { HOST_ID_PATTERN } from "./wire.ts";
import { UserError } from "./errors.ts";

export type Mode = "loop" | "once" | "check";

export interface Config {
  /** Full ping URL: `${WITNESS_URL}/v1/ping/${hostId}`. */
  pingUrl: string;
  hostId: string;
  secret: string;
  /** Where the secret came from, for the start-up log line (never the secret itself). */
  secretSource: string;
  heartbeatPath: string;
  circuitPath: string;
  intervalMs: number;
  requestTimeoutMs: number;
  allowRemotePause: boolean;
  mode: Mode;
  verbose: boolean;
}

export type Invocation = { kind: "help" } | { kind: "version" } | { kind: "run"; config: Config };

/** What config needs from the file system: only the secret file. */
export interface SecretFileSystem {
  stat(path: string): { mode: number; isFile: boolean };
  readText(path: string): string;
}

export const nodeSecretFileSystem: SecretFileSystem = {
  stat(path) {
    const stats = statSync(path);
    return { mode: stats.mode, isFile: stats.isFile() };
  },
  readText: (path) => readFileSync(path, "utf8"),
};

export const DEFAULTS = {
  heartbeat: "data/heartbeat.json",
  circuit: "data/circuit.json",
  intervalSeconds: 60,
  requestTimeoutMs: 10_000,
} as const;

const MIN_INTERVAL_SECONDS = 1;
const MAX_INTERVAL_SECONDS = 3600;
const MIN_SECRET_LENGTH = 16;

export const USAGE = `witness-agent: mirror heartbeat.json and circuit.json to a witness Worker.

Usage: witness-agent [options]

Options (each also read from the environment variable shown):
  --url <url>              WITNESS_URL           the Worker's base URL (https://…)
  --host <id>              WITNESS_HOST          this host's id, as in the Worker's config
                           WITNESS_SECRET        the host secret (prefer the file below)
  --secret-file <path>     WITNESS_SECRET_FILE   file holding the host secret (chmod 600)
  --heartbeat <path>       WITNESS_HEARTBEAT     default ${DEFAULTS.heartbeat}
  --circuit <path>         WITNESS_CIRCUIT       default ${DEFAULTS.circuit}
  --interval <seconds>     WITNESS_INTERVAL      seconds between pushes, default ${DEFAULTS.intervalSeconds}
  --allow-remote-pause     WITNESS_ALLOW_REMOTE_PAUSE=1
                                                 let the Worker pause the circuit (never resume)
  --once                   push once; exit 0 if the Worker accepted it, 1 if not
  --check                  check the config, print the ping that would be sent and the
                           Worker's verdict; exit 0 if accepted, 1 if not
  --verbose                log every push, not only changes
  --help, --version

Exit codes: 0 ok, 1 ping not accepted (--once, --check), 2 bad configuration.
`;

export function parseInvocation(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  fileSystem: SecretFileSystem = nodeSecretFileSystem,
  cwd: string = process.cwd(),
): Invocation {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: "string" },
        host: { type: "string" },
        "secret-file": { type: "string" },
        heartbeat: { type: "string" },
        circuit: { type: "string" },
        interval: { type: "string" },
        "allow-remote-pause": { type: "boolean" },
        once: { type: "boolean" },
        check: { type: "boolean" },
        verbose: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
    });
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] ?? "" : String(error);
    throw new UserError(`${message.replace(/\.$/, "")}; run witness-agent --help for the options`);
  }
  const flags = parsed.values;
  if (flags.help === true) return { kind: "help" };
  if (flags.version === true) return { kind: "version" };

  const setting = (flag: string | undefined, envName: string): string | undefined => {
    if (flag !== undefined) return flag;
    const value = env[envName];
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  };

  const url = parseUrl(setting(flags.url, "WITNESS_URL"));
  const hostId = parseHostId(setting(flags.host, "WITNESS_HOST"));
  const { secret, secretSource } = readSecret(flags["secret-file"], env, fileSystem);
  const heartbeatPath = resolve(cwd, setting(flags.heartbeat, "WITNESS_HEARTBEAT") ?? DEFAULTS.heartbeat);
  const circuitPath = resolve(cwd, setting(flags.circuit, "WITNESS_CIRCUIT") ?? DEFAULTS.circuit);
  if (heartbeatPath === circuitPath) {
    throw new UserError(`WITNESS_HEARTBEAT and WITNESS_CIRCUIT are the same file (${heartbeatPath}); point them at the two different files`);
  }
  const intervalSeconds = parseInterval(setting(flags.interval, "WITNESS_INTERVAL"));
  const allowRemotePause =
    flags["allow-remote-pause"] === true || parseBoolean(env.WITNESS_ALLOW_REMOTE_PAUSE, "WITNESS_ALLOW_REMOTE_PAUSE");

  if (flags.once === true && flags.check === true) {
    throw new UserError("--once and --check cannot be used together; pick one");
  }
  const mode: Mode = flags.once === true ? "once" : flags.check === true ? "check" : "loop";

  return {
    kind: "run",
    config: {
      pingUrl: `${url}/v1/ping/${hostId}`,
      hostId,
      secret,
      secretSource,
      heartbeatPath,
      circuitPath,
      intervalMs: intervalSeconds * 1000,
      requestTimeoutMs: Math.min(DEFAULTS.requestTimeoutMs, intervalSeconds * 1000),
      allowRemotePause,
      mode,
      verbose: flags.verbose === true,
    },
  };
}

function parseUrl(raw: string | undefined): string {
  if (raw === undefined) {
    throw new UserError("WITNESS_URL is not set; set it to your Worker's address, e.g. WITNESS_URL=https://witness.example.workers.dev");
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UserError(`WITNESS_URL is not a valid URL (${JSON.stringify(raw)}); use the Worker's address, e.g. https://witness.example.workers.dev`);
  }
  const local = ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && local)) {
    throw new UserError(`WITNESS_URL must start with https:// (got ${url.protocol}//${url.host}); plain http is only allowed for localhost`);
  }
  if (url.search !== "" || url.hash !== "") {
    throw new UserError(`WITNESS_URL must not have a query or fragment (got ${raw}); use only the Worker's base address`);
  }
  return url.toString().replace(/\/+$/, "");
}

function parseHostId(raw: string | undefined): string {
  if (raw === undefined) {
    throw new UserError("WITNESS_HOST is not set; set it to this host's id as configured in the Worker, e.g. WITNESS_HOST=trader-1");
  }
  if (!HOST_ID_PATTERN.test(raw)) {
    throw new UserError(`WITNESS_HOST ${JSON.stringify(raw)} is not a valid host id; use 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit`);
  }
  return raw;
}

function readSecret(
  flagFile: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  fileSystem: SecretFileSystem,
): { secret: string; secretSource: string } {
  const envSecret = env.WITNESS_SECRET?.trim() ?? "";
  const envFile = env.WITNESS_SECRET_FILE?.trim() ?? "";
  if (flagFile === undefined && envSecret !== "" && envFile !== "") {
    throw new UserError("both WITNESS_SECRET and WITNESS_SECRET_FILE are set; keep only one (the file is safer)");
  }
  const file = flagFile ?? (envFile !== "" ? envFile : undefined);
  if (file === undefined) {
    if (envSecret === "") {
      throw new UserError("no host secret: set WITNESS_SECRET_FILE to a chmod-600 file holding the secret printed by `npm run host-secret -- <host>` (or set WITNESS_SECRET)");
    }
    return { secret: checkSecretText(envSecret, "WITNESS_SECRET"), secretSource: "WITNESS_SECRET" };
  }
  let stats;
  try {
    stats = fileSystem.stat(file);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new UserError(`cannot read the secret file ${file} (${typeof code === "string" ? code : "error"}); check WITNESS_SECRET_FILE and that the agent's user can read it`);
  }
  if (!stats.isFile) {
    throw new UserError(`the secret file ${file} is not a regular file; point WITNESS_SECRET_FILE at the file holding the host secret`);
  }
  if ((stats.mode & 0o077) !== 0) {
    const mode = (stats.mode & 0o777).toString(8).padStart(4, "0");
    throw new UserError(`the secret file ${file} is readable by other users (mode ${mode}); run: chmod 600 ${file}`);
  }
  let text: string;
  try {
    text = fileSystem.readText(file);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new UserError(`cannot read the secret file ${file} (${typeof code === "string" ? code : "error"}); make it readable by the agent's user (and only by it: chmod 600)`);
  }
  return { secret: checkSecretText(text.trim(), `the secret file ${file}`), secretSource: file };
}

function checkSecretText(secret: string, source: string): string {
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new UserError(`${source} holds a secret of ${secret.length} characters, too short to be a host secret; paste the one printed by \`npm run host-secret -- <host>\``);
  }
  if (/\s/.test(secret)) {
    throw new UserError(`${source} holds a secret with spaces or line breaks inside it; it must be the single line printed by \`npm run host-secret -- <host>\``);
  }
  return secret;
}

function parseInterval(raw: string | undefined): number {
  if (raw === undefined) return DEFAULTS.intervalSeconds;
  const seconds = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(seconds) || seconds < MIN_INTERVAL_SECONDS || seconds > MAX_INTERVAL_SECONDS) {
    throw new UserError(`WITNESS_INTERVAL must be a whole number of seconds from ${MIN_INTERVAL_SECONDS} to ${MAX_INTERVAL_SECONDS} (got ${JSON.stringify(raw)}); the usual value is 60`);
  }
  return seconds;
}

function parseBoolean(raw: string | undefined, name: string): boolean {
  const value = raw?.trim().toLowerCase() ?? "";
  if (["", "0", "false", "no", "off"].includes(value)) return false;
  if (["1", "true", "yes", "on"].includes(value)) return true;
  throw new UserError(`${name} must be 1 or 0 (got ${JSON.stringify(raw)}); set ${name}=1 to allow remote pause`);
}
