// The node flags the agent runs with on a host, read from the files that start it: the
// systemd unit's ExecStart is the one place they are written, so the bench measures and
// the tests run the agent exactly as it is deployed, and a test holds the rest to it.
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** Where install.sh puts the agent; every command that starts it names this script. */
export const INSTALLED_AGENT = "/opt/witness/witness-agent.mjs";

/**
 * The node flags of a command that runs `script`: the words just before it that start
 * with "--" (`/usr/bin/node --jitless … /opt/witness/witness-agent.mjs --check`).
 * Undefined when the command does not run the script.
 */
export function nodeFlagsBefore(command: string, script = INSTALLED_AGENT): string[] | undefined {
  const words = command.trim().split(/\s+/);
  const at = words.indexOf(script);
  if (at < 0) return undefined;
  let first = at;
  while (first > 0 && words[first - 1]?.startsWith("--") === true) first--;
  return words.slice(first, at);
}

/** The ExecStart= line of a unit. */
export function execStart(unitText: string): string {
  const line = /^ExecStart=(.*)$/m.exec(unitText)?.[1];
  if (line === undefined) throw new Error("the unit has no ExecStart= line");
  return line;
}

/** The flags the systemd unit starts node with (agent/systemd/witness-agent.service). */
export function unitNodeFlags(unitText: string): string[] {
  const flags = nodeFlagsBefore(execStart(unitText));
  if (flags === undefined) throw new Error(`ExecStart does not run ${INSTALLED_AGENT}`);
  return flags;
}

/** The deployed flags, from the repository's unit. */
export function deployedNodeFlags(root: string): string[] {
  return unitNodeFlags(readFileSync(join(root, "agent", "systemd", "witness-agent.service"), "utf8"));
}
