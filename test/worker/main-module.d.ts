// Types `exports` from "cloudflare:workers" as the Worker's own main module, so tests
// can call the real handlers (exports.default.fetch / .scheduled) type-checked.
declare namespace Cloudflare {
  interface GlobalProps {
    mainModule: typeof import("../../src/index.ts");
  }
}
