// witness: the Worker. The edge (routes.ts) authenticates and validates every ping and
// Telegram update before the monitor object (monitor/object.ts) sees it; the monitor
// judges, pages and publishes; the cron (scheduled.ts) watches the monitor.
import { createApp } from "./edge/routes.ts";
import { runCron } from "./edge/scheduled.ts";

export { Monitor } from "./monitor/object.ts";

const app = createApp();

export default {
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),
  async scheduled(_controller, env) {
    const summary = await runCron(env);
    console.log(`cron: ${summary.outcome}${summary.detail ? `: ${summary.detail}` : ""}`);
  },
} satisfies ExportedHandler<Env>;
