// POST over node:http / node:https, answering with the slice of a fetch Response the
// agent reads (status, headers.get, text). Global fetch would do, but it loads undici
// and its WebAssembly HTTP parser on first use, which costs the agent about 10 MiB of
// resident memory on Node 22 and 25 MiB on Node 18, for one small request a minute.
// node:https (tls, and its share of OpenSSL) is loaded with the first https request, so
// an agent pointed at a plain-http URL (a local Worker) never holds it.
import { request as httpRequest, type IncomingMessage } from "node:http";
import type { SecureContext } from "node:tls";
import type { FetchLike, ResponseLike } from "./push.ts";

/** The Worker answers in a few hundred bytes; anything past this is not the Worker. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * One TLS context for every push. Without it each new connection builds its own OpenSSL
 * context, freed only when V8 happens to collect the small object holding it: pushing
 * once a second over https, Node 22's resident memory climbed 9 MiB in 240 pushes
 * without it and 6 MiB with it (docs/benchmarks.md). The rest was each connection's own
 * OpenSSL state, held the same way: the loop now asks for a full collection every 10
 * pushes (run.ts), and `socket.destroy()` after the response frees none of it.
 */
let secureContext: SecureContext | undefined;

export const httpPost: FetchLike = async (url, init) => {
  const target = new URL(url);
  let send = httpRequest;
  if (target.protocol === "https:") {
    const [https, tls] = await Promise.all([import("node:https"), import("node:tls")]);
    secureContext ??= tls.createSecureContext();
    send = https.request;
  }
  return new Promise<ResponseLike>((resolve, reject) => {
    const request = send(
      target,
      {
        ...(target.protocol === "https:" && secureContext !== undefined ? { secureContext } : {}),
        method: init.method,
        headers: { ...init.headers, "content-length": String(Buffer.byteLength(init.body, "utf8")) },
        signal: init.signal,
        // A new connection per push: a kept-alive socket the far end closed while we
        // slept would fail the next push and read as an outage.
        agent: false,
      },
      (response) => {
        readBody(response).then(
          (text) => resolve({ status: response.statusCode ?? 0, headers: headerReader(response), text: () => Promise.resolve(text) }),
          reject,
        );
      },
    );
    request.on("error", reject);
    request.end(init.body, "utf8");
  });
};

function readBody(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    response.on("data", (chunk: Buffer) => {
      if (length >= MAX_RESPONSE_BYTES) return;
      chunks.push(chunk);
      length += chunk.length;
    });
    response.on("end", () => resolve(Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES).toString("utf8")));
    response.on("error", reject);
    response.on("aborted", () => reject(new Error("the response was cut off")));
  });
}

function headerReader(response: IncomingMessage): ResponseLike["headers"] {
  return {
    get(name) {
      const value = response.headers[name.toLowerCase()];
      if (value === undefined) return null;
      return Array.isArray(value) ? value.join(", ") : value;
    },
  };
}
