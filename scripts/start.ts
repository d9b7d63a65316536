// `npm start`: witness on this machine with no Cloudflare account and no Telegram bot.
// The Worker runs under wrangler dev (the monitor object with its SQLite storage and
// real-time alarm, local KV), a console stand-in plays the phone, the bundled agent
// mirrors data/heartbeat.json and data/circuit.json, a sample pipeline keeps the
// heartbeat fresh, and a sped-up cron (the safety net) ticks every 15 s. Ctrl-C stops
// every process it started.
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureAgentBundle } from "../test/support/agent-process.ts";
import { leftoverGroups } from "../test/support/child-process.ts";
import {
  cronPeriodFor,
  DEMO_AGENT_INTERVAL_SECONDS,
  DEMO_DARK_AFTER_SECONDS,
  DEMO_HOST_SETTINGS,
  type LocalStack,
  SILENCE_PAGES_DARK_SETTINGS,
  startLocalStack,
} from "../test/support/local-stack.ts";
import { phoneText } from "../test/support/phone.ts";
import { signInLink } from "../src/status/session.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = join(root, ".wrangler", "witness-demo");
const dataDir = join(root, "data");
const stopFile = join(dataDir, "STOP");
const HOST_ID = "trader-1";
/** The agent's push interval: the shortest a 10 s host accepts (see DEMO_AGENT_INTERVAL_SECONDS). */
const AGENT_EVERY_SECONDS = DEMO_AGENT_INTERVAL_SECONDS;
const PIPELINE_EVERY_SECONDS = 5;
/** The cron is only the safety net now (deployed: every minute); the monitor pages on its own alarm. */
const TICK_EVERY_MS = 15_000;
const CRON_PERIOD_SECONDS = cronPeriodFor(TICK_EVERY_MS);
// One host plays both "pipeline stopped" and "agent stopped", so silence must page DARK
// alone (see SILENCE_PAGES_DARK_SETTINGS); stale therefore takes 50 s here.
const HOST_SETTINGS = { ...DEMO_HOST_SETTINGS, ...SILENCE_PAGES_DARK_SETTINGS };
const DARK_AFTER_SECONDS = DEMO_DARK_AFTER_SECONDS;

const color = process.stdout.isTTY && process.env.NO_COLOR === undefined;
const style = (code: string, reset: string) => (text: string) => (color ? `\u001b[${code}m${text}\u001b[${reset}m` : text);
const bold = style("1", "22");
const dim = style("2", "22");
const red = style("31", "39");
const rel = (path: string) => relative(process.cwd(), path) || ".";
const clock = () => new Date().toTimeString().slice(0, 8);

function printPhone(html: string): void {
  const lines = phoneText(html, { ansi: color }).split("\n");
  console.log(`\n${dim(clock())} 📱 ${bold("Telegram")}`);
  for (const line of lines) console.log(`   │ ${line}`);
  console.log("");
}

/** Worker output worth showing on the console; the rest goes to the log file. */
function isWorkerProblem(line: string): boolean {
  if (/Request\.cf|getaddrinfo|GetAddrInfoReqWrap|workers\.cloudflare\.com/.test(line)) return false; // offline, harmless
  // The cron's summary each tick is routine unless it had to repair the alarm or cannot deliver.
  if (/^cron: checked: /.test(line)) return /alarm repaired|delivery failing/.test(line);
  return /✘|\[ERROR\]|exception|^cron: |^telegram: |^monitor: |^webhook: |unexpected error/i.test(line);
}

/** The status page's address with a link that signs in for a day, as the bot's /status reply gives it. */
async function statusPageLink(stack: LocalStack): Promise<string> {
  // localhost, not 127.0.0.1: browsers keep the page's Secure session cookie for localhost over plain HTTP.
  const origin = stack.worker.url.replace("127.0.0.1", "localhost");
  return signInLink(origin, stack.worker.secrets.STATUS_TOKEN, Date.now());
}

