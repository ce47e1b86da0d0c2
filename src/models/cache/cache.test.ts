import { randomBytes } from 'node:crypto';
import { createClient, type RedisClientType } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallContext, createCallContext } from '../../core/context.ts';
import type { ModelRequest } from '../../core/contracts/models.ts';
import { createLocalProvider } from '../providers/local/provider.ts';
import { createModelsService } from '../service.ts';
import { cacheKey, isCacheable } from './key.ts';
import { createMemoryCache } from './memory.ts';
import { createRedisCache } from './redis.ts';
import type { CachedAnswer } from './types.ts';

const answer = (content: string): CachedAnswer => ({
  content,
  toolCalls: [],
  finishReason: 'stop',
  usage: { inputTokens: 3, outputTokens: 4 },
  model: 'local/default',
});

/** The bytes the memory cache counts for one entry (key and JSON, two bytes a code unit). */
const sizeOf = (key: string, value: CachedAnswer) => (key.length + JSON.stringify(value).length) * 2;

describe('the memory cache', () => {
  it('evicts the least recently used entry past maxEntries', async () => {
    const cache = createMemoryCache({ maxEntries: 2, maxBytes: 1 << 20, ttlMs: 60_000 });
    await cache.set('a', answer('A'));
    await cache.set('b', answer('B'));
    expect((await cache.get('a'))?.content).toBe('A'); // a is now the most recent
    await cache.set('c', answer('C'));
    expect(await cache.get('b')).toBeUndefined();
    expect((await cache.get('a'))?.content).toBe('A');
    expect((await cache.get('c'))?.content).toBe('C');
    expect(cache.size).toBe(2);
  });

  it('evicts the oldest entries until the bytes fit, and skips an answer larger than the bound', async () => {
    const one = sizeOf('k1', answer('x'.repeat(100)));
    const cache = createMemoryCache({ maxEntries: 100, maxBytes: one * 2 + 10, ttlMs: 60_000 });
    await cache.set('k1', answer('x'.repeat(100)));
    await cache.set('k2', answer('y'.repeat(100)));
    expect(cache.size).toBe(2);
    await cache.set('k3', answer('z'.repeat(100)));
    expect(cache.size).toBe(2);
    expect(await cache.get('k1')).toBeUndefined();
    expect(cache.bytes).toBeLessThanOrEqual(one * 2 + 10);
    await cache.set('huge', answer('h'.repeat(one * 2)));
    expect(await cache.get('huge')).toBeUndefined();
    expect((await cache.get('k3'))?.content).toBe('z'.repeat(100));
  });

  it('forgets an answer after its TTL', async () => {
    let now = 1_000;
    const cache = createMemoryCache({ maxEntries: 10, maxBytes: 1 << 20, ttlMs: 500, now: () => now });
    await cache.set('k', answer('fresh'));
    now += 499;
    expect((await cache.get('k'))?.content).toBe('fresh');
    now += 1;
    expect(await cache.get('k')).toBeUndefined();
    expect(cache.size).toBe(0);
    expect(cache.bytes).toBe(0);
  });

  it('replaces an entry under the same key and keeps the byte count exact', async () => {
    const cache = createMemoryCache({ maxEntries: 10, maxBytes: 1 << 20, ttlMs: 60_000 });
    await cache.set('k', answer('first'));
    await cache.set('k', answer('second, longer'));
    expect(cache.size).toBe(1);
    expect(cache.bytes).toBe(sizeOf('k', answer('second, longer')));
  });

  it('hands out copies, so a caller cannot change what it holds', async () => {
    const cache = createMemoryCache({ maxEntries: 10, maxBytes: 1 << 20, ttlMs: 60_000 });
    const stored = { ...answer('t'), toolCalls: [{ id: '1', name: 'a__b', arguments: '{}' }] };
    await cache.set('k', stored);
    stored.toolCalls[0]!.arguments = 'changed';
    const got = (await cache.get('k'))!;
    got.toolCalls[0]!.name = 'mutated';
    got.usage.inputTokens = 99;
    const again = (await cache.get('k'))!;
    expect(again.toolCalls[0]).toEqual({ id: '1', name: 'a__b', arguments: '{}' });
    expect(again.usage.inputTokens).toBe(3);
  });

  it('stays bounded under churn of many keys', async () => {
    const cache = createMemoryCache({ maxEntries: 50, maxBytes: 1 << 20, ttlMs: 60_000 });
    for (let i = 0; i < 5000; i += 1) await cache.set(`k${i}`, answer(String(i)));
    expect(cache.size).toBe(50);
    expect((await cache.get('k4999'))?.content).toBe('4999');
    expect(await cache.get('k4949')).toBeUndefined();
  });
});

