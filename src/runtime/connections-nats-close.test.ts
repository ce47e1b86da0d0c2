import { describe, expect, it } from 'vitest';
import { startTcpProxy } from '../bus/conformance.ts';
import { loadConfig } from '../config/load.ts';
import { silentLogger } from '../observability/logger.ts';
import { createConnections } from './connections.ts';

const NATS = new URL(process.env.NATS_URL ?? 'nats://127.0.0.1:4222');

describe('createConnections: closing NATS', () => {
  it('closes at once while NATS is down instead of waiting to drain a connection that cannot flush', async () => {
    const proxy = await startTcpProxy(NATS.hostname, Number(NATS.port || 4222));
    const { config } = loadConfig({ env: { NATS_URL: `nats://${proxy.address}` }, cwd: process.cwd() });
    const connections = createConnections(config, silentLogger());
    const nc = await connections.nats();
    nc.subscribe('clawmesh-close-test.>', { callback: () => undefined });
    await nc.flush();
    proxy.cut();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const began = performance.now();
    await connections.close();
    const took = performance.now() - began;
    await proxy.close();
    expect(nc.isClosed()).toBe(true);
    expect(took).toBeLessThan(2000);
  });

  it('drains a connected NATS connection before closing it', async () => {
    const { config } = loadConfig({ env: { NATS_URL: NATS.href }, cwd: process.cwd() });
    const connections = createConnections(config, silentLogger());
    const nc = await connections.nats();
    const received: string[] = [];
    nc.subscribe('clawmesh-close-test.drained', {
      callback: (_err, msg) => {
        received.push(msg.string());
      },
    });
    await nc.flush();
    nc.publish('clawmesh-close-test.drained', 'last');
    await connections.close();
    expect(nc.isClosed()).toBe(true);
    expect(received).toEqual(['last']);
  });
});
