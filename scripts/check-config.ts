// `npm run check-config [-- --config wrangler.toml --env NAME --json]`
// Validates [vars.WITNESS_CONFIG] outside the Worker and prints, per host and in total,
// the KV writes, reads and requests a day against the plan's quota and the worst-case
// time to each page. Exits 1 when the configuration is invalid or cannot hold its quota.
import { parseArgs } from "node:util";
import { unstable_readConfig } from "wrangler";
import { type Budget, computeBudget } from "../src/budget.ts";
import { type Config, ConfigError, parseConfig } from "../src/config.ts";

function minutes(seconds: number): string {
  return seconds < 120 ? `${Math.round(seconds)} s` : `${(seconds / 60).toFixed(1)} min`;
}

function pad(cells: string[], widths: number[]): string {
  return cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ");
}

export function formatBudget(config: Config, budget: Budget): string {
  const header = ["host", "writes/day", "reads/day", "requests/day", "write every", "dark page ≤", "dark needs ≥", "stale page ≤", "change page ≤"];
  const rows = budget.hosts.map((host) => [
    host.hostId,
    String(Math.round(host.writes)),
    String(Math.round(host.reads)),
    String(Math.round(host.requests)),
    minutes(host.writeEverySeconds),
    minutes(host.darkPageWithinSeconds),
    minutes(host.darkMinimumSilenceSeconds),
    minutes(host.stalePageWithinSeconds),
    minutes(host.changePageWithinSeconds),
  ]);
  rows.push(["(cron)", String(Math.round(budget.cron.writes)), String(Math.round(budget.cron.reads)), String(Math.round(budget.cron.requests)), "", "", "", "", ""]);
  rows.push(["total", String(Math.round(budget.total.writes)), String(Math.round(budget.total.reads)), String(Math.round(budget.total.requests)), "", "", "", "", ""]);
  const quota = budget.quota;
  rows.push([`${config.plan} quota`, String(Math.round(quota.writes)), String(Math.round(quota.reads)), String(Math.round(quota.requests)), "", "", "", "", ""]);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => (row[i] ?? "").length)));
  const lines = [pad(header, widths), ...rows.map((row) => pad(row, widths))];
  lines.push(
    "",
    `timing: refresh ${config.timing.refreshSeconds} s, KV lag ${config.timing.kvLagSeconds} s, confirm ${config.timing.confirmSeconds} s, ` +
      `cron ${config.timing.cronPeriodSeconds} s, tick record ${config.timing.tickRecordSeconds} s; lists: 0 a day (hosts are declared, never listed)`,
    "dark page ≤: from the host's last ping; dark needs ≥: the shortest silence that can page (darkAfter counts from the last",
    "stored ping, up to a refresh older than the last ping: raise darkAfter to ride out longer gaps such as a reboot);",
    "stale page ≤: from the heartbeat's last beat in session; change page ≤: from a status, circuit or file change on disk.",
  );
  return lines.join("\n");
}

function main(): number {
  const { values } = parseArgs({
    options: {
      config: { type: "string", default: "wrangler.toml" },
      env: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log("usage: npm run check-config [-- --config wrangler.toml] [--env NAME] [--json]");
    return 0;
  }
  let raw: unknown;
  let crons: string[];
  try {
    const wrangler = unstable_readConfig({ config: values.config, ...(values.env ? { env: values.env } : {}) });
    raw = (wrangler.vars as Record<string, unknown>)["WITNESS_CONFIG"];
    crons = wrangler.triggers.crons ?? [];
  } catch (error) {
    console.error(`check-config: cannot read ${values.config}: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  let config: Config;
  try {
    config = parseConfig(raw);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`check-config: ${error.message}`);
      return 1;
    }
    throw error;
  }
  // Every bound above assumes the judge runs every cronPeriodSeconds; only a
  // once-a-minute trigger is checked here, as that is what witness ships.
  if (!crons.includes("* * * * *")) {
    console.error(`check-config: ${values.config} has no [triggers] crons = ["* * * * *"]: without it nothing judges the hosts`);
    return 1;
  }
  if (config.timing.cronPeriodSeconds !== 60) {
    console.error(`check-config: timing.cronPeriodSeconds is ${config.timing.cronPeriodSeconds}, but the cron runs every 60 s; leave it out (it is for local runs that tick faster)`);
    return 1;
  }
  const budget = computeBudget(config);
  if (values.json) {
    console.log(JSON.stringify({ config, budget }, null, 2));
  } else {
    console.log(formatBudget(config, budget));
    for (const warning of budget.warnings) console.log(`warning: ${warning}`);
    for (const refusal of budget.refusals) console.error(`refused: ${refusal}`);
    if (budget.refusals.length === 0) console.log(`\nok: ${config.hosts.length} host(s) fit the ${config.plan} plan.`);
  }
  return budget.refusals.length === 0 ? 0 : 1;
}

if (import.meta.main ?? process.argv[1]?.endsWith("check-config.ts")) {
  process.exitCode = main();
}
