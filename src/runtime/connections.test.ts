import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import { silentLogger } from '../observability/logger.ts';
import { createConnections } from './connections.ts';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('createConnections', () => {
  it('gives up on a Redis it cannot reach at start, naming it, instead of retrying forever', async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    const { config } = loadConfig({ env: { REDIS_URL: url }, cwd: process.cwd() });
    const connections = createConnections(config, silentLogger());
    const began = performance.now();
    await expect(connections.redis()).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringContaining(`cannot connect to Redis (REDIS_URL) at ${url}`),
    });
    expect(performance.now() - began).toBeLessThan(5000);
    await connections.close();
  });

  it.each([
    ['notaurl', 'Invalid URL'],
    ['http://127.0.0.1:6379', 'Invalid protocol'],
  ])('rejects a REDIS_URL it cannot parse (%s) naming the variable', async (url, reason) => {
    const { config } = loadConfig({ env: { REDIS_URL: url }, cwd: process.cwd() });
    const connections = createConnections(config, silentLogger());
    await expect(connections.redis()).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringMatching(new RegExp(`^cannot connect to Redis \\(REDIS_URL\\) at .*${reason}`)),
    });
    await connections.close();
  });

  it('fails a command at once while the connection to Redis is lost, instead of holding it until it is back', async () => {
    // Redis behind a relay that then goes away (a Redis restart, a network cut).
    const sockets = new Set<net.Socket>();
    const relay = net.createServer((socket) => {
      const upstream = net.connect(6379, '127.0.0.1');
      for (const end of [socket, upstream]) {
        sockets.add(end);
        end.on('error', () => undefined);
      }
      socket.pipe(upstream).pipe(socket);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const url = `redis://127.0.0.1:${(relay.address() as net.AddressInfo).port}`;
    const { config } = loadConfig({ env: { REDIS_URL: url }, cwd: process.cwd() });
    const connections = createConnections(config, silentLogger());
    try {
      const client = await connections.redis();
      expect(await client.ping()).toBe('PONG');
      relay.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const began = performance.now();
      const answer = await Promise.race([
        client.ping().then(
          () => 'answered',
          () => 'failed',
        ),
        new Promise((resolve) => setTimeout(() => resolve('still waiting'), 3000)),
      ]);
      expect(answer).toBe('failed');
      expect(performance.now() - began).toBeLessThan(1000);
    } finally {
      await connections.close();
    }
  });
  it('names the server that does not answer when ping fails (Redis down, NATS up)', async () => {
    const sockets = new Set<net.Socket>();
    const relay = net.createServer((socket) => {
      const upstream = net.connect(6379, '127.0.0.1');
      for (const end of [socket, upstream]) {
        sockets.add(end);
        end.on('error', () => undefined);
      }
      socket.pipe(upstream).pipe(socket);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const url = `redis://127.0.0.1:${(relay.address() as net.AddressInfo).port}`;
    const { config } = loadConfig({
      env: { REDIS_URL: url, NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' },
      cwd: process.cwd(),
    });
    const connections = createConnections(config, silentLogger());
    try {
      await connections.redis();
      await connections.nats();
      await connections.ping();
      relay.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      await expect(connections.ping()).rejects.toMatchObject({
        code: 'UNAVAILABLE',
        message: expect.stringMatching(/^Redis: /),
      });
    } finally {
      await connections.close();
    }
  });
});