describe('cache keys', () => {
  const base: ModelRequest = {
    messages: [
      { role: 'system', content: 's' },
      { role: 'user', content: 'hello' },
    ],
    tools: [
      { name: 'inv__look', description: 'd', parameters: { type: 'object', properties: { a: {}, b: {} } } },
    ],
  };

  it('is equal for equal requests whatever the order of schema keys', () => {
    const reordered: ModelRequest = {
      ...base,
      tools: [
        { name: 'inv__look', description: 'd', parameters: { properties: { b: {}, a: {} }, type: 'object' } },
      ],
    };
    expect(cacheKey('fast', reordered)).toBe(cacheKey('fast', base));
  });

  it('differs by target, message, tool call, temperature and max tokens', () => {
    const key = cacheKey('fast', base);
    expect(cacheKey('capable', base)).not.toBe(key);
    expect(
      cacheKey('fast', { ...base, messages: [...base.messages, { role: 'user', content: 'x' }] }),
    ).not.toBe(key);
    expect(cacheKey('fast', { ...base, temperature: 0 })).not.toBe(key);
    expect(cacheKey('fast', { ...base, maxTokens: 10 })).not.toBe(key);
    expect(cacheKey('fast', { ...base, tools: [] })).not.toBe(key);
    const withCall = (args: string): ModelRequest => ({
      ...base,
      messages: [
        ...base.messages,
        { role: 'assistant', content: '', toolCalls: [{ id: 'c', name: 'n', arguments: args }] },
      ],
    });
    expect(cacheKey('fast', withCall('{"a":1}'))).not.toBe(cacheKey('fast', withCall('{"a":2}')));
  });

  it('differs by tool choice, parallel tool calls, top p, seed, penalties, stop sequences and response format', () => {
    const key = cacheKey('fast', base);
    const variants: Partial<ModelRequest>[] = [
      { toolChoice: 'required' },
      { toolChoice: { name: 'inv__look' } },
      { parallelToolCalls: false },
      { topP: 0.5 },
      { seed: 7 },
      { frequencyPenalty: 0.5 },
      { presencePenalty: -0.5 },
      { stop: ['\n'] },
      { responseFormat: { type: 'json_object' } },
      { responseFormat: { type: 'json_schema', name: 'a', schema: { type: 'object' } } },
    ];
    const keys = variants.map((variant) => cacheKey('fast', { ...base, ...variant }));
    expect(new Set([key, ...keys]).size).toBe(variants.length + 1);
    // Schema keys in another order are the same format.
    const schema = (s: Record<string, unknown>): ModelRequest => ({
      ...base,
      responseFormat: { type: 'json_schema', name: 'a', schema: s },
    });
    expect(cacheKey('fast', schema({ type: 'object', properties: {} }))).toBe(
      cacheKey('fast', schema({ properties: {}, type: 'object' })),
    );
  });

  it('skips requests with a temperature above 0 unless configured', () => {
    expect(isCacheable({}, false)).toBe(true);
    expect(isCacheable({ temperature: 0 }, false)).toBe(true);
    expect(isCacheable({ temperature: 0.7 }, false)).toBe(false);
    expect(isCacheable({ temperature: 0.7 }, true)).toBe(true);
  });
});

