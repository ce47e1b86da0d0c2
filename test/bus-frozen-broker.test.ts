import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FreezingRelay, startFreezingRelay } from './support/freezing-relay.ts';
import { spawnCli } from './support/process.ts';

/**
 * A Redis that stops answering without closing its connections (a hung host, a network
 * partition): the relay forwards until `frozen`, then holds every byte.
 */
describe('clawmesh start on the Redis bus when Redis stops answering', () => {
  const prefix = `qa7-frozen-${process.pid}:`;
  let relay: FreezingRelay;
  let url: string;
  beforeAll(async () => {
    relay = await startFreezingRelay(6379);
    url = `redis://${relay.address}`;
  });
  afterAll(async () => {
    await relay.close();
    const redis = await createClient({ url: 'redis://127.0.0.1:6379' }).connect();
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*` })) {
      if (keys.length > 0) await redis.del(keys);
    }
    await redis.close();
  });

  it('exits after SIGTERM in bounded time, saying what it could not close', async () => {
    const cli = spawnCli(['start'], {
      cwd: mkdtempSync(join(tmpdir(), 'clawmesh-frozen-redis-')),
      env: { PORT: '0', CLAWMESH_BUS: 'redis', REDIS_URL: url, CLAWMESH_REDIS__KEY_PREFIX: prefix },
    });
    const { url: api } = (await cli.waitForLog(/^Clawmesh listening/)) as { url: string };
    const send = () =>
      fetch(`${api}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'u1', text: 'how many red shirts are in stock?' }),
      });
    expect((await send()).status).toBe(200);
    relay.freeze();
    expect((await send()).status).toBe(200);
    const started = Date.now();
    cli.child.kill('SIGTERM');
    const code = await Promise.race([cli.exited, new Promise((r) => setTimeout(() => r('hung'), 40_000))]);
    if (code === 'hung') cli.child.kill('SIGKILL');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(cli.stdout()).toMatch(/did not close within the shutdown budget/);
  }, 60_000);
});
