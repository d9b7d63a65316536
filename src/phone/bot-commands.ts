// The bot's command menu, shared by the webhook and `npm run telegram:setup`
// (which registers it with setMyCommands).
export const BOT_COMMANDS = [
  { command: "status", description: "All hosts, or one: /status <host>" },
  { command: "ack", description: "Acknowledge a host's alerts: /ack <host>" },
  { command: "mute", description: "Mute a host: /mute <host> <duration, e.g. 1h>" },
  { command: "unmute", description: "Unmute a host: /unmute <host>" },
  { command: "maintenance", description: "Maintenance window: /maintenance <host> <2h | off>" },
  { command: "pause", description: "Pause trading on a host: /pause <host> <reason>" },
  { command: "help", description: "What the bot can do" },
] as const;
