// `npm run check-config [-- --config wrangler.toml --env NAME --json]`
// Validates [vars.WITNESS_CONFIG] outside the Worker and prints, per host and in total,
// the Worker and Durable Object requests, rows and KV operations a day against the plan,
// the worst-case time to each page (alarm path and cron path), and on the paid plan the
// monthly cost, and each host's maintenance windows with their next occurrence. Exits 1
// when the configuration is invalid or does not fit the free plan.
import { parseArgs } from "node:util";
import { DateTime } from "luxon";
import { unstable_readConfig } from "wrangler";
import { type Budget, computeBudget, type Resource } from "../src/budget.ts";
import { type Config, ConfigError, parseConfig } from "../src/config.ts";
import { maintenanceSpans, windowZone } from "../src/judge/maintenance.ts";

function duration(seconds: number): string {
  return seconds < 120 ? `${Math.round(seconds)} s` : `${(seconds / 60).toFixed(1)} min`;
}

function count(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

function pad(cells: string[], widths: number[]): string {
  return cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ");
}

const USAGE_COLUMNS: Array<[Resource, string]> = [
  ["workerRequests", "worker req"],
  ["doRequests", "DO req"],
  ["rowsWritten", "rows written"],
  ["rowsRead", "rows read"],
  ["kvReads", "KV reads"],
  ["kvWrites", "KV writes"],
];

export function formatBudget(config: Config, budget: Budget): string {
  const per = config.plan === "free" ? "a day" : "a day (included: a month / 30)";
  const usageHeader = ["per day", ...USAGE_COLUMNS.map(([, label]) => label)];
  const usageRows = [
    ...budget.hosts.map((host) => [host.hostId, ...USAGE_COLUMNS.map(([resource]) => count(host.usage[resource]))]),
    ["(monitor, cron)", ...USAGE_COLUMNS.map(([resource]) => count(budget.monitor[resource]))],
    ["total", ...USAGE_COLUMNS.map(([resource]) => count(budget.total[resource]))],
    [`${config.plan} plan`, ...USAGE_COLUMNS.map(([resource]) => count(budget.quota[resource]))],
  ];
  const boundsHeader = ["host", "dark page ≤", "… if alarms fail", "dark needs ≥", "stale page ≤", "change page ≤"];
  const boundsRows = budget.hosts.map((host) => [
    host.hostId,
    duration(host.darkPageWithinSeconds),
    duration(host.darkPageWithinSecondsIfAlarmsFail),
    duration(host.darkMinimumSilenceSeconds),
    duration(host.stalePageWithinSeconds),
    duration(host.changePageWithinSeconds),
  ]);
  const table = (header: string[], rows: string[][]) => {
    const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => (row[i] ?? "").length)));
    return [pad(header, widths), ...rows.map((row) => pad(row, widths))];
  };
  const lines = [
    `usage ${per}:`,
    ...table(usageHeader, usageRows),
    `duration: ${budget.total.doGbSeconds.toFixed(1)} GB-s a day of the ${count(budget.quota.doGbSeconds)} allowed`,
    "",
    ...table(boundsHeader, boundsRows),
    "",
    "dark page ≤: from the host's last accepted ping, with the monitor's alarm firing as documented; … if alarms fail:",
    "the cron's once-a-minute safety net; dark needs ≥: the shortest silence that can page (darkAfter: every ping counts);",
    "stale page ≤: from the heartbeat's last beat in session; change page ≤: from a status or file change on disk,",
    "with its confirmations (timing.confirmPings). Hosts are declared, never listed: no KV list operations.",
  ];
  if (config.plan === "paid") lines.push("", `cost beyond the included usage: $${budget.monthlyCostUsd.toFixed(2)} a month (Workers Paid's $5 base not included)`);
  return lines.join("\n");
}

/**
 * Each host's weekly maintenance windows, as written (local, in their zone) and as their
 * next occurrence after `now`, local and UTC (the UTC times move with DST).
 */
export function formatMaintenance(config: Config, now: number): string[] {
  const hosts = config.hosts.filter((host) => host.maintenance.length > 0);
  if (hosts.length === 0) return [];
  const lines = ["maintenance windows (DARK and STALE are recorded, not paged; still down at the end pages then):"];
  for (const host of hosts) {
    for (const window of host.maintenance) {
      const zone = windowZone(window, host, config);
      const overnight = window.to < window.from ? " (ends the next day)" : "";
      const next = maintenanceSpans({ ...host, maintenance: [window] }, config, { maintenance: [] }, now, now + 8 * 86_400_000).find((span) => span.to > now);
      const local = (ms: number) => DateTime.fromMillis(ms, { zone }).toFormat("ccc yyyy-LL-dd HH:mm ZZZZ");
      const utc = (ms: number) => DateTime.fromMillis(ms, { zone: "UTC" }).toFormat("ccc yyyy-LL-dd HH:mm 'UTC'");
      const when = next === undefined ? "none in the next 8 days" : `${local(next.from)} to ${local(next.to)} = ${utc(next.from)} to ${utc(next.to)}${next.from <= now ? " (now)" : ""}`;
      lines.push(`  ${host.id}: ${window.days.join(", ")} ${window.from}-${window.to} ${zone}${overnight}; next: ${when}`);
    }
  }
  return lines;
}

function main(): number {
  const { values } = parseArgs({
    options: {
      config: { type: "string", default: "wrangler.toml" },
      env: { type: "string" },
      json: { type: "boolean", default: false },
      /** The moment "next occurrence" counts from (ISO 8601), for reproducible output. */
      now: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log("usage: npm run check-config [-- --config wrangler.toml] [--env NAME] [--json] [--now 2026-12-05T12:00:00Z]");
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
  const now = values.now === undefined ? Date.now() : Date.parse(values.now);
  if (!Number.isFinite(now)) {
    console.error(`check-config: --now ${values.now ?? ""} is not a date; use ISO 8601, e.g. 2026-12-05T12:00:00Z`);
    return 1;
  }
  const budget = computeBudget(config);
  if (values.json) {
    console.log(JSON.stringify({ config, budget }, null, 2));
  } else {
    console.log(formatBudget(config, budget));
    const maintenance = formatMaintenance(config, now);
    if (maintenance.length > 0) console.log(["", ...maintenance].join("\n"));
    for (const warning of budget.warnings) console.log(`warning: ${warning}`);
    for (const refusal of budget.refusals) console.error(`refused: ${refusal}`);
    if (budget.refusals.length === 0) console.log(`\nok: ${config.hosts.length} host(s) fit the ${config.plan} plan.`);
  }
  return budget.refusals.length === 0 ? 0 : 1;
}

if (import.meta.main ?? process.argv[1]?.endsWith("check-config.ts")) {
  process.exitCode = main();
}
