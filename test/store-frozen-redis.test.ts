import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FreezingRelay, startFreezingRelay } from './support/freezing-relay.ts';
import { spawnCli } from './support/process.ts';

/** The Redis store and turn lease of one process when Redis stops answering mid-run. */
describe('clawmesh start on the Redis store when Redis stops answering', () => {
  const prefix = `frozen-store-${process.pid}:`;
  let relay: FreezingRelay;
  beforeAll(async () => {
    relay = await startFreezingRelay(6379);
  });
  afterAll(async () => {
    await relay.close();
    const redis = await createClient({ url: 'redis://127.0.0.1:6379' }).connect();
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*` })) {
      if (keys.length > 0) await redis.del(keys);
    }
    await redis.close();
  });

  it('fails the turn with 503 after redis.commandTimeoutMs, logged and counted, instead of at its deadline', async () => {
    const cli = spawnCli(['start'], {
      cwd: mkdtempSync(join(tmpdir(), 'clawmesh-frozen-store-')),
      env: {
        PORT: '0',
        CLAWMESH_STORE: 'redis',
        REDIS_URL: `redis://${relay.address}`,
        CLAWMESH_REDIS__KEY_PREFIX: prefix,
        CLAWMESH_REDIS__COMMAND_TIMEOUT_MS: '500',
      },
    });
    try {
      const { url: api } = (await cli.waitForLog(/^Clawmesh listening/)) as { url: string };
      const send = () =>
        fetch(`${api}/v1/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ userId: 'u1', text: 'how many red shirts are in stock?' }),
        });
      expect((await send()).status).toBe(200);
      relay.freeze();
      const began = Date.now();
      const res = await send();
      expect(Date.now() - began).toBeLessThan(5000); // the turn's deadline is 60 s
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('UNAVAILABLE');
      await cli.waitForLog(/^turn failed/);
      const metrics = await (await fetch(`${api}/metrics`)).text();
      expect(metrics).toMatch(/clawmesh_active_conversations(\{[^}]*\})? 0\b/);
    } finally {
      cli.child.kill('SIGKILL');
      await cli.exited;
    }
  }, 60_000);
});