function printHelp(stack: LocalStack, pageLink: string): void {
  const since = "$(date +%s)";
  const heartbeat = rel(join(dataDir, "heartbeat.json"));
  const circuit = rel(join(dataDir, "circuit.json"));
  const tries: Array<[string, string, string]> = [
    ["bad status", `set "status": "error" in ${heartbeat}`, `FAILING; set it back to "ok" → recovery`],
    ["corrupt", `echo '{"at": 17' > ${heartbeat}`, "HEARTBEAT UNREADABLE; write valid JSON back → recovery"],
    ["stale", `press ${bold("p")} (or touch ${rel(stopFile)}) to stop the pipeline`, `STALE ${HOST_SETTINGS.maxAgeInSessionSeconds} s after the last beat (the monitor's alarm); ${bold("p")} again → recovery`],
    ["circuit", `echo '{"paused": true, "reason": "manual test", "since": '${since}'}' > ${circuit}`, `CIRCUIT TRIPPED with its reason; rm ${circuit} → resumed`],
    ["dark", `press ${bold("a")} to stop the agent`, `DARK ${DARK_AFTER_SECONDS} s after the last ping, from the monitor's alarm within a second or two; ${bold("a")} again → recovery ("agent restart")`],
    ["status", `curl -s -H 'authorization: Bearer ${stack.worker.secrets.STATUS_TOKEN}' ${stack.worker.url}/v1/status`, "what the Worker knows, as JSON"],
  ];
  console.log(`
${bold("witness is running on this machine")} (no Cloudflare account or Telegram bot needed)

  Worker      ${stack.worker.url}   wrangler dev --local: the monitor object (SQLite) and KV in ${rel(join(dir, "worker", "state"))}
              log: ${rel(join(dir, "worker.log"))}
  status page ${pageLink}
              open it in a browser: it signs you in for a day (the bot's /status reply carries the same kind of link)
  Telegram    ${stack.telegram.url}   a stand-in: every message prints here as 📱
  agent       dist/witness-agent.mjs, host ${HOST_ID}, pushes ${heartbeat} and ${circuit} every ${AGENT_EVERY_SECONDS} s
  pipeline    a stand-in that rewrites ${heartbeat} every ${PIPELINE_EVERY_SECONDS} s (keeps its status; paused while ${rel(stopFile)} exists)
  monitor     judges each ping as it arrives and wakes on its alarm at the next deadline:
              dark after ${DARK_AFTER_SECONDS} s at ${HOST_SETTINGS.intervalSeconds} s pings (2 × ${HOST_SETTINGS.intervalSeconds} s + 15 s), stale after ${HOST_SETTINGS.maxAgeInSessionSeconds} s
  cron        the safety net: one check every ${CRON_PERIOD_SECONDS} s here (deployed: every minute); judges anything overdue, repairs the alarm

${bold("Things to try")} (a page comes with the ping that shows it, ${AGENT_EVERY_SECONDS} s at most; bad status and unreadable need two pings in a row; a trip pages at once)
${tries.map(([what, how, then]) => `  ${what.padEnd(11)}${how}\n  ${" ".repeat(11)}${dim("→")} ${then}`).join("\n")}

${bold("Keys")}  a agent on/off · p pipeline on/off · t cron check now · s status · h help · q quit (Ctrl-C too)
`);
}

async function printStatus(stack: LocalStack): Promise<void> {
  try {
    const status = await stack.worker.status();
    for (const host of status.hosts) {
      const conditions = Object.keys(host.conditions);
      const seen = host.lastPingAt === null ? "never pinged" : `last ping ${Math.round((status.now - host.lastPingAt) / 1000)} s ago`;
      console.log(`${dim(clock())} status: ${host.id}: ${seen}; ${conditions.length === 0 ? "all clear" : `open: ${conditions.join(", ")}`}` +
        `; agent ${stack.host(HOST_ID).agent === null ? "stopped" : "running"}; pipeline ${stack.host(HOST_ID).pipeline.paused ? "paused" : "running"}`);
    }
    const alarm = status.alarmAt === null ? "no alarm armed" : `monitor alarm in ${Math.max(0, Math.round((status.alarmAt - status.now) / 1000))} s`;
    const cron = status.lastCronAt === null ? "no cron check yet" : `last cron check ${Math.round((status.now - status.lastCronAt) / 1000)} s ago`;
    console.log(`${dim(clock())} status: ${alarm}; ${cron}`);
    if (status.undelivered.length > 0) console.log(`${dim(clock())} status: ${status.undelivered.length} message(s) waiting for Telegram`);
  } catch (error) {
    console.log(red(`status failed: ${error instanceof Error ? error.message : String(error)}`));
  }
}

