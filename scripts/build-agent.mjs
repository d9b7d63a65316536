// Bundles the Node agent into one file, dist/witness-agent.mjs: ESM for Node 18+, so the
// host needs no node_modules. The agent takes only types from the shared protocol (its
// run-time checks are agent/src/wire.ts): zod in the bundle tripled its size and its
// resident memory, so the build refuses a bundle that pulls zod in again.
// Built-in modules are loaded with require (see builtinsThroughRequire), not import.
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

/**
 * Turns every `import … from "node:x"` into `require("node:x")` (through createRequire,
 * so the bundle stays one ES module, witness-agent.mjs). An ES import of a built-in makes
 * Node build its ESM facade, which reads every export, lazy ones included: on Node 22
 * `node:http`'s lazy `WebSocket` then loads undici and its WebAssembly HTTP parser, and
 * `node:fs`, `node:util` and `node:crypto` load their lazy parts too, about 13 MiB of
 * resident memory the agent never uses. require returns the module without reading them.
 */
const builtinsThroughRequire = {
  name: "builtins-through-require",
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^node:/ }, (args) =>
      args.namespace === "builtin" ? { path: args.path, external: true } : { path: args.path, namespace: "builtin" },
    );
    pluginBuild.onLoad({ filter: /.*/, namespace: "builtin" }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: "js" }));
  },
};

const result = await build({
  entryPoints: [join(root, "agent", "src", "main.ts")],
  outfile,
  bundle: true,
  platform: "node",
  target: "node18",
  format: "esm",
  // esbuild's require shim calls this `require` (an ES module has none of its own).
  banner: { js: '#!/usr/bin/env node\nimport { createRequire as __witnessCreateRequire } from "node:module";\nconst require = __witnessCreateRequire(import.meta.url);' },
  plugins: [builtinsThroughRequire],
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
// Every built-in must come through require (see builtinsThroughRequire above); an ES import
// of one would bring its lazy exports back (undici on Node 22).
const source = await readFile(outfile, "utf8");
const esImports = [...source.matchAll(/\bimport\s*(?:\{[^}]*\}|\*\s*as\s+\w+|\w+)\s*from\s*["']([^"']+)["']/g)].map((match) => match[1]).filter((path) => path !== "node:module");
if (esImports.length > 0) {
  console.error(`build-agent: the bundle imports ${esImports.join(", ")} as ES modules; built-ins must be loaded with require (builtinsThroughRequire)`);
  process.exit(1);
}
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
console.log(`built ${outfile} (${Math.round(bytes / 1024)} KiB)`);
