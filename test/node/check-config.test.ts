// `npm run check-config` as an operator runs it, on real wrangler.toml files in a temp
// directory: what fits the free plan, what is refused and why, the paid plan's cost,
// and the settings TOML can only switch off with `false`.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");
let dir: string;
let shipped: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "witness-check-config-"));
  shipped = await readFile(join(root, "wrangler.toml"), "utf8");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The shipped wrangler.toml with its WITNESS_CONFIG replaced by `config` (TOML text). */
async function checkConfig(config: string | null, args: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const head = shipped.slice(0, shipped.indexOf("[vars.WITNESS_CONFIG]"));
  const path = join(dir, `wrangler-${Math.random().toString(36).slice(2)}.toml`);
  await writeFile(path, config === null ? shipped : `${head}${config}\n`);
  try {
    const { stdout, stderr } = await run(process.execPath, ["scripts/check-config.ts", "--config", path, ...args], { cwd: root });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

function hosts(count: number, settings = ""): string {
  return Array.from({ length: count }, (_, i) => `[[vars.WITNESS_CONFIG.hosts]]\nid = "host-${i}"\n${settings}`).join("\n");
}

const TELEGRAM = '[vars.WITNESS_CONFIG.telegram]\nchatId = "123456789"\n';

describe("check-config", () => {
  it("the shipped wrangler.toml fits the free plan and pages dark within 78 s of the last ping", async () => {
    const result = await checkConfig(null);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/trader-1 +78 s +2\.3 min +75 s/);
    expect(result.stdout).toContain("ok: 1 host(s) fit the free plan.");
  });

  it("--json keeps the bounds' keys, the alarm path and the cron path", async () => {
    const result = await checkConfig(null, ["--json"]);
    const parsed = JSON.parse(result.stdout) as { budget: { hosts: Array<Record<string, number>> } };
    expect(parsed.budget.hosts[0]).toMatchObject({ darkPageWithinSeconds: 78, darkPageWithinSecondsIfAlarmsFail: 138, darkMinimumSilenceSeconds: 75 });
  });

  it("20 hosts at 30 s fit the free plan with room to spare; 40 do not, and the refusal says what to do", async () => {
    const twenty = await checkConfig(`[vars.WITNESS_CONFIG]\nplan = "free"\n${TELEGRAM}${hosts(20)}`);
    expect(twenty.code).toBe(0);
    expect(twenty.stdout).toContain("ok: 20 host(s) fit the free plan.");
    const forty = await checkConfig(`[vars.WITNESS_CONFIG]\nplan = "free"\n${TELEGRAM}${hosts(40)}`);
    expect(forty.code).toBe(1);
    expect(forty.stderr).toMatch(/refused: doRequests: [\d,]+ a day is 11\d\.\d % of the free plan's 100,000: lengthen intervalSeconds, watch fewer hosts, or switch plan = "paid"/);
  });

  it("the paid plan prints the monthly cost beyond the included usage: 200 hosts at 10 s page dark within 38 s", async () => {
    const result = await checkConfig(`[vars.WITNESS_CONFIG]\nplan = "paid"\n${TELEGRAM}${hosts(200, "intervalSeconds = 10\n")}`, []);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/host-0 +38 s/);
    expect(result.stdout).toMatch(/cost beyond the included usage: \$\d+\.\d\d a month/);
  });

  it("settings documented as off take false, which TOML can write (it has no null)", async () => {
    const result = await checkConfig(
      `[vars.WITNESS_CONFIG]\n${TELEGRAM}[vars.WITNESS_CONFIG.alerts]\ndigestAt = false\n[[vars.WITNESS_CONFIG.hosts]]\nid = "trader-1"\nmaxAgeOutOfSessionSeconds = false\n`,
      ["--json"],
    );
    expect(result.code).toBe(0);
    const parsed = JSON.parse(result.stdout) as { config: { alerts: { digestAt: unknown }; hosts: Array<{ maxAgeOutOfSessionSeconds: unknown }> } };
    expect(parsed.config.alerts.digestAt).toBeNull();
    expect(parsed.config.hosts[0]?.maxAgeOutOfSessionSeconds).toBeNull();
  });

  it("prints each host's maintenance windows as written and their next occurrence, local and UTC", async () => {
    const result = await checkConfig(
      `[vars.WITNESS_CONFIG]\n${TELEGRAM}[vars.WITNESS_CONFIG.alerts]\ntimezone = "Europe/London"\n` +
        `[[vars.WITNESS_CONFIG.hosts]]\nid = "trader-1"\n[vars.WITNESS_CONFIG.hosts.calendar]\ntimezone = "America/New_York"\nopen = "09:30"\nclose = "16:00"\n` +
        `[[vars.WITNESS_CONFIG.hosts.maintenance]]\ndays = ["sat", "sun"]\nfrom = "22:00"\nto = "02:00"\n` +
        `[[vars.WITNESS_CONFIG.hosts]]\nid = "trader-2"\n[[vars.WITNESS_CONFIG.hosts.maintenance]]\ndays = ["wed"]\nfrom = "06:00"\nto = "07:30"\n`,
      ["--now", "2026-10-31T12:00:00Z"],
    );
    expect(result.code).toBe(0);
    // New York leaves daylight time that Sunday: the window is 02:00-07:00 UTC, five hours.
    expect(result.stdout).toContain(
      "maintenance windows (DARK and STALE are recorded, not paged; still down at the end pages then):\n" +
        "  trader-1: sat, sun 22:00-02:00 America/New_York (ends the next day); next: Sat 2026-10-31 22:00 EDT to Sun 2026-11-01 02:00 EST = Sun 2026-11-01 02:00 UTC to Sun 2026-11-01 07:00 UTC\n" +
        "  trader-2: wed 06:00-07:30 Europe/London; next: Wed 2026-11-04 06:00 GMT to Wed 2026-11-04 07:30 GMT = Wed 2026-11-04 06:00 UTC to Wed 2026-11-04 07:30 UTC\n",
    );
    const during = await checkConfig(`[vars.WITNESS_CONFIG]\n${TELEGRAM}[[vars.WITNESS_CONFIG.hosts]]\nid = "trader-1"\n[[vars.WITNESS_CONFIG.hosts.maintenance]]\ndays = ["sat"]\nfrom = "10:00"\nto = "14:00"\n`, [
      "--now",
      "2026-10-31T12:00:00Z",
    ]);
    expect(during.stdout).toContain("  trader-1: sat 10:00-14:00 UTC; next: Sat 2026-10-31 10:00 UTC to Sat 2026-10-31 14:00 UTC = Sat 2026-10-31 10:00 UTC to Sat 2026-10-31 14:00 UTC (now)\n");
  });

  it.each([
    ["a maintenance day that is not one", '[[vars.WITNESS_CONFIG.hosts.maintenance]]\ndays = ["weekend"]\nfrom = "22:00"\nto = "02:00"\n', 'check-config: WITNESS_CONFIG.hosts.0.maintenance.0.days.0: use day names "mon", "tue", "wed", "thu", "fri", "sat" or "sun"'],
    ["a maintenance window that ends when it starts", '[[vars.WITNESS_CONFIG.hosts.maintenance]]\ndays = ["sat"]\nfrom = "22:00"\nto = "22:00"\n', "check-config: WITNESS_CONFIG.hosts.0.maintenance.0.to: equals from, so the window would be empty; set to later than from, or earlier to end the next day"],
    ["a maintenance window in a zone that does not exist", '[[vars.WITNESS_CONFIG.hosts.maintenance]]\ndays = ["sat"]\nfrom = "22:00"\nto = "02:00"\ntimezone = "Europe/Londn"\n', 'check-config: WITNESS_CONFIG.hosts.0.maintenance.0.timezone: not an IANA time zone; use a name like "America/New_York" or "UTC"'],
  ])("refuses %s, naming the field", async (_label, extra, message) => {
    const result = await checkConfig(`[vars.WITNESS_CONFIG]\n${TELEGRAM}[[vars.WITNESS_CONFIG.hosts]]\nid = "trader-1"\n${extra}`);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(message);
  });

  it.each([
    ["a setting of the KV-only judge", "[vars.WITNESS_CONFIG.timing]\nrefreshSeconds = 600\n", "check-config: WITNESS_CONFIG.timing.refreshSeconds: timing.refreshSeconds is no longer used: the monitor object keeps every ping and judges at the deadline; remove it"],
    ["darkAfter shorter than an interval and 10 s", '[[vars.WITNESS_CONFIG.hosts]]\nid = "fast"\ndarkAfterSeconds = 39\n', "check-config: WITNESS_CONFIG.hosts.1.darkAfterSeconds: 39 s would page a live host whose ping is a little late; it must be at least interval + 10 s = 40 s (the default is two missed pings and 15 s: 75 s)"],
    ["digestAt off as a string", '[vars.WITNESS_CONFIG.alerts]\ndigestAt = "off"\n', 'check-config: WITNESS_CONFIG.alerts.digestAt: use 24-hour HH:MM, e.g. "09:30"'],
  ])("refuses %s in one line naming the field and the fix", async (_label, extra, message) => {
    const result = await checkConfig(`[vars.WITNESS_CONFIG]\n${TELEGRAM}[[vars.WITNESS_CONFIG.hosts]]\nid = "trader-1"\n${extra}`);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(message);
  });
});