async function main(): Promise<void> {
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(dir, { recursive: true });
  const logPath = join(dir, "worker.log");
  writeFileSync(logPath, "");
  if (existsSync(stopFile)) {
    rmSync(stopFile);
    console.log(dim(`removed ${rel(stopFile)} left from an earlier run: the pipeline starts running`));
  }
  const heartbeatPath = join(dataDir, "heartbeat.json");
  if (existsSync(heartbeatPath)) {
    try {
      JSON.parse(readFileSync(heartbeatPath, "utf8"));
    } catch {
      console.log(dim(`note: ${rel(heartbeatPath)} is not valid JSON (left from an earlier try?); the pipeline leaves such a file alone, so delete it to start fresh`));
    }
  }
  const circuitPath = join(dataDir, "circuit.json");
  if (existsSync(circuitPath)) {
    console.log(dim(`note: ${rel(circuitPath)} exists (${readFileSync(circuitPath, "utf8").trim().slice(0, 80)}); delete it if the circuit should be green`));
  }

  console.log(dim("building the agent if needed, starting the Worker (wrangler dev) and the Telegram stand-in…"));
  const bundle = await ensureAgentBundle(root);
  let lastTickError = "";
  const stack = await startLocalStack({
    root,
    dir,
    agentBundle: bundle,
    agentIntervalSeconds: AGENT_EVERY_SECONDS,
    pipelineEveryMs: PIPELINE_EVERY_SECONDS * 1000,
    tickEveryMs: TICK_EVERY_MS,
    hosts: [{ id: HOST_ID, dataDir, pipelineStopFile: stopFile, settings: SILENCE_PAGES_DARK_SETTINGS }],
    onTelegram: (call) => {
      if (call.method === "sendMessage") printPhone(String(call.payload.text));
    },
    onAgentLine: (_hostId, line) => console.log(dim(`agent │ ${line}`)),
    onWorkerLog: (line) => {
      appendFileSync(logPath, `${line}\n`);
      if (isWorkerProblem(line)) console.log(red(`worker │ ${line}`));
    },
    onTickError: (error) => {
      const message = error instanceof Error ? error.message : String(error);
      if (message !== lastTickError) console.log(red(`cron │ tick failed: ${message} (retrying every ${CRON_PERIOD_SECONDS} s; see ${rel(logPath)})`));
      lastTickError = message;
    },
  });
  const host = stack.host(HOST_ID);
  const pageLink = await statusPageLink(stack);
  printHelp(stack, pageLink);

  let stopping = false;
  const shutdown = async (why: string) => {
    if (stopping) return;
    stopping = true;
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    process.stdin.pause();
    console.log(dim(`\n${why}: stopping the agent, the Worker (wrangler and workerd) and the Telegram stand-in…`));
    await stack.stop();
    const leftovers = leftoverGroups();
    if (leftovers.length === 0) {
      console.log("stopped; no process left behind.");
      process.exit(0);
    }
    console.log(red(`process group(s) ${leftovers.join(", ")} did not stop; killing them (check with: pgrep -f workerd)`));
    process.exit(1); // the exit hook sends SIGKILL to every group still listed
  };
  process.on("SIGINT", () => void shutdown("Ctrl-C"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGHUP", () => void shutdown("SIGHUP"));

  if (!process.stdin.isTTY) {
    console.log(dim(`(stdin is not a terminal: no keys; use ${rel(stopFile)} for the pipeline and Ctrl-C / SIGTERM to stop)`));
    return;
  }
  process.stdin.setRawMode(true);
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (keys: string) => {
    for (const key of keys) {
      switch (key) {
        case "\u0003": // Ctrl-C arrives as a key in raw mode
        case "q":
          void shutdown(key === "q" ? "q" : "Ctrl-C");
          return;
        case "a":
          if (host.agent === null) {
            host.startAgent();
            console.log(`${dim(clock())} ▶ agent started again (expect a recovery saying "agent restart" if the host was dark)`);
          } else {
            console.log(`${dim(clock())} ▶ stopping the agent: the Worker hears nothing from ${HOST_ID}; DARK ${DARK_AFTER_SECONDS} s after its last ping (the monitor's alarm)`);
            void host.stopAgent("stop");
          }
          break;
        case "p":
          if (existsSync(stopFile)) {
            rmSync(stopFile);
            console.log(`${dim(clock())} ▶ pipeline running again: the heartbeat is fresh from the next beat`);
          } else {
            writeFileSync(stopFile, "the pipeline stand-in is paused while this file exists\n");
            console.log(`${dim(clock())} ▶ pipeline paused (${rel(stopFile)}): STALE ${HOST_SETTINGS.maxAgeInSessionSeconds} s after the last beat`);
          }
          break;
        case "t":
          stack.worker.tick().then(
            () => console.log(`${dim(clock())} ▶ cron check done`),
            (error: unknown) => console.log(red(`tick failed: ${error instanceof Error ? error.message : String(error)}`)),
          );
          break;
        case "s":
          void printStatus(stack);
          break;
        case "h":
        case "?":
          printHelp(stack, pageLink);
          break;
        default:
          break;
      }
    }
  });
}

main().catch((error: unknown) => {
  console.error(red(`npm start: ${error instanceof Error ? error.message : String(error)}`));
  process.exit(1);
});
