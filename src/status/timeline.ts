// A host's last days as spans of trouble, from the monitor's history: an incident opens
// with its page (or when a maintenance window held it back, or a mute silenced it) and
// closes with its recovery (or its unsent clearing). Pure, so the page only draws what this decides.
import type { ConditionKind } from "../judge/judge.ts";
import type { HistoryEvent, HostState } from "../monitor/state.ts";

/** The colours the timeline draws; the unreadable files and a skewed clock share one. */
export type Lane = "dark" | "stale" | "failing" | "tripped" | "other";

export interface Span {
  lane: Lane;
  kind: string;
  from: number;
  to: number;
  /** Still open now. */
  open: boolean;
}

const OPENS: ReadonlySet<string> = new Set(["alert", "held", "silenced"]);
const CLOSES: ReadonlySet<string> = new Set(["recovery", "cleared"]);

export function laneOf(kind: string): Lane {
  return kind === "dark" || kind === "stale" || kind === "failing" || kind === "tripped" ? kind : "other";
}

/**
 * The spans of one host between `from` and `to` (both Worker ms). `events` is the
 * history, oldest first; `state` says what is open now, which ends nothing early: an
 * incident the history saw open but the judgement no longer has closed unrecorded (a
 * recovery while muted), and is drawn up to the host's next recorded event.
 */
export function hostSpans(hostId: string, events: readonly HistoryEvent[], state: HostState | undefined, from: number, to: number): Span[] {
  const spans: Span[] = [];
  const opened = new Map<string, number>();
  const push = (kind: string, start: number, end: number, open: boolean) => {
    const clippedFrom = Math.max(start, from);
    const clippedTo = Math.min(end, to);
    if (clippedTo > clippedFrom) spans.push({ lane: laneOf(kind), kind, from: clippedFrom, to: clippedTo, open });
  };
  for (const event of events) {
    if (event.hostId !== hostId || event.kind === null) continue;
    if (OPENS.has(event.type)) {
      if (!opened.has(event.kind)) opened.set(event.kind, event.at);
    } else if (CLOSES.has(event.type)) {
      // A recovery with no opening in the history began before it: draw from the start.
      push(event.kind, opened.get(event.kind) ?? from, event.at, false);
      opened.delete(event.kind);
    }
  }
  const current = state?.judgement.conditions ?? {};
  for (const [kind, condition] of Object.entries(current) as [ConditionKind, NonNullable<(typeof current)[ConditionKind]>][]) {
    const start = opened.get(kind) ?? condition.pagedAt ?? condition.heldAt ?? null;
    opened.delete(kind);
    if (start !== null) push(kind, start, to, true);
  }
  for (const [kind, start] of opened) {
    const next = events.find((event) => event.hostId === hostId && event.at > start && event.kind !== kind);
    push(kind, start, next?.at ?? start, false);
  }
  return spans.sort((a, b) => a.from - b.from);
}
