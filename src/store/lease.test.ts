import { randomUUID } from 'node:crypto';
import { createClient, type RedisClientType } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTurnLease } from './index.ts';
import { describeTurnLease } from './lease-conformance.ts';
import { createMemoryTurnLease } from './lease-memory.ts';
import { createRedisTurnLease, type RedisTurnLeaseOptions } from './lease-redis.ts';
import type { TurnLease } from './lease-types.ts';
import { createRedisConversationStore } from './redis-conversations.ts';
import { monitorRedis } from './redis-monitor.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `clawmesh-test-${randomUUID()}:`;
const admin = createClient({ url: REDIS_URL });

beforeAll(async () => {
  await admin.connect();
});
afterAll(async () => {
  for await (const keys of admin.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
    if (keys.length > 0) await admin.del(keys);
  }
  await admin.close();
});

/** A connected client of its own, as another process would have. */
async function connect(): Promise<RedisClientType> {
  const client = createClient({ url: REDIS_URL }) as RedisClientType;
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

describeTurnLease('memory', () => {
  const lease = createMemoryTurnLease();
  return { open: () => lease, close: () => lease.close() };
});

describeTurnLease('redis', () => {
  const opened: Array<{ lease: TurnLease; client: RedisClientType }> = [];
  return {
    store: createRedisConversationStore({ client: admin, prefix }),
    async open() {
      const client = await connect();
      const lease = createRedisTurnLease({ client, prefix });
      opened.push({ lease, client });
      return lease;
    },
    async close() {
      for (const { lease, client } of opened) {
        await lease.close();
        await client.close();
      }
    },
  };
});

describe('redis turn lease', () => {
  it('lets another process in after the holder process dies, and fences the dead one', async () => {
    const [dying, surviving] = [await connect(), await connect()];
    const a = createRedisTurnLease({ client: dying, prefix, ttlMs: 200 });
    const b = createRedisTurnLease({ client: surviving, prefix });
    const id = randomUUID();
    const held = await a.acquire(id);
    dying.destroy(); // kill -9: no release, no renewal
    const started = performance.now();
    const next = await b.acquire(id, { waitMs: 5000 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(100);
    expect(next.token).toBeGreaterThan(held.token);
    // The holder, cut off from Redis, counts its lease lost once it would have expired.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(held.lost).toBe(true);
    await next.release();
    await a.close();
    await b.close();
    await surviving.close();
  });

  it('leaves no lease, queue or heartbeat keys behind, only the token counter with a TTL', async () => {
    const client = await connect();
    const lease = createRedisTurnLease({ client, prefix, fenceTtlMs: 60_000 });
    const id = randomUUID();
    const held = await lease.acquire(id);
    const waiter = lease.acquire(id, { waitMs: 2000 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(await admin.exists(`${prefix}lease:${id}:queue`)).toBe(1);
    await held.release();
    await (await waiter).release();
    const keys: string[] = [];
    for await (const batch of admin.scanIterator({ MATCH: `${prefix}lease:${id}*` })) keys.push(...batch);
    expect(keys).toEqual([`${prefix}lease:${id}:fence`]);
    const ttl = await admin.pTTL(`${prefix}lease:${id}:fence`);
    expect(ttl).toBeGreaterThan(50_000);
    await lease.close();
    await client.close();
  });

  it('takes a free lease in a script of four commands, without reading the clock', async () => {
    const client = await connect();
    const lease = createRedisTurnLease({ client, prefix });
    const id = randomUUID();
    const first = await lease.acquire(id);
    await first.release();
    const monitor = await monitorRedis(REDIS_URL);
    try {
      const held = await lease.acquire(id);
      expect(held.token).toBe(first.token + 1);
      await expect.poll(() => monitor.calls(`${prefix}lease:${id}`).length).toBeGreaterThanOrEqual(1);
      const [call] = monitor.calls(`${prefix}lease:${id}`);
      expect(call?.scripted.map((line) => /"(\w+)"/.exec(line.split(' lua] ')[1] ?? '')?.[1])).toEqual([
        'ZRANGE',
        'SET',
        'INCR',
        'PEXPIRE',
      ]);
      await held.release();
    } finally {
      monitor.stop();
      await lease.close();
      await client.close();
    }
  });

  it('says a grant came from its first command only when it neither waited nor sent its script again', async () => {
    const client = await connect();
    const lease = createRedisTurnLease({ client, prefix, pollMs: 20 });
    const id = randomUUID();
    const first = await lease.acquire(id);
    expect(first.grantedAtOnce).toBe(true);
    const waiting = lease.acquire(id, { waitMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    await first.release();
    const waited = await waiting;
    expect(waited.grantedAtOnce).toBe(false);
    await waited.release();
    // A server that lost its script cache: EVALSHA fails NOSCRIPT and the script goes again as EVAL,
    // after anything sent meanwhile.
    let evalshas = 0;
    const forgetful = {
      sendCommand: (args: readonly string[]) => {
        if (args[0] === 'EVALSHA' && evalshas++ === 0)
          return Promise.reject(new Error('NOSCRIPT No matching script. Please use EVAL.'));
        return client.sendCommand(args as string[]);
      },
      duplicate: () => client.duplicate(),
    } as unknown as RedisTurnLeaseOptions['client'];
    const resending = createRedisTurnLease({ client: forgetful, prefix });
    const resent = await resending.acquire(id);
    expect(evalshas).toBe(1);
    expect(resent.grantedAtOnce).toBe(false);
    await resent.release();
    await resending.close();
    await lease.close();
    await client.close();
  });

  it('keeps tokens rising when the token counter is lost, by starting again from the clock', async () => {
    const client = await connect();
    const lease = createRedisTurnLease({ client, prefix });
    const id = randomUUID();
    const first = await lease.acquire(id);
    await first.release();
    await admin.del(`${prefix}lease:${id}:fence`);
    const second = await lease.acquire(id);
    expect(second.token).toBeGreaterThan(first.token);
    expect(Number.isSafeInteger(second.token)).toBe(true);
    await second.release();
    await lease.close();
    await client.close();
  });

  it('passes over a waiter whose process died while it waited', async () => {
    const [dying, surviving] = [await connect(), await connect()];
    const a = createRedisTurnLease({ client: dying, prefix, pollMs: 50 });
    const b = createRedisTurnLease({ client: surviving, prefix, pollMs: 50 });
    const id = randomUUID();
    const held = await b.acquire(id);
    const doomed = a.acquire(id, { waitMs: 10_000 }).catch(() => undefined); // first in line
    await new Promise((resolve) => setTimeout(resolve, 30));
    const behind = b.acquire(id, { waitMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    dying.destroy();
    await a.close();
    await held.release();
    // The dead waiter's heartbeat (10 polls, at least 1 s) runs out, then the next one gets in.
    const started = performance.now();
    const next = await behind;
    expect(performance.now() - started).toBeLessThan(3000);
    await next.release();
    await doomed;
    await b.close();
    await surviving.close();
  });

  it('is made by createTurnLease from a URL and closes its own client', async () => {
    const lease = createTurnLease({ kind: 'redis', redis: REDIS_URL, prefix, ttlMs: 5000 });
    expect(lease.kind).toBe('redis');
    const held = await lease.acquire(randomUUID());
    expect(await admin.pTTL(`${prefix}lease:${held.conversationId}`)).toBeGreaterThan(4000);
    await held.release();
    await lease.close();
    await expect(lease.acquire(randomUUID())).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('rejects an unknown lease kind or a redis lease without a client with INVALID_ARGUMENT', () => {
    expect(() => createTurnLease({ kind: 'etcd' as 'memory' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => createTurnLease({ kind: 'redis' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('memory turn lease', () => {
  it('issues tokens above those of an earlier process run', async () => {
    const before = Date.now() * 1000;
    const lease = createTurnLease({ kind: 'memory' });
    const held = await lease.acquire('c');
    expect(held.token).toBeGreaterThan(before);
    await held.release();
    await lease.close();
  });

  it('fails waiters with UNAVAILABLE when it closes', async () => {
    const lease = createMemoryTurnLease();
    const held = await lease.acquire('c');
    const waiting = lease.acquire('c');
    await lease.close();
    await expect(waiting).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(held.lost).toBe(false);
  });
});
