// The history as CSV (RFC 4180) for a spreadsheet or an audit. Host-supplied text ends
// up in cells, so a cell that a spreadsheet would run as a formula is quoted as text.
import type { HistoryEvent } from "../monitor/state.ts";

const COLUMNS = ["at", "at_ms", "host", "type", "kind", "detail", "by"] as const;

function cell(value: string | number | null): string {
  if (value === null) return "";
  let text = String(value);
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function eventsCsv(events: readonly HistoryEvent[]): string {
  const lines = events.map((event) =>
    [new Date(event.at).toISOString(), event.at, event.hostId, event.type, event.kind, event.detail, event.by].map(cell).join(","),
  );
  return [COLUMNS.join(","), ...lines].join("\r\n") + "\r\n";
}
