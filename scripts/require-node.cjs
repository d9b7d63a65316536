// Runs before every npm script that needs the Worker tool chain. Plain CommonJS with no
// modern syntax, so that any old Node can run it and say what to do in one line
// instead of dying on `.ts` files with a stack trace.
"use strict";
var path = require("path");
var engines = require(path.join(__dirname, "..", "package.json")).engines.node; // ">=22.18"
var needed = engines.replace(/^>=\s*/, "").split(".").map(Number);
var found = process.versions.node.split(".").map(Number);
var older = false;
for (var i = 0; i < needed.length; i++) {
  var a = found[i] || 0;
  var b = needed[i] || 0;
  if (a !== b) {
    older = a < b;
    break;
  }
}
if (older) {
  process.stderr.write(
    "witness needs Node.js " + needed.join(".") + " or newer (wrangler, vitest and the .ts scripts require it); " +
      "this is Node.js " + process.versions.node + ". Get it with `nvm install` (reads .nvmrc) " +
      "or `npm install --prefix .node22 node@22` and put .node22/node_modules/node/bin first on PATH.\n",
  );
  process.exit(1);
}
