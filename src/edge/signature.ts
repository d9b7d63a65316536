// Ping signatures and per-host secrets, on WebCrypto. A host's secret is derived from
// one master key (HMAC of the host id), so adding a host needs no new Worker secret.
// The agent signs with the secret's text as the HMAC key, which `openssl dgst -hmac`
// can reproduce, so a shell script can be an agent too.

const encoder = new TextEncoder();

async function hmacSha256Hex(key: string, message: string | Uint8Array<ArrayBuffer>): Promise<string> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    encoder.encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", cryptoKey, typeof message === "string" ? encoder.encode(message) : message);
  return toHex(new Uint8Array(mac));
}

function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** The secret an agent signs with: printed by `npm run host-secret -- <hostId>`. */
export function deriveHostSecret(masterKey: string, hostId: string): Promise<string> {
  return hmacSha256Hex(masterKey, `witness/host-secret/v1/${hostId}`);
}

/** Lowercase hex HMAC-SHA256 over `<timestamp>.<raw body bytes>`. */
export function signPing(secret: string, timestampMs: string, rawBody: string | Uint8Array<ArrayBuffer>): Promise<string> {
  const body = typeof rawBody === "string" ? encoder.encode(rawBody) : rawBody;
  const prefix = encoder.encode(`${timestampMs}.`);
  const message = new Uint8Array(prefix.length + body.length);
  message.set(prefix, 0);
  message.set(body, prefix.length);
  return hmacSha256Hex(secret, message);
}

/** Constant-time comparison of two hex strings (length is not secret: always 64). */
export function timingSafeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

export async function verifyPing(
  secret: string,
  timestampMs: string,
  rawBody: string | Uint8Array<ArrayBuffer>,
  signature: string,
): Promise<boolean> {
  const expected = await signPing(secret, timestampMs, rawBody);
  return timingSafeEqualHex(expected, signature.toLowerCase());
}
