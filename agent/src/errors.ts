// Errors that carry a decision. A UserError is the operator's mistake: main() prints
// its one-line message (what is wrong, how to fix it) with no stack trace and exits 2.

export class UserError extends Error {
  override readonly name = "UserError";
}

/** Exit codes, as data so tests and docs agree. */
export const EXIT = {
  ok: 0,
  notAccepted: 1,
  badConfig: 2,
} as const;

/** A short, single-line description of anything thrown, for logs and pings. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const cause = (error as { cause?: unknown }).cause;
    // fetch() wraps the socket error in `cause`; the code there is what helps.
    if (cause instanceof Error) {
      const causeCode = (cause as { code?: unknown }).code;
      return oneLine(typeof causeCode === "string" ? `${causeCode}: ${cause.message}` : cause.message);
    }
    return oneLine(typeof code === "string" && !error.message.startsWith(code) ? `${code}: ${error.message}` : error.message);
  }
  return oneLine(String(error));
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

export function truncate(text: string, maxLength: number): string {
  return text.length <= maxLength ? text : `${text.slice(0, maxLength - 1)}…`;
}
