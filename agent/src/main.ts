// Entry point of the bundled agent: flags and environment → Config, real clock, files,
// fetch and signals → run(), then exit with its code. A configuration mistake prints one
// line (what is wrong, how to fix it) and exits 2, without a stack trace.
import { parseInvocation, USAGE } from "./config.ts";
import { EXIT, UserError } from "./errors.ts";
import { readBootId } from "./boot-id.ts";
import { httpPost } from "./http-post.ts";
import { consoleLogger } from "./logger.ts";
import { run, type RunDeps } from "./run.ts";
import { AGENT_VERSION } from "./version.ts";

/** Resolves after `ms` or as soon as `signal` aborts; never rejects. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

async function main(): Promise<number> {
  let invocation;
  try {
    invocation = parseInvocation(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof UserError) {
      process.stderr.write(`witness-agent: ${error.message}\n`);
      return EXIT.badConfig;
    }
    throw error;
  }
  if (invocation.kind === "help") {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  if (invocation.kind === "version") {
    process.stdout.write(`witness-agent ${AGENT_VERSION}\n`);
    return EXIT.ok;
  }

  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    // A second signal means "now": the first one is already aborting the request and the sleep.
    if (stop.signal.aborted) process.exit(signal === "SIGINT" ? 130 : 143);
    stop.abort();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  const startedAt = Date.now();
  const deps: RunDeps = {
    now: Date.now,
    random: Math.random,
    fetch: httpPost,
    sleep,
    log: consoleLogger(Date.now, { infoToStderr: invocation.config.mode === "check" }),
    bootId: await readBootId(),
    startedAt,
    print: (text) => void process.stdout.write(`${text}\n`),
    // Defined when node runs with --expose-gc, as the unit starts it (see run.ts for why);
    // without the flag the agent works the same and leaves collection to V8.
    ...(globalThis.gc !== undefined ? { collectGarbage: globalThis.gc } : {}),
  };
  return run(invocation.config, deps, stop.signal);
}

/** Exit once stdout and stderr have drained (pipes are asynchronous on macOS). */
function exitAfterFlush(code: number): void {
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}

main().then(exitAfterFlush, (error: unknown) => {
  process.stderr.write(`witness-agent: unexpected error (please report it): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  exitAfterFlush(70);
});
