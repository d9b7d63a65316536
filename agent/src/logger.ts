// One line per event, to stdout (info) or stderr (warnings and errors), so journald
// and launchd keep them. Timestamps are included because launchd log files have none.

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function consoleLogger(now: () => number = Date.now, options: { infoToStderr?: boolean } = {}): Logger {
  const line = (level: string, message: string) => `${new Date(now()).toISOString()} ${level} ${message}\n`;
  // --check keeps stdout for its report, so its log lines go to stderr.
  const infoStream = options.infoToStderr === true ? process.stderr : process.stdout;
  return {
    info: (message) => void infoStream.write(line("info", message)),
    warn: (message) => void process.stderr.write(line("warn", message)),
    error: (message) => void process.stderr.write(line("error", message)),
  };
}
