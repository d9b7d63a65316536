// `npm run host-secret -- <hostId>` prints the secret a host's agent signs with. It is
// derived from the Worker's master key, so adding a host needs no new Worker secret.
// The master key comes from WITNESS_MASTER_KEY, or --master-key-file, or .dev.vars.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { HOST_ID_PATTERN } from "../src/protocol.ts";
import { deriveHostSecret } from "../src/edge/signature.ts";

function masterKeyFromDevVars(path: string): string | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return null;
  }
  const match = /^\s*WITNESS_MASTER_KEY\s*=\s*"?([^"\n]+)"?\s*$/m.exec(text);
  return match?.[1]?.trim() ?? null;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { "master-key-file": { type: "string" }, help: { type: "boolean", short: "h", default: false } },
  });
  const hostId = positionals[0];
  if (values.help || hostId === undefined) {
    console.error("usage: npm run host-secret -- <hostId> [--master-key-file FILE]   (or set WITNESS_MASTER_KEY)");
    return values.help ? 0 : 2;
  }
  if (!HOST_ID_PATTERN.test(hostId)) {
    console.error(`host-secret: "${hostId}" is not a valid host id (a-z, 0-9, '.', '_', '-'; up to 63 characters)`);
    return 2;
  }
  const fromFile = values["master-key-file"] ? readFileSync(values["master-key-file"], "utf8").trim() : null;
  const masterKey = fromFile ?? process.env["WITNESS_MASTER_KEY"] ?? masterKeyFromDevVars(".dev.vars");
  if (!masterKey) {
    console.error("host-secret: no master key: set WITNESS_MASTER_KEY, pass --master-key-file, or put it in .dev.vars");
    return 2;
  }
  console.log(await deriveHostSecret(masterKey, hostId));
  return 0;
}

process.exitCode = await main();
