// One line per event, to stdout (info) or stderr (warnings and errors), so journald
// and launchd keep them. Timestamps are included because launchd log files have none.

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function consoleLogger(now: () => number = Date.now): Logger {
  const line = (level: string, message: string) => `${new Date(now()).toISOString()} ${level} ${message}\n`;
  return {
    info: (message) => void process.stdout.write(line("info", message)),
    warn: (message) => void process.stderr.write(line("warn", message)),
    error: (message) => void process.stderr.write(line("error", message)),
  };
}
