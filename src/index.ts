// witness: the Worker. Routes take signed pings and answer health and status; the
// cron judges every host once a minute and pages on Telegram.
import { createApp } from "./routes.ts";
import { runTick } from "./scheduled.ts";

const app = createApp();

export default {
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),
  async scheduled(_controller, env) {
    const summary = await runTick(env);
    console.log(
      `tick: ${summary.outcome}, ${summary.events.length} event(s), ${summary.delivered} delivered, ${summary.undelivered} queued, ${summary.wrote} KV write(s)`,
    );
  },
} satisfies ExportedHandler<Env>;