describe('the Redis cache', () => {
  let client: RedisClientType;
  const prefix = `test:model-cache:${randomBytes(6).toString('hex')}:`;
  beforeAll(async () => {
    client = createClient({ url: 'redis://127.0.0.1:6379' }) as RedisClientType;
    await client.connect();
  });
  afterAll(async () => {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) {
      if (keys.length) await client.del(keys);
    }
    await client.close();
  });

  it('stores an answer with a TTL and reads it back', async () => {
    const cache = createRedisCache({ client, ttlMs: 60_000, maxBytes: 1 << 20, prefix });
    await cache.set('k', answer('from redis'));
    expect(await cache.get('k')).toEqual(answer('from redis'));
    const ttl = await client.pTTL(`${prefix}k`);
    expect(ttl).toBeGreaterThan(55_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(await cache.get('missing')).toBeUndefined();
  });

  it('expires answers after the TTL and skips oversized ones', async () => {
    const cache = createRedisCache({ client, ttlMs: 50, maxBytes: 200, prefix });
    await cache.set('short', answer('soon gone'));
    await cache.set('big', answer('b'.repeat(500)));
    expect(await client.exists(`${prefix}big`)).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(await cache.get('short')).toBeUndefined();
  });

  it('turns a Redis failure into a miss and reports it', async () => {
    const errors: unknown[] = [];
    const cache = createRedisCache({
      client: async () => {
        throw new Error('connection refused');
      },
      ttlMs: 1000,
      maxBytes: 1000,
      prefix,
      onError: (err) => errors.push(err),
    });
    expect(await cache.get('k')).toBeUndefined();
    await cache.set('k', answer('x'));
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toContain('connection refused');
  });

  it("reports a Redis error of a model call's lookup and store with the call's context", async () => {
    const reported: Array<{ err: string; ctx?: CallContext }> = [];
    const broken = {
      get: () => Promise.reject(new Error('READONLY replica')),
      set: () => Promise.reject(new Error('READONLY replica')),
    } as unknown as RedisClientType;
    const cache = createRedisCache({
      client: broken,
      ttlMs: 1000,
      maxBytes: 1000,
      prefix,
      onError: (err, ctx) => reported.push({ err: String(err), ...(ctx ? { ctx } : {}) }),
    });
    const service = createModelsService({
      providers: [createLocalProvider()],
      defaultModel: 'local',
      cache,
      cacheNonZeroTemperature: true,
    });
    const ctx = createCallContext({ conversationId: 'c_cached' });
    await service.complete({ messages: [{ role: 'user', content: 'hello' }] }, ctx);
    await new Promise((resolve) => setTimeout(resolve, 20)); // the store runs beside the reply
    // Both lines name the turn: the runtime logs them with the context's ids.
    expect(reported).toHaveLength(2);
    for (const { err, ctx: seen } of reported) {
      expect(err).toContain('READONLY');
      expect(seen).toMatchObject({ requestId: ctx.requestId, conversationId: 'c_cached' });
    }
  });

  it('answers a lookup as a miss at once while Redis cannot be reached, retrying it in the background', async () => {
    let tries = 0;
    let up = false;
    const cache = createRedisCache({
      client: () => {
        tries += 1;
        // A first connection to an unreachable Redis takes its tries before it fails.
        return up
          ? Promise.resolve(client)
          : new Promise((_, reject) => setTimeout(() => reject(new Error('ECONNREFUSED')), 300));
      },
      ttlMs: 60_000,
      maxBytes: 1 << 20,
      prefix,
      retryConnectMs: 200,
    });
    await client.set(`${prefix}warm`, JSON.stringify(answer('cached')));
    let began = performance.now();
    expect(await cache.get('warm')).toBeUndefined(); // the first lookup waits for the first try
    expect(performance.now() - began).toBeGreaterThanOrEqual(250);
    await new Promise((resolve) => setTimeout(resolve, 20));
    began = performance.now();
    expect(await cache.get('warm')).toBeUndefined();
    expect(performance.now() - began).toBeLessThan(50);
    expect(tries).toBe(1); // cooling down: Redis is not asked again yet
    await new Promise((resolve) => setTimeout(resolve, 250));
    up = true;
    expect(await cache.get('warm')).toBeUndefined(); // starts a connection, does not wait for it
    expect(tries).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await cache.get('warm')).toEqual(answer('cached'));
  });

  it('waits half a second at most for a first connection that takes longer', async () => {
    const cache = createRedisCache({
      client: () => new Promise((_, reject) => setTimeout(() => reject(new Error('ECONNREFUSED')), 3000)),
      ttlMs: 60_000,
      maxBytes: 1 << 20,
      prefix,
    });
    let began = performance.now();
    expect(await cache.get('k')).toBeUndefined();
    const took = performance.now() - began;
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(1500);
    began = performance.now();
    expect(await cache.get('k')).toBeUndefined(); // the connection is still under way: no wait
    expect(performance.now() - began).toBeLessThan(50);
  });
});
