// Builds what the phone shows: pure functions from alert events to Telegram HTML.
// Every host-supplied string is escaped here, and no message exceeds Telegram's limit.
import { formatSeconds } from "../format.ts";
import { type AlertEvent, type AlertEventType, type ConditionKind, isProblem, isSent } from "../judge/judge.ts";

/** Telegram's limit is 4096 characters of text; keep a margin for entities. */
export const MAX_MESSAGE_CHARS = 4000;

/** Each condition as the operator reads it, on the phone and on the status page. */
export const CONDITION_LABEL: Record<ConditionKind, string> = {
  dark: "DARK",
  stale: "STALE",
  failing: "FAILING",
  heartbeat_unreadable: "HEARTBEAT UNREADABLE",
  circuit_unreadable: "CIRCUIT UNREADABLE",
  tripped: "CIRCUIT TRIPPED",
  skewed: "CLOCK SKEW",
};

const ICON: Record<AlertEventType, string> = { alert: "🔴", repeat: "🔁", reminder: "⏸️", recovery: "✅", held: "🛠", silenced: "🔕", cleared: "🛠" };

export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Pages now come within seconds, so a short incident's length is said in seconds. */
function duration(ms: number): string {
  return formatSeconds(ms / 1000);
}

export function eventLine(event: AlertEvent): string {
  const host = `<b>${escapeHtml(event.hostId)}</b>`;
  const label = CONDITION_LABEL[event.kind];
  const detail = escapeHtml(event.detail);
  switch (event.type) {
    case "alert":
      return `${ICON.alert} ${host} ${label}: ${detail}`;
    case "repeat":
      return `${ICON.repeat} ${host} still ${label} (unacknowledged): ${detail}`;
    case "reminder":
      return `${ICON.reminder} ${host} still ${label}: ${detail}`;
    case "recovery":
      return `${ICON.recovery} ${host} ${label} over after ${duration(event.durationMs ?? 0)}: ${detail}`;
    // Never sent (renderTick drops them); worded for the history and for tests.
    case "held":
      return `${ICON.held} ${host} ${label} held, not paged: ${detail}`;
    case "silenced":
      return `${ICON.silenced} ${host} ${label} while muted, not paged: ${detail}`;
    case "cleared":
      return `${ICON.cleared} ${host} ${label} over unsent (muted or in maintenance) after ${duration(event.durationMs ?? 0)}: ${detail}`;
  }
}

/**
 * One tick's changes as one message (more only if they would not fit in one): alert
 * events first, then notes (follow-ups on the operator's own actions). Events held by a
 * maintenance window are left out.
 */
export function renderTick(allEvents: readonly AlertEvent[], notes: readonly string[] = []): string[] {
  // What a maintenance window held is history, not a message.
  const events = allEvents.filter(isSent);
  if (events.length === 0 && notes.length === 0) return [];
  const alerts = events.filter(isProblem).length;
  const heading =
    alerts > 0
      ? `<b>witness</b>: ${alerts} ${alerts === 1 ? "problem" : "problems"}`
      : events.length > 0
        ? "<b>witness</b>: recovered"
        : "<b>witness</b>";
  return splitLines(heading, [...events.map(eventLine), ...notes]);
}

/** Joins lines under a heading into messages of at most MAX_MESSAGE_CHARS, splitting between lines. */
export function splitLines(heading: string, lines: readonly string[]): string[] {
  const messages: string[] = [];
  let current = heading;
  for (const rawLine of lines) {
    const line = rawLine.length > MAX_MESSAGE_CHARS - heading.length - 20 ? truncateHtmlLine(rawLine, MAX_MESSAGE_CHARS - heading.length - 20) : rawLine;
    if (current.length + 1 + line.length > MAX_MESSAGE_CHARS) {
      messages.push(current);
      current = `${heading} (continued)`;
    }
    current += `\n${line}`;
  }
  messages.push(current);
  return messages;
}

/** Cuts an over-long line without leaving a broken entity or an unclosed tag behind. */
function truncateHtmlLine(line: string, max: number): string {
  let cut = line.slice(0, max);
  const amp = cut.lastIndexOf("&");
  if (amp > cut.lastIndexOf(";")) cut = cut.slice(0, amp);
  const open = cut.lastIndexOf("<");
  if (open > cut.lastIndexOf(">")) cut = cut.slice(0, open);
  const unclosedBold = (cut.match(/<b>/g) ?? []).length > (cut.match(/<\/b>/g) ?? []).length;
  return `${cut}…${unclosedBold ? "</b>" : ""}`;
}

export function renderConfigError(message: string): string {
  return `⚠️ <b>witness is misconfigured</b> and is not watching any host.\n${escapeHtml(message)}\nFix wrangler.toml ([vars.WITNESS_CONFIG]), run <code>npm run check-config</code>, then redeploy.`;
}

export function renderDegraded(reason: string, since: number): string {
  return (
    `⚠️ <b>witness degraded</b> since ${new Date(since).toISOString().replace(/\.\d+Z$/, "Z")}: the monitor cannot be reached (${escapeHtml(reason)}). ` +
    `Hosts are not being judged and their pings are refused with 503 until it answers again (a daily quota resets at 00:00 UTC). ` +
    `No host will be paged dark for the time nobody could listen.`
  );
}
