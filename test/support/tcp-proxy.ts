// A TCP proxy on 127.0.0.1 that a test can cut and restore, to play a network
// partition between the agent and the Worker without touching either. While cut, open
// connections are torn down and new ones are refused ("reset") or accepted and never
// answered ("blackhole", the agent then times out, as behind a dead router).
import { createConnection, createServer, type Server, type Socket } from "node:net";

export type CutMode = "reset" | "blackhole";

export interface TcpProxy {
  port: number;
  url: string;
  readonly isCut: boolean;
  cut(mode?: CutMode): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  const pairs = new Set<Socket>();
  const held = new Set<Socket>();
  let cutMode: CutMode | null = null;

  const server: Server = createServer((client) => {
    client.on("error", () => undefined);
    if (cutMode === "reset") {
      client.resetAndDestroy();
      return;
    }
    if (cutMode === "blackhole") {
      held.add(client);
      client.once("close", () => held.delete(client));
      return;
    }
    const upstream = createConnection({ port: targetPort, host: targetHost });
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.add(client);
    pairs.add(upstream);
    const forget = () => {
      pairs.delete(client);
      pairs.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.once("close", forget);
    upstream.once("close", forget);
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;

  const dropAll = () => {
    // Kept-alive connections would otherwise carry on through the cut.
    for (const socket of pairs) socket.destroy();
    for (const socket of held) socket.destroy();
    pairs.clear();
    held.clear();
  };

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get isCut() {
      return cutMode !== null;
    },
    cut(mode = "reset") {
      cutMode = mode;
      dropAll();
    },
    restore() {
      cutMode = null;
      for (const socket of held) socket.destroy();
      held.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        dropAll();
        server.close(() => resolve());
      }),
  };
}
