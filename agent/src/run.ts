// run(config, deps) → exit code: the three modes around the Agent. Loop pushes every
// interval until stopped; --once pushes once (with retries inside one interval);
// --check prints the ping and the Worker's verdict. Returns, never exits.
import { Agent, type AgentDeps } from "./agent.ts";
import { removeStrayTempFiles } from "./circuit-writer.ts";
import type { Config } from "./config.ts";
import { EXIT } from "./errors.ts";
import { AGENT_VERSION } from "./version.ts";

export interface RunDeps extends AgentDeps {
  /** Where --check prints the ping and the verdict (stdout). */
  print(text: string): void;
  /** A full garbage collection (node --expose-gc's `gc`); absent, V8 collects when it decides. */
  collectGarbage?: () => void;
}

/**
 * How often the loop asks for a full garbage collection, in push cycles (the first cycle,
 * then every this many). Each https push leaves its socket's OpenSSL state (about 20 KiB
 * on Node 22) held by a small JS object that only a full collection frees, and the
 * agent's heap is too small to need one on its own: resident memory climbed 2 MiB per
 * 100 pushes on Node 22, 1 on Node 18, without levelling off (docs/benchmarks.md). A
 * full collection of this heap costs 15-25 ms of CPU, so not after every push.
 */
export const COLLECT_GARBAGE_EVERY_CYCLES = 10;

export async function run(config: Config, deps: RunDeps, stopSignal: AbortSignal): Promise<number> {
  const agent = new Agent(config, deps, stopSignal);
  if (config.mode === "check") return check(config, deps, agent);

  // A crash while applying a remote pause can leave a temp file: remove it first.
  const removed = await removeStrayTempFiles(config.circuitPath);
  if (removed.length > 0) deps.log.info(`removed ${removed.length} temp file(s) left by an interrupted circuit write: ${removed.join(", ")}`);

  if (config.mode === "once") {
    const result = await agent.pushCycle(deps.now() + config.intervalMs);
    if (result.accepted && (await agent.handleCommands(result.commands, result.serverTime)) > 0) {
      // Report what we did with the command now: there is no next push in --once.
      await agent.pushCycle(deps.now() + config.intervalMs);
    }
    return result.accepted ? EXIT.ok : EXIT.notAccepted;
  }

  deps.log.info(
    `witness-agent ${AGENT_VERSION} started (node ${process.version}): host ${config.hostId} → ${config.pingUrl} every ${config.intervalMs / 1000} s; ` +
      `heartbeat ${config.heartbeatPath}, circuit ${config.circuitPath}; remote pause ${config.allowRemotePause ? "ALLOWED" : "off"}; boot id ${deps.bootId}`,
  );
  let cycles = 0;
  while (!stopSignal.aborted) {
    const cycleStart = deps.now();
    let reportNow = false;
    try {
      const result = await agent.pushCycle(cycleStart + config.intervalMs);
      if (result.accepted) reportNow = (await agent.handleCommands(result.commands, result.serverTime)) > 0;
    } catch (error) {
      // A bug must not stop the witness: log it and try again next interval.
      deps.log.error(`unexpected error in a push cycle: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
    if (cycles++ % COLLECT_GARBAGE_EVERY_CYCLES === 0) deps.collectGarbage?.();
    // After a command, push again at once so the phone sees the confirmation.
    if (reportNow) continue;
    const nextAt = Math.max(cycleStart + config.intervalMs, agent.notBeforeMs);
    await deps.sleep(Math.max(0, nextAt - deps.now()), stopSignal);
  }
  deps.log.info("witness-agent stopped");
  return EXIT.ok;
}

async function check(config: Config, deps: RunDeps, agent: Agent): Promise<number> {
  deps.print(`config ok: host ${config.hostId} → ${config.pingUrl}, secret from ${config.secretSource}, every ${config.intervalMs / 1000} s, remote pause ${config.allowRemotePause ? "allowed" : "off"}`);
  const result = await agent.pushCycle(deps.now() + config.intervalMs, {
    retries: false,
    onBuilt: (body) => deps.print(`ping sent (the Worker parses the file texts):\n${JSON.stringify(body, null, 2)}`),
  });
  if (!result.accepted) {
    deps.print(`Worker verdict: NOT accepted: ${result.lastFailure}`);
    return EXIT.notAccepted;
  }
  const pending = result.commands.map((command) => `${command.id} (pause by ${command.requestedBy}: ${command.reason})`);
  deps.print(
    `Worker verdict: accepted; Worker clock ${new Date(result.serverTime).toISOString()}` +
      (pending.length > 0 ? `; pending commands, not applied by --check: ${pending.join(", ")}` : ""),
  );
  return EXIT.ok;
}
