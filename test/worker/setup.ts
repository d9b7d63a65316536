// Every workerd test starts from an empty KV: the simulated namespace is shared by the
// tests of a file, and cron:state in particular would leak from one test into the next.
import { reset } from "cloudflare:test";
import { beforeEach } from "vitest";

beforeEach(async () => {
  await reset();
});
