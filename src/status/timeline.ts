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

/** What one drawn rectangle stands for: one incident, or several too close to tell apart at the bar's scale. */
export interface DrawnSpan extends Span {
  /** Incidents merged into it. */
  count: number;
  /** Their total length, ms (less than to - from when there were gaps). */
  totalMs: number;
}

/**
 * Merges spans of one lane that lie within `resolutionMs` of each other: at a week on
 * a few hundred pixels, a flapping hour is one mark, not sixty hair-thin ones (and the
 * page stays small and fast to render).
 */
export function mergeForDrawing(spans: readonly Span[], resolutionMs: number, maxDrawn = MAX_DRAWN): DrawnSpan[] {
  // A host that flapped all week would still be hundreds of marks: coarsen until it is not.
  for (let resolution = resolutionMs; ; resolution *= 2) {
    const drawn = mergeAt(spans, resolution);
    if (drawn.length <= maxDrawn || resolution > 7 * 86_400_000) return drawn;
  }
}

/** Marks one host's bar draws at most: beyond this they would be too thin to tell apart. */
export const MAX_DRAWN = 24;

function mergeAt(spans: readonly Span[], resolutionMs: number): DrawnSpan[] {
  const byLane = new Map<Lane, DrawnSpan>();
  const drawn: DrawnSpan[] = [];
  for (const span of [...spans].sort((a, b) => a.from - b.from)) {
    const last = byLane.get(span.lane);
    if (last !== undefined && span.from - last.to <= resolutionMs) {
      last.to = Math.max(last.to, span.to);
      last.open ||= span.open;
      last.count += 1;
      last.totalMs += span.to - span.from;
      if (last.kind !== span.kind) last.kind = span.lane;
      continue;
    }
    const fresh: DrawnSpan = { ...span, count: 1, totalMs: span.to - span.from };
    byLane.set(span.lane, fresh);
    drawn.push(fresh);
  }
  return drawn;
}
