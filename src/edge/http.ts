// What every route shares: the Hono environment, the error a client's mistake becomes,
// the operator's credentials (the STATUS_TOKEN, or a status page session signed with it),
// and the one way to call the monitor object.
import type { Context } from "hono";
import { getCookie } from "hono/cookie";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Config } from "../config.ts";
import { unreachableReason } from "../monitor/stub.ts";
import { SESSION_COOKIE, verifyPass } from "../status/session.ts";
import { timingSafeEqualHex } from "./signature.ts";

export type AppEnv = { Bindings: Env; Variables: { config: Config } };

/** A client's mistake, answered as `{ok: false, error, field?}` with its status. */
export class RequestError extends HTTPException {
  readonly error: string;
  readonly field: string | undefined;

  constructor(status: ContentfulStatusCode, error: string, field?: string) {
    super(status, { message: error });
    this.error = error;
    this.field = field;
  }
}

/** Compares bearer tokens in constant time by comparing their digests. */
export async function tokensEqual(a: string, b: string): Promise<boolean> {
  const digest = async (text: string) =>
    Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))), (byte) =>
      byte.toString(16).padStart(2, "0"),
    ).join("");
  return timingSafeEqualHex(await digest(a), await digest(b));
}

/**
 * Whether the request comes from the operator: `Authorization: Bearer <STATUS_TOKEN>`
 * (scripts, curl) or a status page session cookie (the browser).
 */
export async function isOperator(c: Context<AppEnv>, now: number): Promise<boolean> {
  const token = c.env.STATUS_TOKEN;
  if (!token) return false;
  const bearer = c.req.header("authorization");
  if (bearer !== undefined) return tokensEqual(bearer.replace(/^Bearer\s+/i, ""), token);
  const session = getCookie(c, SESSION_COOKIE);
  return session !== undefined && (await verifyPass(token, "session", session, now)) !== null;
}

export async function requireOperator(c: Context<AppEnv>, now: number): Promise<void> {
  if (!(await isOperator(c, now))) {
    throw new RequestError(401, c.env.STATUS_TOKEN ? "send Authorization: Bearer <STATUS_TOKEN>" : "STATUS_TOKEN is not set on the Worker: wrangler secret put STATUS_TOKEN");
  }
}

/**
 * Calls the monitor object. When it cannot be reached (a daily quota ran out, an
 * overload) the caller gets a 503 naming why, never a 500, and nothing else is tried.
 */
export async function callMonitor<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof RequestError) throw error;
    throw new RequestError(503, `witness monitor unavailable, retry later: ${unreachableReason(error)}`);
  }
}
