// Scoring: what reached the phone against what really happened. Pages are read from the
// delivered Telegram texts (what the operator sees), matched to the ground-truth
// episodes (truth.ts), and counted per condition: promised incidents paged in time or
// late, missed ones, false pages (no real episode anywhere near), duplicates (one episode
// alerted twice; configured repeats and reminders are counted apart), recoveries.
import { CONDITIONS, type ConditionKind } from "../src/judge/judge.ts";
import type { Episode } from "./truth.ts";

export type PageType = "alert" | "repeat" | "reminder" | "recovery";

export interface PageLine {
  /** When the phone got it. */
  at: number;
  /** When the cron decided it (the tick whose plan queued it); `at` until matched. */
  decidedAt: number;
  /** The tick that delivered it. */
  deliveredBy: number;
  hostId: string;
  kind: ConditionKind;
  type: PageType;
  line: string;
}

export interface Decision {
  at: number;
  hostId: string;
  kind: ConditionKind;
  type: PageType;
  tick: number;
}

const LABELS: Record<string, ConditionKind> = {
  DARK: "dark",
  STALE: "stale",
  FAILING: "failing",
  "HEARTBEAT UNREADABLE": "heartbeat_unreadable",
  "CIRCUIT UNREADABLE": "circuit_unreadable",
  "CIRCUIT TRIPPED": "tripped",
  "CLOCK SKEW": "skewed",
};
const ICONS: Record<string, PageType> = { "🔴": "alert", "🔁": "repeat", "⏸️": "reminder", "✅": "recovery" };
const LINE = /^(🔴|🔁|⏸️|✅) <b>([^<]+)<\/b> (?:still )?(DARK|STALE|FAILING|HEARTBEAT UNREADABLE|CIRCUIT UNREADABLE|CIRCUIT TRIPPED|CLOCK SKEW)\b/u;

/** The alert, repeat, reminder and recovery lines in delivered messages. */
export function parsePages(delivered: ReadonlyArray<{ at: number; text: string; tick: number }>): PageLine[] {
  const pages: PageLine[] = [];
  for (const message of delivered) {
    for (const line of message.text.split("\n")) {
      const match = LINE.exec(line);
      if (match === null) continue;
      const type = ICONS[match[1] ?? ""];
      const kind = LABELS[match[3] ?? ""];
      const hostId = match[2];
      if (type === undefined || kind === undefined || hostId === undefined) continue;
      pages.push({ at: message.at, decidedAt: message.at, deliveredBy: message.tick, hostId, kind, type, line });
    }
  }
  return pages;
}

/**
 * Gives each delivered line the tick that decided it. The outbox delivers in order, so
 * the n-th delivered line of a host, condition and type is the n-th such decision.
 */
export function attachDecisions(pages: PageLine[], decisions: readonly Decision[]): void {
  const queues = new Map<string, Decision[]>();
  for (const decision of [...decisions].sort((a, b) => a.at - b.at)) {
    const key = `${decision.hostId}|${decision.kind}|${decision.type}`;
    let queue = queues.get(key);
    if (queue === undefined) {
      queue = [];
      queues.set(key, queue);
    }
    queue.push(decision);
  }
  const lastByLine = new Map<string, PageLine>();
  for (const page of [...pages].sort((a, b) => a.at - b.at)) {
    const queue = queues.get(`${page.hostId}|${page.kind}|${page.type}`) ?? [];
    const decision = queue[0];
    const earlier = lastByLine.get(page.line);
    if (earlier !== undefined && page.at - earlier.at <= RESENT_WITHIN_MS && (decision === undefined || decision.at > page.at)) {
      // No tick decided it again: a queued message sent a second time from an outbox
      // that did not yet show it as sent. It was decided when the first copy was.
      page.decidedAt = earlier.decidedAt;
    } else if (decision !== undefined && decision.at <= page.at) {
      queue.shift();
      page.decidedAt = decision.at;
    }
    lastByLine.set(page.line, page);
  }
}

/** Messages that are not pages: the first-tick hello, digests, degraded notices. */
export function classifyNotices(delivered: ReadonlyArray<{ text: string }>): Map<string, number> {
  const notices = new Map<string, number>();
  const add = (name: string) => notices.set(name, (notices.get(name) ?? 0) + 1);
  for (const { text } of delivered) {
    if (text.startsWith("👋")) add("watching");
    else if (text.startsWith("⚠️ <b>witness degraded")) add("degraded");
    else if (text.startsWith("⚠️ <b>witness</b> could not be reached")) add("degraded over");
    else if (text.startsWith("☀️")) add("daily digest");
    else if (text.startsWith("⚠️ <b>witness is degraded")) add("degraded");
    else if (text.includes("Workers KV answers again")) add("degraded over");
    else if (text.includes("undelivered message(s) were dropped")) add("dropped-pages notice");
    else if (!LINE.test(text.split("\n")[1] ?? "")) add("other");
  }
  return notices;
}

