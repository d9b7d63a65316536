// What the operator's phone shows for a Telegram HTML message, as plain text: tags
// dropped (bold kept bold on a terminal that can show it), entities decoded. Pure, so
// the console stand-in, the demo's timeline and the tests all read messages alike.

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'", apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39|apos);/g, (_match, name: string) => ENTITIES[name] ?? "");
}

export interface PhoneTextOptions {
  /** Wrap bold text in ANSI bold (for a terminal); otherwise bold is plain text. */
  ansi?: boolean;
}

/** Telegram HTML → the text a phone displays. */
export function phoneText(html: string, options: PhoneTextOptions = {}): string {
  const bold = options.ansi === true ? ["\u001b[1m", "\u001b[22m"] : ["", ""];
  const withBold = html.replace(/<(b|strong)>/g, bold[0] ?? "").replace(/<\/(b|strong)>/g, bold[1] ?? "");
  // <a href> shows its text; every other tag Telegram allows is only styling.
  return decodeEntities(withBold.replace(/<\/?[a-z][^>]*>/gi, ""));
}

export interface EventLine {
  /** 🔴 alert, 🔁 repeat, ⏸️ reminder, ✅ recovery. */
  icon: string;
  hostId: string;
  /** The whole line as the phone shows it. */
  text: string;
}

const EVENT_ICONS = ["🔴", "🔁", "⏸️", "✅"];

/**
 * The per-host event lines of tick messages, in order. A tick's message lists every
 * host that changed, so tests and the timeline pick out one host's lines from it; the
 * heading and notices such as "witness is watching" are not event lines.
 */
export function eventLines(messagesHtml: readonly string[], hostId?: string): EventLine[] {
  const lines: EventLine[] = [];
  for (const html of messagesHtml) {
    for (const line of html.split("\n")) {
      const match = /^(\S+) <b>([^<]+)<\/b> /.exec(line);
      if (match === null) continue;
      const [, icon = "", escapedHost = ""] = match;
      if (!EVENT_ICONS.includes(icon)) continue;
      const host = decodeEntities(escapedHost);
      if (hostId !== undefined && host !== hostId) continue;
      lines.push({ icon, hostId: host, text: phoneText(line) });
    }
  }
  return lines;
}
