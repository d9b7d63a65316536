// The kernel's boot id, so the Worker can tell "host rebooted" from "agent restarted".
// Linux: /proc/sys/kernel/random/boot_id. macOS: kern.bootsessionuuid, then
// kern.boottime. Last resort: a hash of the boot time derived from os.uptime().
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { uptime } from "node:os";

export interface BootIdSources {
  readFile(path: string): Promise<string>;
  sysctl(name: string): Promise<string>;
  uptimeSeconds(): number;
  now(): number;
}

export const nodeBootIdSources: BootIdSources = {
  readFile: (path) => readFile(path, "utf8"),
  // node:child_process is loaded only where sysctl is asked (macOS): on Linux it and
  // what it pulls in (net, dgram, worker_threads) would be resident for nothing.
  sysctl: async (name) => {
    const { execFile } = await import("node:child_process");
    return new Promise((resolve, reject) => {
      execFile("sysctl", ["-n", name], { timeout: 2000 }, (error, stdout) => {
        if (error) reject(error);
        else resolve(String(stdout));
      });
    });
  },
  uptimeSeconds: uptime,
  now: Date.now,
};

const MAX_BOOT_ID_LENGTH = 64;

export async function readBootId(sources: BootIdSources = nodeBootIdSources): Promise<string> {
  const linux = await sources.readFile("/proc/sys/kernel/random/boot_id").catch(() => "");
  if (usable(linux)) return linux.trim();
  if (process.platform === "darwin") {
    const session = await sources.sysctl("kern.bootsessionuuid").catch(() => "");
    if (usable(session)) return session.trim();
    // "{ sec = 1700000000, usec = 123456 } Tue Nov 14 …": the seconds identify the boot.
    const bootTime = await sources.sysctl("kern.boottime").catch(() => "");
    const seconds = /sec\s*=\s*(\d+)/.exec(bootTime)?.[1];
    if (seconds !== undefined) return `boottime-${seconds}`;
  }
  // Boot time from uptime drifts with clock adjustments; rounding to 10 minutes keeps
  // it stable across an agent restart (a restart near a boundary may read as a reboot).
  const bootTimeMs = sources.now() - sources.uptimeSeconds() * 1000;
  const rounded = Math.round(bootTimeMs / 600_000);
  return `uptime-${createHash("sha256").update(String(rounded)).digest("hex").slice(0, 32)}`;
}

function usable(value: string): boolean {
  const trimmed = value.trim();
  return trimmed.length > 0 && trimmed.length <= MAX_BOOT_ID_LENGTH && !/\s/.test(trimmed);
}
