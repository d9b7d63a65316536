// The simulation's result as text: the confusion matrix per condition, what happened,
// the faults injected, what the monitor spent per host per day next to check-config's
// prediction (src/budget.ts), and anything that went wrong.
import { computeBudget } from "../src/budget.ts";
import type { SimulationResult } from "./run.ts";
import { median } from "./score.ts";

function table(header: string[], rows: string[][]): string {
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

function minutes(ms: number | null): string {
  return ms === null ? "-" : `${(ms / 60_000).toFixed(1)}m`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}

export function totals(result: SimulationResult): {
  promised: number;
  late: number;
  missed: number;
  falsePages: number;
  duplicates: number;
  lateExternal: number;
  missedAlarm: number;
  prematureRecoveries: number;
  missingRecoveries: number;
} {
  const sum = (pick: (score: SimulationResult["scores"][number]) => number) => result.scores.reduce((total, score) => total + pick(score), 0);
  return {
    promised: sum((score) => score.promised),
    late: sum((score) => score.late),
    missed: sum((score) => score.missed),
    falsePages: sum((score) => score.falsePages),
    duplicates: sum((score) => score.duplicates),
    lateExternal: sum((score) => score.lateCron + score.lateTelegram),
    missedAlarm: sum((score) => score.missedAlarm),
    prematureRecoveries: sum((score) => score.prematureRecoveries),
    missingRecoveries: sum((score) => score.recoveriesExpected - score.recovered),
  };
}

export function formatMatrix(result: SimulationResult): string {
  const header = ["condition", "real", "in time", "late", "late:alarm", "late:tg", "missed", "missed:alarm", "false", "dup", "short paged", "repeats", "remind", "recovered", "median", "worst"];
  const rows = result.scores.map((score) => [
    score.kind,
    String(score.promised),
    String(score.inTime),
    String(score.late),
    String(score.lateCron),
    String(score.lateTelegram),
    String(score.missed),
    String(score.missedAlarm),
    String(score.falsePages),
    String(score.duplicates),
    `${score.shortPaged}/${score.short}`,
    String(score.repeats),
    String(score.reminders),
    `${score.recovered}/${score.recoveriesExpected}`,
    minutes(median(score.delaysMs)),
    minutes(score.delaysMs.length === 0 ? null : Math.max(...score.delaysMs)),
  ]);
  const sum = (index: number) => String(rows.reduce((total, row) => total + Number(row[index] ?? 0), 0));
  rows.push(["total", sum(1), sum(2), sum(3), sum(4), sum(5), sum(6), sum(7), sum(8), sum(9), "", sum(11), sum(12), "", "", ""]);
  return table(header, rows);
}

/** Measured per host per day (the monitor's own share spread over the hosts) next to budget.ts's total per host. */
export function formatUsage(result: SimulationResult): string {
  const { days } = result.options;
  const hostCount = result.hosts.length;
  const budget = computeBudget(result.config);
  const per = (value: number) => value / days / hostCount;
  const kvWrites = [...result.kvByCaller.values()].reduce((sum, counts) => sum + counts.writes + counts.deletes, 0);
  const kvReads = [...result.kvByCaller.values()].reduce((sum, counts) => sum + counts.reads, 0);
  const predicted = (resource: "doRequests" | "rowsWritten" | "rowsRead" | "kvWrites" | "kvReads") => budget.total[resource] / hostCount;
  const measured = {
    doRequests: per(result.monitor.doRequests),
    rowsWritten: per(result.rows.written + result.monitor.alarmSets),
    rowsRead: per(result.rows.read),
    kvWrites: per(kvWrites),
    kvReads: per(kvReads),
  };
  const rows = (Object.keys(measured) as Array<keyof typeof measured>).map((resource) => [
    resource,
    measured[resource].toFixed(0),
    predicted(resource).toFixed(0),
    predicted(resource) === 0 ? "-" : `${(measured[resource] / predicted(resource)).toFixed(2)}x`,
  ]);
  return (
    `${table(["per host per day (faults and incidents included)", "measured", "check-config", "ratio"], rows)}\n` +
    `(rows written: SQL changes plus one per setAlarm (${result.monitor.alarmSets} calls); KV reads exclude the health checks check-config allows for; ` +
    `the run's faults (alarm retries, duplicates, evictions, cron runs twice) and incidents cost extra requests and rows)`
  );
}

export function formatReport(result: SimulationResult): string {
  const { options } = result;
  const lines: string[] = [];
  const hostsLine = result.hosts
    .map((host) => `${host.id} (${host.location}, ping ${host.intervalSeconds} s, ${host.calendar === null ? "no calendar" : host.calendar.timezone})`)
    .join(", ");
  const darkAfter = result.config.hosts.map((host) => `${host.id} ${host.darkAfterSeconds} s`).join(", ");
  lines.push(
    `witness alarm-truth simulation: ${options.days} days, seed ${options.seed}, ${options.hosts} hosts, from ${iso(options.start)} UTC`,
    `hosts: ${hostsLine}`,
    `config: plan ${result.config.plan}, confirm pings ${JSON.stringify(result.config.timing.confirmPings)}, cron ${result.config.timing.cronPeriodSeconds} s, repeat ${result.config.alerts.repeatMinutes} min; darkAfter ${darkAfter}`,
    "",
    formatMatrix(result),
    "",
    "real: episodes long enough that the configuration promises a page, with the deadline check-config states (budget.ts);",
    "late:alarm = past the alarm-path bound where the alarm failed (failover, lost, thrown), within the cron-path bound (plus the cron's own late/skipped minutes);",
    "late:tg = decided in time, delivered late by Telegram faults;",
    "missed:alarm = not paged where the alarm failed and the episode was over before the cron-path bound (nothing promised a page then);",
    "short paged = real episodes too short to be promised a page that were paged anyway (allowed) / all such episodes;",
    "median/worst: incident start to the page on the phone (dark: from the moment the host could no longer ping).",
  );
  const short = result.scores
    .filter((score) => score.shortestPagedMs !== null)
    .map((score) => `${score.kind} ${((score.shortestPagedMs ?? 0) / 60_000).toFixed(1)} min`)
    .join(", ");
  if (short !== "") lines.push(`shortest real episode paged anyway (dark: last ping to next ping): ${short}`);
  const notes = result.scores.flatMap((score) => score.notes.map((note) => `  ${score.kind}: ${note}`));
  if (notes.length > 0) lines.push("", "findings:", ...notes);

  const incidents = Object.entries(result.incidentsByClass).map(([kind, count]) => `${kind} ${count}`).join(", ");
  lines.push("", `incidents injected: ${incidents}`);
  const cron = result.cron;
  const monitor = result.monitor;
  const spans = (list: ReadonlyArray<{ from: number; until: number }>) => list.map((window) => `${iso(window.from)}-${iso(window.until).slice(11)}`).join(", ");
  lines.push(
    `cron: ${cron.scheduled} minutes, ${cron.ran} runs (${cron.skipped} skipped, ${cron.late} late 5-50 s, ${cron.duplicated} run twice); outcomes ${[...cron.outcomes].map(([name, count]) => `${name} ${count}`).join(", ")}`,
    `alarm: ${monitor.alarmSets} set, ${monitor.alarmRuns} handler runs; ${monitor.alarmLost} lost, ${monitor.alarmDuplicated} delivered twice, ${monitor.alarmThrown} thrown (${monitor.alarmGaveUp} given up after 6 retries), ` +
      `${monitor.alarmLateInFailover} late in ${result.alarmFailovers.length} failover windows, ${monitor.alarmRepairedByCron} repaired by the cron; ${monitor.evictions} evictions`,
    `monitor: ${monitor.doRequests} DO requests (${monitor.doRefused} refused: DO quota ${spans(result.doQuotaOutages)}), ${monitor.pings} pings accepted or answered, ${result.rows.written} rows written, ${result.rows.read} read`,
    `telegram: ${result.telegram.calls} calls, ${result.telegram.delivered} delivered; ${[...result.telegram.outcomes].map(([name, count]) => `${name} ${count}`).join(", ")}; outages ${result.telegram.outages.map((outage) => iso(outage.from)).join(", ")} (60 min)`,
    `pages held back by Telegram: ${result.telegramCatchUpMs.length}, delivered at worst ${result.telegramCatchUpMs.length === 0 ? "-" : `${(Math.max(...result.telegramCatchUpMs) / 1000).toFixed(1)} s`} after Telegram's last refusal (the retry backoff is capped at 30 s; retry_after up to 40 s)`,
    `KV: write quota exhausted ${spans(result.kvQuotaOutages)}; ${[...result.kvByCaller].map(([caller, counts]) => `${caller} ${counts.writes} writes, ${counts.failedWrites} failed, ${counts.reads} reads, ${counts.lists} lists`).join("; ")}`,
    `pings answered: ${[...result.pingAnswers].map(([answer, count]) => `${answer} ${count}`).join(", ")}`,
    `notices: ${[...result.notices].map(([name, count]) => `${name} ${count}`).join(", ")}`,
    "",
    formatUsage(result),
  );
  if (result.logs.size > 0) {
    lines.push("", "product log lines (grouped):", ...[...result.logs].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([line, count]) => `  ${String(count).padStart(6)}  ${line}`));
  }
  if (result.failures.length > 0) lines.push("", `FAILURES (${result.failures.length}):`, ...result.failures.slice(0, 10));
  lines.push("", `run time: ${(result.runMs / 1000).toFixed(1)} s`);
  return lines.join("\n");
}
