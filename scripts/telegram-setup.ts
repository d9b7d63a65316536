// `npm run telegram:setup -- --url https://witness.<you>.workers.dev`
// Registers the Worker's webhook with its secret token and the updates it handles, and
// the bot's command list. `--find-chat` instead lists the chats that wrote to the bot
// (send it any message first), to find the chat id for wrangler.toml.
// Secrets come from the environment or .dev.vars: TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_SECRET.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { BOT_COMMANDS } from "../src/phone/bot-commands.ts";

function fromDevVars(name: string): string | undefined {
  try {
    const match = new RegExp(`^\\s*${name}\\s*=\\s*"?([^"\\n]+)"?\\s*$`, "m").exec(readFileSync(".dev.vars", "utf8"));
    return match?.[1]?.trim();
  } catch {
    return undefined;
  }
}

function secret(name: string): string {
  const value = process.env[name] ?? fromDevVars(name);
  if (!value) throw new Error(`${name} is not set: export it, or put it in .dev.vars (see .dev.vars.example)`);
  return value;
}

async function call(api: string, token: string, method: string, payload: Record<string, unknown>): Promise<unknown> {
  const response = await fetch(`${api}/bot${token}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(payload),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await response.json().catch(() => ({}))) as { ok?: boolean; result?: unknown; description?: string };
  if (!body.ok) throw new Error(`${method} failed: ${response.status} ${body.description ?? ""}`.trim());
  return body.result;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      url: { type: "string" },
      "find-chat": { type: "boolean", default: false },
      api: { type: "string", default: "https://api.telegram.org" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || (!values.url && !values["find-chat"])) {
    console.error("usage: npm run telegram:setup -- --url https://<your worker>   |   --find-chat");
    return values.help ? 0 : 2;
  }
  const token = secret("TELEGRAM_BOT_TOKEN");
  if (values["find-chat"]) {
    const updates = (await call(values.api, token, "getUpdates", { timeout: 0 })) as Array<{
      message?: { chat: { id: number; type: string; title?: string; username?: string; first_name?: string } };
    }>;
    const chats = new Map(updates.flatMap((update) => (update.message ? [[update.message.chat.id, update.message.chat] as const] : [])));
    if (chats.size === 0) {
      console.log("No messages yet: send your bot any message (or add it to the group and write there), then run this again.");
      console.log("(getUpdates only works while no webhook is set; run this before --url.)");
    }
    for (const chat of chats.values()) {
      console.log(`chatId = "${chat.id}"   (${chat.type}: ${chat.title ?? chat.username ?? chat.first_name ?? ""})`);
    }
    return 0;
  }
  const url = `${(values.url ?? "").replace(/\/+$/, "")}/telegram/webhook`;
  if (!/^https:\/\//.test(url)) throw new Error("--url must be the Worker's https:// address (Telegram only calls https webhooks)");
  await call(values.api, token, "setWebhook", {
    url,
    secret_token: secret("TELEGRAM_WEBHOOK_SECRET"),
    allowed_updates: ["message", "callback_query"],
  });
  await call(values.api, token, "setMyCommands", { commands: BOT_COMMANDS });
  console.log(`webhook set to ${url}; commands registered: ${BOT_COMMANDS.map((c) => `/${c.command}`).join(" ")}`);
  return 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(`telegram:setup: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
