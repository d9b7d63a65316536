// Small text formats shared by the judge, the pages and the bot's answers, so a
// duration or a clock time reads the same wherever the operator sees it.

/** "45 s", "13 min", "2.5 h": seconds under two minutes, minutes under two hours. */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** A Worker-clock moment as "HH:MM UTC", for the chat. */
export function utcClock(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 16)} UTC`;
}

/** A moment for the chat, seen from `now`: "HH:MM UTC", with the date unless it is within the next day. */
export function utcMoment(ms: number, now: number): string {
  return ms >= now && ms - now < 86_400_000 ? utcClock(ms) : `${new Date(ms).toISOString().slice(0, 10)} ${utcClock(ms)}`;
}

/** An error's message, for a log line or an answer. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
