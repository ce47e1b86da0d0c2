import net from 'node:net';

/**
 * A TCP relay to a server that can stop answering without closing its connections (a hung
 * host, a network partition): it forwards both ways until `freeze()`, then holds every byte.
 */
export interface FreezingRelay {
  /** `127.0.0.1:<port>` to connect to instead of the server. */
  address: string;
  freeze(): void;
  close(): Promise<void>;
}

/** Starts a {@link FreezingRelay} to `host:port`. */
export async function startFreezingRelay(port: number, host = '127.0.0.1'): Promise<FreezingRelay> {
  const sockets = new Set<net.Socket>();
  let frozen = false;
  const relay = net.createServer((client) => {
    const upstream = net.connect(port, host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
    }
    client.on('data', (chunk) => frozen || upstream.write(chunk));
    upstream.on('data', (chunk) => frozen || client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(relay.address() as net.AddressInfo).port}`,
    freeze() {
      frozen = true;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    },
  };
}
