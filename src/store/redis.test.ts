import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeConversationStore, describeDedupeStore } from './conformance.ts';
import { createStores } from './index.ts';
import { createRedisConversationStore } from './redis-conversations.ts';
import { createRedisDedupeStore } from './redis-dedupe.ts';
import { monitorRedis } from './redis-monitor.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `clawmesh-test-${randomUUID()}:`;
const client = createClient({ url: REDIS_URL });

beforeAll(async () => {
  await client.connect();
});
afterAll(async () => {
  // SCAN, never KEYS: the test cleans up only its own prefix.
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
    if (keys.length > 0) await client.del(keys);
  }
  await client.close();
});

describeConversationStore('redis', () => createRedisConversationStore({ client, prefix }));
describeDedupeStore('redis', () => createRedisDedupeStore({ client, prefix }));

describe('redis stores', () => {
  it('keeps every key under the prefix and the dedupe TTL on the key', async () => {
    const own = `${prefix}${randomUUID()}:`;
    const conversations = createRedisConversationStore({ client, prefix: own });
    const dedupe = createRedisDedupeStore({ client, prefix: own });
    await conversations.ensure({ id: 'c1', agentId: 'a', channel: 'web', peer: 'p' });
    await conversations.append('c1', [{ role: 'user', content: 'hi' }], { fence: 2 });
    await dedupe.claim('k1', 60_000);
    const keys: string[] = [];
    for await (const batch of client.scanIterator({ MATCH: `${own}*` })) keys.push(...batch);
    expect(keys.sort()).toEqual(
      [`${own}conv:c1`, `${own}conv:c1:messages`, `${own}conversations:recent`, `${own}dedupe:k1`].sort(),
    );
    const ttl = await client.pTTL(`${own}dedupe:k1`);
    expect(ttl).toBeGreaterThan(59_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    await dedupe.complete('k1', undefined, 1000);
    expect(await dedupe.claim('k1', 60_000)).toEqual({ state: 'done', value: undefined });
  });

  it('keeps an append with no messages from changing seq or updatedAt, but records its fence', async () => {
    const store = createRedisConversationStore({ client, prefix });
    const { id, updatedAt } = await store.ensure({ id: randomUUID(), agentId: 'a', channel: 'c', peer: 'p' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await store.append(id, [], { fence: 9 })).toEqual([]);
    expect(await store.get(id)).toMatchObject({ messageCount: 0, updatedAt });
    await expect(store.append(id, [{ role: 'user', content: 'x' }], { fence: 8 })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });

  it('appends a turn in one script of six commands (one read of the record, one write of it)', async () => {
    const own = `${prefix}${randomUUID()}:`;
    const store = createRedisConversationStore({ client, prefix: own });
    await store.ensure({ id: 'c1', agentId: 'a', channel: 'web', peer: 'p' });
    await store.append('c1', [{ role: 'user', content: 'first' }], { fence: 1, turnId: 't0' });
    const monitor = await monitorRedis(REDIS_URL);
    try {
      const turn = [
        { role: 'user' as const, content: 'q' },
        { role: 'assistant' as const, content: 'a' },
      ];
      const stored = await store.append('c1', turn, { fence: 2, turnId: 't1' });
      expect(stored.map((m) => m.seq)).toEqual([2, 3]);
      await expect.poll(() => monitor.calls(`${own}conv:c1`).length).toBe(1);
      const [call] = monitor.calls(`${own}conv:c1`);
      // HMGET the record, HGET the turn id, RPUSH, HSET the turn, ZADD, HSET fence+count+updatedAt.
      expect(call?.scripted.map((line) => /"(\w+)"/.exec(line.split(' lua] ')[1] ?? '')?.[1])).toEqual([
        'HMGET',
        'HGET',
        'RPUSH',
        'HSET',
        'ZADD',
        'HSET',
      ]);
    } finally {
      monitor.stop();
    }
    expect(await store.get('c1')).toMatchObject({ messageCount: 3 });
    const record = await client.hGetAll(`${own}conv:c1`);
    expect(record.fence).toBe('2');
  });

  it('fails ping with UNAVAILABLE when the server does not answer in time', async () => {
    const offline = createClient({ url: 'redis://127.0.0.1:1', socket: { reconnectStrategy: () => 50 } });
    offline.on('error', () => undefined);
    offline.connect().catch(() => undefined);
    const store = createRedisConversationStore({ client: offline, pingTimeoutMs: 100 });
    await expect(store.ping()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    offline.destroy();
  });

  it('rejects calls after close with UNAVAILABLE', async () => {
    const store = createRedisDedupeStore({ client, prefix });
    await store.close();
    await expect(store.claim('k', 1000)).rejects.toMatchObject({ code: 'UNAVAILABLE', retryable: false });
  });
});

describe('createStores (redis)', () => {
  it('connects from a URL, shares one client between both stores and closes it', async () => {
    const stores = createStores({ kind: 'redis', redis: REDIS_URL, prefix });
    expect([stores.conversations.kind, stores.dedupe.kind]).toEqual(['redis', 'redis']);
    await stores.conversations.ping();
    const id = randomUUID();
    await stores.conversations.ensure({ id, agentId: 'a', channel: 'c', peer: 'p' });
    expect(await stores.dedupe.claim(id, 1000)).toEqual({ state: 'claimed' });
    await stores.close();
    await expect(stores.conversations.ping()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(await client.exists(`${prefix}conv:${id}`)).toBe(1);
  });

  it('leaves a client it was given open', async () => {
    const own = client.duplicate();
    await own.connect();
    const stores = createStores({ kind: 'redis', redis: own, prefix });
    await stores.conversations.ping();
    await stores.close();
    expect(own.isOpen).toBe(true);
    expect(await own.ping()).toBe('PONG');
    await own.close();
  });
});
