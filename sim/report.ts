// The simulation's result as text: the confusion matrix per condition, what happened,
// the faults injected, KV operations per host per day, and anything that went wrong.
import { median } from "./score.ts";
import type { SimulationResult } from "./run.ts";
import type { OperationCounts } from "./kv.ts";

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
  duplicatesKv: number;
  lateExternal: number;
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
    duplicatesKv: sum((score) => score.duplicatesKv),
    lateExternal: sum((score) => score.lateCron + score.lateTelegram),
    prematureRecoveries: sum((score) => score.prematureRecoveries),
    missingRecoveries: sum((score) => score.recoveriesExpected - score.recovered),
  };
}

export function formatMatrix(result: SimulationResult): string {
  const header = ["condition", "real", "in time", "late", "late:cron", "late:tg", "missed", "false", "dup", "dup:kv", "short paged", "repeats", "remind", "recovered", "median", "worst"];
  const rows = result.scores.map((score) => [
    score.kind,
    String(score.promised),
    String(score.inTime),
    String(score.late),
    String(score.lateCron),
    String(score.lateTelegram),
    String(score.missed),
    String(score.falsePages),
    String(score.duplicates),
    String(score.duplicatesKv),
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

function perDay(counts: OperationCounts | undefined, days: number): string[] {
  const value = (n: number) => (n / days).toFixed(n / days < 10 ? 1 : 0);
  if (counts === undefined) return ["0", "0", "0", "0", "0"];
  return [value(counts.reads), value(counts.writes), value(counts.failedWrites), value(counts.deletes), value(counts.lists)];
}

export function formatKv(result: SimulationResult): string {
  const { days } = result.options;
  const rows = result.hosts.map((host) => [host.id, ...perDay(result.kvByOwner.get(host.id), days)]);
  rows.push(["cron:state (shared)", ...perDay(result.kvByOwner.get("cron"), days)]);
  const other = result.kvByOwner.get("other");
  if (other !== undefined) rows.push(["other keys / list", ...perDay(other, days)]);
  const callerRows = [...result.kvByCaller].map(([caller, counts]) => [`by ${caller}`, ...perDay(counts, days)]);
  const all = [...result.kvByOwner.values()].reduce<OperationCounts>(
    (sum, counts) => ({
      reads: sum.reads + counts.reads,
      getCalls: sum.getCalls + counts.getCalls,
      writes: sum.writes + counts.writes,
      failedWrites: sum.failedWrites + counts.failedWrites,
      deletes: sum.deletes + counts.deletes,
      lists: sum.lists + counts.lists,
    }),
    { reads: 0, getCalls: 0, writes: 0, failedWrites: 0, deletes: 0, lists: 0 },
  );
  rows.push(["total", ...perDay(all, days)], ...callerRows);
  const quota = result.config.plan === "free" ? "free plan: 1,000 writes, 100,000 reads, 1,000 lists a day" : "paid plan";
  const calls = [...result.kvByCaller].map(([caller, counts]) => `${caller} ${(counts.getCalls / days).toFixed(0)}`).join(", ");
  return `${table(["KV per day (keys by owner)", "reads", "writes", "failed writes", "deletes", "lists"], rows)}\n(${quota}; a bulk get of n keys counts n reads; get calls a day: ${calls})`;
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
    `config: plan ${result.config.plan}, refresh ${result.config.timing.refreshSeconds} s, KV lag ${result.config.timing.kvLagSeconds} s, confirm ${result.config.timing.confirmSeconds} s, settle ${result.config.timing.settleSeconds} s, repeat ${result.config.alerts.repeatMinutes} min; darkAfter ${darkAfter}`,
    "",
    formatMatrix(result),
    "",
    "real: episodes long enough that the configuration promises a page, with the deadline check-config states (budget.ts);",
    "late:cron = decided late by no more than the cron's own late/skipped ticks; late:tg = decided in time, delivered late by Telegram faults;",
    "dup:kv = an alert sent twice where KV explains it: two ticks ran at once (no compare-and-swap) or the sender's read of cron:state was still stale after settling;",
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
  const ticks = result.ticks;
  lines.push(
    `cron: ${ticks.scheduled} minutes, ${ticks.ran} runs (${ticks.skipped} skipped, ${ticks.late} late 5-50 s, ${ticks.duplicated} run twice); outcomes ${[...ticks.outcomes].map(([name, count]) => `${name} ${count}`).join(", ")}`,
    `telegram: ${result.telegram.calls} calls, ${result.telegram.delivered} delivered; ${[...result.telegram.outcomes].map(([name, count]) => `${name} ${count}`).join(", ")}; outages ${result.telegram.outages.map((outage) => iso(outage.from)).join(", ")} (60 min)`,
    `KV: write quota exhausted ${result.kvQuotaOutages.map((outage) => `${iso(outage.from)}-${iso(outage.until).slice(11)}`).join(", ")}; reads ${result.kvStaleness.reads}, stale ${result.kvStaleness.stale} (>30 s ${result.kvStaleness.over30s}, >60 s ${result.kvStaleness.over60s}), stalest ${(result.kvStaleness.maxMs / 1000).toFixed(1)} s`,
    `pings answered: ${[...result.pingAnswers].map(([answer, count]) => `${answer} ${count}`).join(", ")}`,
    `notices: ${[...result.notices].map(([name, count]) => `${name} ${count}`).join(", ")}`,
    "",
    formatKv(result),
  );
  if (result.logs.size > 0) {
    lines.push("", "product log lines (grouped):", ...[...result.logs].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([line, count]) => `  ${String(count).padStart(6)}  ${line}`));
  }
  if (result.failures.length > 0) lines.push("", `FAILURES (${result.failures.length}):`, ...result.failures.slice(0, 10));
  lines.push("", `run time: ${(result.runMs / 1000).toFixed(1)} s`);
  return lines.join("\n");
}
