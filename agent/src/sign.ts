// The ping signature: lowercase hex HMAC-SHA256 over `<timestampMs>.<rawBody>`, keyed
// with the UTF-8 bytes of the host secret. Same bytes as src/edge/signature.ts computes on
// WebCrypto; node:crypto here because Node 18 has no global WebCrypto by default.
import { createHmac } from "node:crypto";

export function signPing(secret: string, timestampMs: string, rawBody: string): string {
  return createHmac("sha256", Buffer.from(secret, "utf8")).update(`${timestampMs}.${rawBody}`, "utf8").digest("hex");
}
