// Bundles the Node agent into one file, dist/witness-agent.mjs: ESM for Node 18+, with
// zod and the shared protocol inlined, so the host needs no node_modules.
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
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
console.log(`built ${outfile} (${Math.round(bytes / 1024)} KiB)`);
