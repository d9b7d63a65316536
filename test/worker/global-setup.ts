// Runs in Node before the workerd tests: starts the Telegram stand-in on 127.0.0.1
// and hands its address to the tests.
import type { TestProject } from "vitest/node";
import { startFakeTelegram } from "../support/fake-telegram.ts";

declare module "vitest" {
  export interface ProvidedContext {
    telegramUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const telegram = await startFakeTelegram();
  project.provide("telegramUrl", telegram.url);
  return () => telegram.close();
}
