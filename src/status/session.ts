// Who may see the status page. STATUS_TOKEN is the one secret, and it never leaves the
// operator's hands: the page signs a session with it, and the bot's /status reply
// carries a link signed with it that lasts a day. Both are `<expiresAt>.<hmac>`, HMAC-SHA256
// keyed by the token over a purpose and the expiry, so rotating STATUS_TOKEN ends every
// session and every link at once, and nothing needs storing.

export const SESSION_COOKIE = "witness_session";
/** A sign-in with the token itself lasts this long on that browser. */
export const FORM_SESSION_MS = 7 * 86_400_000;
/** A link from the bot signs in for a day: it sits in the chat's history. */
export const LINK_MS = 86_400_000;

type Purpose = "session" | "link";

async function hmacKey(token: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", new TextEncoder().encode(token), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function unhex(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^(?:[0-9a-f]{2})+$/.test(text)) return null;
  const bytes = new Uint8Array(new ArrayBuffer(text.length / 2));
  for (let index = 0; index < bytes.length; index++) bytes[index] = Number.parseInt(text.slice(index * 2, index * 2 + 2), 16);
  return bytes;
}

/** A signed pass for `purpose` that expires at `expiresAt` (Unix ms). */
export async function signPass(token: string, purpose: Purpose, expiresAt: number): Promise<string> {
  const signature = await crypto.subtle.sign("HMAC", await hmacKey(token), new TextEncoder().encode(`witness-${purpose}:${expiresAt}`));
  return `${expiresAt}.${hex(signature)}`;
}

/** The pass's expiry when it is genuine, for `purpose`, and not yet expired; else null. */
export async function verifyPass(token: string, purpose: Purpose, pass: string, now: number): Promise<number | null> {
  const match = /^(\d{13,16})\.([0-9a-f]{64})$/.exec(pass);
  if (match === null || token === "") return null;
  const expiresAt = Number(match[1]);
  const signature = unhex(match[2] ?? "");
  if (signature === null || expiresAt <= now) return null;
  // verify() compares in constant time.
  const genuine = await crypto.subtle.verify("HMAC", await hmacKey(token), signature, new TextEncoder().encode(`witness-${purpose}:${expiresAt}`));
  return genuine ? expiresAt : null;
}

/** The bot's sign-in link: opening it signs in until the link expires. */
export async function signInLink(origin: string, token: string, now: number): Promise<string> {
  return `${origin}/status/sign-in?link=${await signPass(token, "link", now + LINK_MS)}`;
}