export interface ConditionScore {
  kind: ConditionKind;
  /** Episodes the configuration promises to page, whose deadline fell inside the run. */
  promised: number;
  inTime: number;
  /** Decided in time, delivered late because Telegram failed. */
  lateTelegram: number;
  /** Late only where the alarm path failed (failover, lost, thrown): within the cron-path bound. */
  lateCron: number;
  late: number;
  missed: number;
  /**
   * Not paged, where the alarm path failed and the episode was over before the cron-path
   * bound (check-config's "if alarms fail" figure) came: nothing promised it a page then.
   */
  missedAlarm: number;
  falsePages: number;
  duplicates: number;
  /** Real episodes too short to be promised a page, and how many were paged anyway. */
  short: number;
  shortPaged: number;
  /** The shortest such episode that was paged anyway, ms. */
  shortestPagedMs: number | null;
  repeats: number;
  reminders: number;
  recoveriesExpected: number;
  recovered: number;
  prematureRecoveries: number;
  /** Incident start to the page on the phone, ms, for promised episodes that were paged. */
  delaysMs: number[];
  notes: string[];
}

export interface ScoreInput {
  episodes: readonly Episode[];
  pages: readonly PageLine[];
  runStart: number;
  runEnd: number;
  /**
   * How long after an episode's end a page decided from the last ping before it may still
   * arrive; for a recovery, the clean pings that confirm it too.
   */
  postSlackMs: (hostId: string, kind: string) => number;
  /** The monitor's runs in [from, to], one line, to explain a finding. */
  explain: (from: number, to: number) => string;
  /**
   * Why a page that reached the phone after its bound is excused, or null (then it is
   * late): "telegram" when it was decided in time and Telegram's faults held it back;
   * "alarm" when the alarm path failed near it (a failover, a lost or thrown alarm) and
   * it still came within the cron-path bound (plus the cron's own late or skipped minutes).
   */
  lateExcuse: (late: { hostId: string; from: number; deadline: number; decidedAt: number; deliveredAt: number }) => "telegram" | "alarm" | null;
  /** Whether an unpaged episode is excused: the alarm path failed, and it ended (endAt) before the cron-path bound. */
  missExcuse: (missed: { hostId: string; from: number; deadline: number; endAt: number | null }) => boolean;
}

/** A phone's round trip to Telegram: a page decided at the deadline lands a little after it. */
const DELIVERY_GRACE_MS = 10_000;
const MAX_NOTES = 8;
/** A message sent again from an outbox that did not yet show it sent goes within a few ticks. */
const RESENT_WITHIN_MS = 10 * 60_000;

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
}

function minutesText(ms: number): string {
  return `${(ms / 60_000).toFixed(1)} min`;
}

export function score(input: ScoreInput): ConditionScore[] {
  return CONDITIONS.map((kind) => scoreCondition(kind, input));
}

