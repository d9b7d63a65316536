// `npm run simulate [-- --days 30 --seed 1 --hosts 4]`: the alarm-truth simulator. Drives
// the monitor (MonitorCore over node:sqlite) with its alarm, the cron, quota windows and
// Telegram faults over simulated days of real incidents, and prints the confusion matrix
// per condition, what the monitor spent per host per day against check-config's
// prediction, and the run time. Exits 1 when any page was missed, false, late or duplicated.
import { parseArgs } from "node:util";
import { formatReport, totals } from "../sim/report.ts";
import { runSimulation } from "../sim/run.ts";

function positiveInteger(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || (name !== "seed" && parsed === 0)) {
    throw new Error(`--${name} must be a ${name === "seed" ? "non-negative" : "positive"} whole number, not "${value}"`);
  }
  return parsed;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      days: { type: "string" },
      seed: { type: "string" },
      hosts: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log("usage: npm run simulate -- [--days 30] [--seed 1] [--hosts 4]");
    return 0;
  }
  let options: { days: number; seed: number; hosts: number };
  try {
    options = {
      days: positiveInteger("days", values.days, 30),
      seed: positiveInteger("seed", values.seed, 1),
      hosts: positiveInteger("hosts", values.hosts, 4),
    };
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 2;
  }
  const result = await runSimulation(options);
  console.log(formatReport(result));
  const sum = totals(result);
  const bad = sum.missed + sum.falsePages + sum.late + sum.duplicates + sum.prematureRecoveries + sum.missingRecoveries + result.failures.length;
  if (bad > 0) {
    console.log(
      `\ngoal not met: ${sum.missed} missed, ${sum.falsePages} false, ${sum.late} late, ${sum.duplicates} duplicate, ` +
        `${sum.prematureRecoveries} premature recoveries, ${sum.missingRecoveries} missing recoveries, ${result.failures.length} failures`,
    );
    return 1;
  }
  console.log(
    `\ngoal met: 0 missed, 0 false, 0 late, 0 duplicate pages over ${sum.promised} promised incidents ` +
      `(beyond witness's control and shown above: ${sum.lateExternal} page(s) past the alarm-path bound because an alarm failed (cron-path bound held) or Telegram did; ` +
        `${sum.missedAlarm} episode(s) over before the cron-path bound while the alarm failed)`,
  );
  return 0;
}

process.exitCode = await main();
