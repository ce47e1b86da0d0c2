import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createCallContext } from '../src/core/context.ts';
import { createOpenAIProvider } from '../src/models/providers/openai/provider.ts';
import { createOutboundHttp } from '../src/models/providers/outbound.ts';
import { failure } from './support/scripted-provider.ts';

// The outbound HTTP client's connect timeout (`models.resilience.timeouts.connectMs`): it limits
// connecting to an upstream (TCP, and the TLS handshake for https), never the wait for an answer.

/** A TCP server that accepts and never speaks: an https client's TLS handshake with it hangs. */
async function startSilentServer(): Promise<{
  port: number;
  accepted: () => number;
  close(): Promise<void>;
}> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let accepted = 0;
  server.on('connection', () => {
    accepted += 1;
  });
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    close: async () => {
      // Never read from, these sockets would not see the client leave: close them here.
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const ask = () => ({ model: 'm', messages: [{ role: 'user' as const, content: 'hello' }] });

describe('the outbound connect timeout', () => {
  it('destroys a connection whose TLS handshake does not finish in time', async () => {
    const silent = await startSilentServer();
    const limited = await createOutboundHttp({ connectTimeoutMs: 150 });
    if (!limited) throw new Error('node-fetch is not installed');
    try {
      const started = Date.now();
      const err = await limited
        .fetch(`https://127.0.0.1:${silent.port}/v1/chat/completions`, {
          method: 'POST',
          body: '{}',
          ...limited.fetchOptions,
        } as RequestInit)
        .then(
          () => undefined,
          (e: unknown) => e as Error,
        );
      expect(err?.message).toMatch(/connect limit: no connection to 127\.0\.0\.1 within 150 ms/);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(silent.accepted()).toBe(1);
    } finally {
      await silent.close();
    }
  });

  it('leaves alone an answer slower than the connect timeout', async () => {
    const slow = http.createServer((_req, res) => {
      setTimeout(() => res.end('slow but fine'), 300);
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const limited = await createOutboundHttp({ connectTimeoutMs: 150 });
    if (!limited) throw new Error('node-fetch is not installed');
    try {
      const port = (slow.address() as AddressInfo).port;
      const res = await limited.fetch(`http://127.0.0.1:${port}/`, limited.fetchOptions as RequestInit);
      expect(await res.text()).toBe('slow but fine');
    } finally {
      slow.closeAllConnections();
      await new Promise((resolve) => slow.close(resolve));
    }
  });

  it('fails a provider call UNAVAILABLE when the upstream cannot be connected to in time', async () => {
    const silent = await startSilentServer();
    const limited = await createOutboundHttp({ connectTimeoutMs: 150 });
    if (!limited) throw new Error('node-fetch is not installed');
    try {
      const provider = createOpenAIProvider({
        apiKey: 'sk-test',
        baseURL: `https://127.0.0.1:${silent.port}/v1`,
        http: limited,
      });
      const err = await failure(provider.complete(ask(), createCallContext({ timeoutMs: 10_000 })));
      expect(err.code).toBe('UNAVAILABLE');
      expect(err.retryable).toBe(true);
      expect(err.message).toMatch(
        /^openai: Connection error\. .*connect limit: no connection to 127\.0\.0\.1 within 150 ms/,
      );
    } finally {
      await silent.close();
    }
  });
});
