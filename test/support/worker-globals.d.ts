// The Worker globals src/ names, for the Node-side type check (tsconfig.node.json): the
// alarm-truth simulator (sim/) runs the real route and cron in Node, so this program
// type-checks src/ too. Only what src/ uses is declared here; tsconfig.sim.json checks
// the same files against the real generated types (worker-configuration.d.ts).
// At run time Node has no `caches`: src/scheduled.ts only touches it inside a try.

interface KVNamespace {
  get(key: string, options?: { type?: "text"; cacheTtl?: number }): Promise<string | null>;
  get(keys: string[], options?: { type?: "text"; cacheTtl?: number }): Promise<Map<string, string | null>>;
  put(key: string, value: string, options?: { expirationTtl?: number }): Promise<void>;
  delete(key: string): Promise<void>;
}

interface Env {
  WITNESS_KV: KVNamespace;
  WITNESS_CONFIG: object;
  WITNESS_MASTER_KEY: string;
  TELEGRAM_BOT_TOKEN: string;
  STATUS_TOKEN: string;
  TELEGRAM_WEBHOOK_SECRET: string;
}

declare const caches: {
  readonly default: {
    match(key: string): Promise<Response | undefined>;
    put(key: string, response: Response): Promise<void>;
    delete(key: string): Promise<boolean>;
  };
};
