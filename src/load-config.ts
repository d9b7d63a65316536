// Parses WITNESS_CONFIG once per isolate (the binding is the same object for its life)
// and, when it is invalid, still finds where to tell the operator so.
import { z } from "zod";
import { type Config, parseConfig } from "./config.ts";

const parsed = new WeakMap<object, Config>();

/** The validated config; throws ConfigError naming the first bad field. */
export function loadConfig(raw: unknown): Config {
  if (typeof raw === "object" && raw !== null) {
    const cached = parsed.get(raw);
    if (cached) return cached;
    const config = parseConfig(raw);
    parsed.set(raw, config);
    return config;
  }
  return parseConfig(raw);
}

const TelegramTarget = z.object({
  telegram: z.object({
    chatId: z.union([z.string(), z.number()]).transform(String),
    baseUrl: z.url().default("https://api.telegram.org"),
  }),
});

/** Where to page a configuration error: the telegram section alone may still be valid. */
export function telegramTargetFromRaw(raw: unknown): { chatId: string; baseUrl: string } | null {
  let value = raw;
  if (typeof raw === "string") {
    try {
      value = JSON.parse(raw);
    } catch {
      return null;
    }
  }
  const result = TelegramTarget.safeParse(value);
  return result.success ? result.data.telegram : null;
}
