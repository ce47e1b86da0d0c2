import { randomBytes } from 'node:crypto';
import { createClient, type RedisClientType } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClawmeshError } from '../../core/errors.ts';
import { createBudgets } from './budgets.ts';
import { createPriceTable } from './prices.ts';
import { createMemoryUsageStore, createRedisUsageStore, type UsageStore } from './usage-store.ts';

const failure = async (run: Promise<unknown>): Promise<ClawmeshError> => {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ClawmeshError);
  return err as ClawmeshError;
};

describe('prices', () => {
  const prices = createPriceTable({
    'openai/gpt-4o-mini': { input: 0.15, output: 0.6 },
    'claude-3-5-haiku-latest': { input: 0.8, output: 4 },
  });

  it('costs usage per million tokens, by provider/model then by bare model', () => {
    expect(
      prices.costOf('openai/gpt-4o-mini', { inputTokens: 1_000_000, outputTokens: 500_000 }),
    ).toBeCloseTo(0.45);
    expect(
      prices.costOf('anthropic/claude-3-5-haiku-latest', { inputTokens: 1000, outputTokens: 1000 }),
    ).toBeCloseTo(0.0048);
  });

  it('knows local is free and other models are unpriced', () => {
    expect(prices.costOf('local/default', { inputTokens: 10, outputTokens: 10 })).toBe(0);
    expect(prices.costOf('openai/gpt-4o', { inputTokens: 10, outputTokens: 10 })).toBeUndefined();
  });
});

function budgetSuite(name: string, makeStore: () => UsageStore) {
  describe(`budgets over the ${name} usage store`, () => {
    // 2026-03-10 22:00 UTC: two hours before the daily budgets reset.
    let now = Date.UTC(2026, 2, 10, 22, 0, 0);
    const clock = () => now;
    const user = `u-${randomBytes(4).toString('hex')}`;
    const conversation = `c-${randomBytes(4).toString('hex')}`;

    it('refuses a user over the daily token budget, naming it and when it resets', async () => {
      const budgets = createBudgets({
        limits: { perUserDaily: { tokens: 100 } },
        store: makeStore(),
        now: clock,
      });
      await budgets.check({ userId: user });
      await budgets.record({ userId: user }, 60, 0);
      await budgets.check({ userId: user });
      await budgets.record({ userId: user }, 60, 0);
      const err = await failure(budgets.check({ userId: user }));
      expect(err.code).toBe('RATE_LIMITED');
      expect(err.message).toBe(
        `the daily token budget of user ${user} is spent (120 tokens of 100 tokens used today); it resets at 2026-03-11T00:00:00.000Z`,
      );
      expect(err.details).toMatchObject({ budget: 'perUserDaily', retryAfterSeconds: 7200 });
      // Another user is not affected; the next UTC day starts afresh.
      await budgets.check({ userId: `${user}-other` });
      now = Date.UTC(2026, 2, 11, 0, 0, 1);
      await budgets.check({ userId: user });
      expect((await budgets.usage({ userId: user })).userToday).toEqual({ tokens: 0, costUsd: 0 });
    });

    it('refuses a conversation over its cost budget for good', async () => {
      const budgets = createBudgets({
        limits: { perConversation: { costUsd: 0.01 } },
        store: makeStore(),
        now: clock,
      });
      await budgets.record({ conversationId: conversation, userId: user }, 1000, 0.006);
      await budgets.check({ conversationId: conversation });
      await budgets.record({ conversationId: conversation }, 1000, 0.006);
      const err = await failure(budgets.check({ conversationId: conversation, userId: user }));
      expect(err.code).toBe('RATE_LIMITED');
      expect(err.retryable).toBe(false);
      expect(err.message).toContain(
        `cost budget of conversation ${conversation} is spent ($0.0120 of $0.0100 used)`,
      );
      expect(err.message).toContain('start a new conversation');
      const usage = await budgets.usage({ conversationId: conversation });
      expect(usage.conversation?.tokens).toBe(2000);
      expect(usage.conversation?.costUsd).toBeCloseTo(0.012);
    });

    it('never refuses without limits, but still counts', async () => {
      const budgets = createBudgets({ limits: {}, store: makeStore(), now: clock });
      expect(budgets.enabled).toBe(false);
      await budgets.record({ userId: `${user}-free` }, 1_000_000, 100);
      await budgets.check({ userId: `${user}-free` });
      expect((await budgets.usage({ userId: `${user}-free` })).userToday?.tokens).toBe(1_000_000);
    });
  });
}

budgetSuite('memory', () => createMemoryUsageStore());

let redis: RedisClientType;
const prefix = `test:model-usage:${randomBytes(6).toString('hex')}:`;
beforeAll(async () => {
  redis = createClient({ url: 'redis://127.0.0.1:6379' }) as RedisClientType;
  await redis.connect();
});
afterAll(async () => {
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) {
    if (keys.length) await redis.del(keys);
  }
  await redis.close();
});
budgetSuite('Redis', () => createRedisUsageStore({ client: async () => redis, prefix }));

describe('the Redis usage store', () => {
  it('gives each counter its TTL, shared by every store over the same Redis', async () => {
    const a = createRedisUsageStore({ client: redis, prefix });
    const b = createRedisUsageStore({ client: redis, prefix });
    await a.add([{ key: 'shared', tokens: 5, costUsd: 0.5, ttlMs: 10_000 }]);
    await b.add([{ key: 'shared', tokens: 7, costUsd: 0.25, ttlMs: 10_000 }]);
    expect(await a.get(['shared', 'absent'])).toEqual([
      { tokens: 12, costUsd: 0.75 },
      { tokens: 0, costUsd: 0 },
    ]);
    const ttl = await redis.pTTL(`${prefix}shared`);
    expect(ttl).toBeGreaterThan(9000);
  });
});

describe('the memory usage store', () => {
  it('keeps at most maxKeys counters and expires them', async () => {
    let now = 0;
    const store = createMemoryUsageStore({ maxKeys: 10, now: () => now });
    for (let i = 0; i < 100; i += 1) await store.add([{ key: `k${i}`, tokens: 1, costUsd: 0, ttlMs: 100 }]);
    const all = await store.get(Array.from({ length: 100 }, (_, i) => `k${i}`));
    expect(all.filter((t) => t.tokens > 0).length).toBeLessThanOrEqual(10);
    expect(all[99]).toEqual({ tokens: 1, costUsd: 0 });
    now = 100;
    expect(await store.get(['k99'])).toEqual([{ tokens: 0, costUsd: 0 }]);
  });
});
