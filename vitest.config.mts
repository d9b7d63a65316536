// Two projects: "worker" runs inside real workerd with simulated KV
// (@cloudflare/vitest-plugin); "node" runs the agent, the CLIs and the end-to-end
// suite as real processes. Secrets are generated per run: none live in the repo.
import { randomBytes } from "node:crypto";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { TEST_CONFIG } from "./test/worker/test-config.ts";

const secret = () => randomBytes(32).toString("hex");
const testSecrets = {
  WITNESS_MASTER_KEY: secret(),
  TELEGRAM_BOT_TOKEN: `123:${secret()}`,
  STATUS_TOKEN: secret(),
  TELEGRAM_WEBHOOK_SECRET: secret(),
};
// wrangler checks the required secrets against the process environment as well.
Object.assign(process.env, testSecrets);

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                WITNESS_CONFIG: TEST_CONFIG,
                ...testSecrets,
              },
            },
          }),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          globalSetup: ["test/worker/global-setup.ts"],
          setupFiles: ["test/worker/setup.ts"],
        },
      },
      {
        test: {
          name: "node",
          environment: "node",
          include: ["test/node/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
