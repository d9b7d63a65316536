// Bundles the Node agent into one file, dist/witness-agent.mjs: ESM for Node 18+, so the
// host needs no node_modules. The agent takes only types from the shared protocol (its
// run-time checks are agent/src/wire.ts): zod in the bundle tripled its size and its
// resident memory, so the build refuses a bundle that pulls zod in again.
// Usage: node scripts/build-agent.mjs [--outfile <path>]
import { chmod, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: { outfile: { type: "string" } } });
const outfile = resolve(values.outfile ?? join(root, "dist", "witness-agent.mjs"));
const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8"));

const result = await build({
  entryPoints: [join(root, "agent", "src", "main.ts")],
  outfile,
  bundle: true,
  platform: "node",
  target: "node18",
  format: "esm",
  banner: { js: "#!/usr/bin/env node" },
  define: { __WITNESS_AGENT_VERSION__: JSON.stringify(pkg.version) },
  legalComments: "none",
  // Smaller and faster to start; identifiers are kept so stack traces stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: "warning",
  metafile: true,
});
await chmod(outfile, 0o755);

// Zero runtime dependencies: everything but node: built-ins must be inlined.
const external = Object.values(result.metafile.outputs)
  .flatMap((output) => output.imports)
  .filter((entry) => entry.external && !entry.path.startsWith("node:"));
if (external.length > 0) {
  console.error(`build-agent: the bundle imports ${external.map((entry) => entry.path).join(", ")}; it must have no runtime dependencies`);
  process.exit(1);
}
const zodInputs = Object.keys(result.metafile.inputs).filter((path) => path.includes("node_modules/zod/"));
if (zodInputs.length > 0) {
  console.error(`build-agent: the bundle includes zod (${zodInputs.length} files); import only types from src/protocol.ts in agent/src, and check at run time with agent/src/wire.ts`);
  process.exit(1);
}
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
console.log(`built ${outfile} (${Math.round(bytes / 1024)} KiB)`);