function scoreCondition(kind: ConditionKind, input: ScoreInput): ConditionScore {
  const result: ConditionScore = {
    kind,
    promised: 0,
    inTime: 0,
    lateTelegram: 0,
    lateCron: 0,
    late: 0,
    missed: 0,
    missedAlarm: 0,
    falsePages: 0,
    duplicates: 0,
    short: 0,
    shortPaged: 0,
    shortestPagedMs: null,
    repeats: 0,
    reminders: 0,
    recoveriesExpected: 0,
    recovered: 0,
    prematureRecoveries: 0,
    delaysMs: [],
    notes: [],
  };
  const note = (text: string) => {
    if (result.notes.length < MAX_NOTES) result.notes.push(text);
  };
  const episodes = input.episodes.filter((episode) => episode.kind === kind);
  const endAnchor = (episode: Episode): number | null => (kind === "dark" ? (episode.firstPingAfter ?? episode.end) : episode.end);
  const windowOf = (episode: Episode): { from: number; to: number } => {
    const from = kind === "dark" ? (episode.lastPingBefore ?? episode.start) : episode.start - 5000;
    const anchor = endAnchor(episode);
    return { from, to: anchor === null ? Infinity : anchor + input.postSlackMs(episode.hostId, kind) };
  };
  const matchEpisode = (hostId: string, at: number): Episode | undefined => {
    let best: Episode | undefined;
    for (const episode of episodes) {
      if (episode.hostId !== hostId) continue;
      const window = windowOf(episode);
      if (at < window.from || at > window.to) continue;
      if (best === undefined || windowOf(best).from < window.from) best = episode;
    }
    return best;
  };

  const alertsBy = new Map<Episode, PageLine[]>();
  const recoveriesBy = new Map<Episode, PageLine[]>();
  for (const page of input.pages) {
    if (page.kind !== kind) continue;
    // Matched by when it was decided: Telegram may hold a page back for an hour.
    const episode = matchEpisode(page.hostId, page.decidedAt);
    if (page.type === "recovery") {
      if (episode === undefined) {
        result.prematureRecoveries++;
        note(`recovery with no episode: ${page.hostId} at ${iso(page.at)}: ${page.line}`);
        continue;
      }
      const anchor = endAnchor(episode);
      if (anchor === null || page.decidedAt < anchor - 5000) {
        result.prematureRecoveries++;
        note(`premature recovery: ${page.hostId} at ${iso(page.at)}, episode from ${iso(episode.start)} still on: ${page.line}`);
        continue;
      }
      recoveriesBy.set(episode, [...(recoveriesBy.get(episode) ?? []), page]);
      continue;
    }
    if (episode === undefined) {
      result.falsePages++;
      note(`false ${page.type}: ${page.hostId} at ${iso(page.at)}: ${page.line}; runs: ${input.explain(page.at - 150_000, page.at)}`);
      continue;
    }
    if (page.type === "repeat") result.repeats++;
    else if (page.type === "reminder") result.reminders++;
    else alertsBy.set(episode, [...(alertsBy.get(episode) ?? []), page]);
  }

  for (const episode of episodes) {
    const alerts = alertsBy.get(episode) ?? [];
    for (const extra of alerts.slice(1)) {
      result.duplicates++;
      note(
        `duplicate: ${episode.hostId} ${kind} from ${iso(episode.start)} alerted at ${alerts.map((page) => iso(page.decidedAt)).join(", ")}; ` +
          `runs: ${input.explain(extra.decidedAt - 150_000, extra.decidedAt)}`,
      );
    }
    const anchor = endAnchor(episode);
    if (alerts.length > 0 && anchor !== null && anchor + input.postSlackMs(episode.hostId, kind) <= input.runEnd) {
      result.recoveriesExpected++;
      if ((recoveriesBy.get(episode) ?? []).length > 0) result.recovered++;
      else note(`no recovery: ${episode.hostId} ${kind} from ${iso(episode.start)} to ${iso(anchor)} was paged but never recovered`);
    }
    if (!episode.promised || episode.deadline === null) {
      // Too short to be promised a page; one that ran into the end of the run is not counted.
      if (episode.end !== null) {
        result.short++;
        if (alerts.length > 0) {
          result.shortPaged++;
          const lengthMs = (endAnchor(episode) ?? episode.end) - (kind === "dark" ? (episode.lastPingBefore ?? episode.start) : episode.start);
          result.shortestPagedMs = Math.min(result.shortestPagedMs ?? Infinity, lengthMs);
        }
      }
      continue;
    }
    const deadline = episode.deadline;
    if (deadline > input.runEnd - DELIVERY_GRACE_MS) continue;
    result.promised++;
    const first = alerts[0];
    if (first === undefined && input.missExcuse({ hostId: episode.hostId, from: episode.start, deadline, endAt: anchor })) {
      result.missedAlarm++;
      note(`missed (alarm failed, over before the cron-path bound): ${episode.hostId} ${kind} from ${iso(episode.start)} to ${anchor === null ? "the end" : iso(anchor)} (alarm-path page due by ${iso(deadline)})`);
      continue;
    }
    if (first === undefined) {
      result.missed++;
      note(
        `missed: ${episode.hostId} ${kind} from ${iso(episode.start)} to ${episode.end === null ? "the end" : iso(episode.end)} (page due by ${iso(deadline)}); ` +
          `runs: ${input.explain(episode.start, deadline)}`,
      );
      continue;
    }
    result.delaysMs.push(first.at - episode.start);
    if (first.at <= deadline + DELIVERY_GRACE_MS) {
      result.inTime++;
      continue;
    }
    const decided = first.decidedAt;
    const lateBy = `${minutesText(first.at - deadline)} after the bound`;
    const excuse = input.lateExcuse({ hostId: episode.hostId, from: episode.start, deadline, decidedAt: decided, deliveredAt: first.at });
    if (excuse === "telegram") {
      result.lateTelegram++;
      note(`late (Telegram): ${episode.hostId} ${kind} from ${iso(episode.start)}: decided ${iso(decided)}, delivered ${iso(first.at)}, ${lateBy}`);
    } else if (excuse === "alarm") {
      result.lateCron++;
      note(`late (alarm failed, cron path): ${episode.hostId} ${kind} from ${iso(episode.start)}: decided ${iso(decided)}, delivered ${iso(first.at)}, ${lateBy}`);
    } else {
      result.late++;
      note(`late: ${episode.hostId} ${kind} from ${iso(episode.start)}: decided ${iso(decided)}, delivered ${iso(first.at)}, ${lateBy}; runs: ${input.explain(episode.start, first.at)}`);
    }
  }
  return result;
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const low = sorted[middle - 1];
  const high = sorted[middle];
  if (high === undefined) return null;
  return sorted.length % 2 === 1 || low === undefined ? high : (low + high) / 2;
}
