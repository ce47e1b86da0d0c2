import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type RedisClientType } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.ts';
import { createCallContext } from '../src/core/context.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { buildModels } from '../src/runtime/models.ts';
import { type FakeAnthropic, startFakeAnthropic } from './support/fake-anthropic.ts';
import { type FakeOpenAI, startFakeOpenAI } from './support/fake-openai.ts';

const cwd = mkdtempSync(join(tmpdir(), 'clawmesh-models-config-'));
const build = (env: NodeJS.ProcessEnv, models?: Record<string, unknown>) => {
  const { config } = loadConfig({ env, cwd, ...(models ? { overrides: { models } } : {}) });
  return buildModels(config, { logger: silentLogger() });
};
const ask = (content: string, model?: string) => ({
  ...(model ? { model } : {}),
  messages: [{ role: 'user' as const, content }],
});

describe('buildModels from the config', () => {
  let openaiA: FakeOpenAI;
  let openaiB: FakeOpenAI;
  let anthropic: FakeAnthropic;
  beforeAll(async () => {
    [openaiA, openaiB, anthropic] = await Promise.all([
      startFakeOpenAI(),
      startFakeOpenAI(),
      startFakeAnthropic(),
    ]);
  });
  afterAll(async () => {
    await Promise.all([openaiA.close(), openaiB.close(), anthropic.close()]);
  });

  it('routes everything to local with no key', async () => {
    const { service, providers } = await build({});
    expect(providers).toEqual(['local', 'fast', 'capable']);
    const response = await service.complete(ask('hello'), createCallContext());
    expect(response.model).toBe('local/default');
  });

  it('uses openai for the default agent with OPENAI_API_KEY, anthropic with ANTHROPIC_API_KEY alone', async () => {
    const openai = await build({
      OPENAI_API_KEY: 'sk-a',
      OPENAI_BASE_URL: openaiA.url,
      OPENAI_MODEL: 'gpt-a',
    });
    expect((await openai.service.complete(ask('hello'), createCallContext())).model).toBe('openai/gpt-a');
    expect((openaiA.requests.at(-1)!.body as { model: string }).model).toBe('gpt-a');

    anthropic.enqueue({ type: 'text', content: 'Hi from Claude.' });
    const claude = await build({
      ANTHROPIC_API_KEY: 'ak-1',
      ANTHROPIC_BASE_URL: anthropic.url,
      ANTHROPIC_MODEL: 'claude-x',
    });
    const response = await claude.service.complete(ask('hello'), createCallContext());
    expect(response).toMatchObject({ model: 'anthropic/claude-x', content: 'Hi from Claude.' });
  });

  it('serves one model from two named deployments with different keys, falling back between them', async () => {
    const { service } = await build(
      {},
      {
        deployments: {
          primary: { provider: 'openai', apiKey: 'key-primary', baseUrl: openaiA.url, model: 'gpt-shared' },
          secondary: {
            provider: 'openai',
            apiKey: 'key-secondary',
            baseUrl: openaiB.url,
            model: 'gpt-shared',
          },
          claude: { provider: 'anthropic', apiKey: 'ak-2', baseUrl: anthropic.url, model: 'claude-y' },
        },
        tiers: { fast: ['primary', 'secondary'], capable: ['claude', 'primary'] },
        resilience: { retries: { max: 0 } },
      },
    );
    openaiA.enqueue({ type: 'status', status: 429, headers: { 'retry-after': '30' } });
    openaiB.enqueue({ type: 'text', content: 'from secondary' });
    const first = await service.complete(ask('hi'), createCallContext());
    expect(first).toMatchObject({
      content: 'from secondary',
      model: 'openai/gpt-shared',
      deployment: 'secondary',
      tier: 'fast',
      fallbackUsed: true,
    });
    expect(openaiA.requests.at(-1)?.headers.authorization).toBe('Bearer key-primary');
    expect(openaiB.requests.at(-1)?.headers.authorization).toBe('Bearer key-secondary');
    // primary is skipped until its Retry-After: the next call goes straight to secondary.
    const before = openaiA.requests.length;
    openaiB.enqueue({ type: 'text', content: 'again secondary' });
    expect((await service.complete(ask('hello'), createCallContext())).deployment).toBe('secondary');
    expect(openaiA.requests.length).toBe(before);

    anthropic.enqueue({ type: 'text', content: 'capable answer' });
    const hard = await service.complete(ask('hi', 'capable'), createCallContext());
    expect(hard).toMatchObject({
      deployment: 'claude',
      model: 'anthropic/claude-y',
      content: 'capable answer',
    });
  });

  it('names a deployment that has no key', async () => {
    await expect(build({}, { deployments: { lonely: { provider: 'openai' } } })).rejects.toThrow(
      /models\.deployments\.lonely\.apiKey: the openai deployment needs an API key \(or set OPENAI_API_KEY\)/,
    );
  });

  it('says what is wrong with a tier named as the default or inside a tier', async () => {
    // Both said 'unknown model "fast": not a tier, … (tiers: fast, capable; …)', under a key never written.
    await expect(build({}, { default: 'fast' })).rejects.toThrow(
      'defaultModel "fast" is the tier fast, which is not configured (fast and capable default to the default model): set models.tiers.fast, or name a model or deployment',
    );
    await expect(build({}, { tiers: { fast: ['local'], capable: ['fast'] } })).rejects.toThrow(
      'models.tiers.capable.0: "fast" is a tier: a tier lists provider/model names and deployment ids, not tiers',
    );
    const { service } = await build({}, { default: 'fast', tiers: { fast: ['local'] } });
    expect((await service.complete(ask('hello'), createCallContext())).tier).toBe('fast');
  });

  it('refuses a cache or budget on Redis without a Redis connection', async () => {
    await expect(build({}, { cache: { enabled: true, kind: 'redis' } })).rejects.toThrow(
      /models\.cache\.kind/,
    );
  });

  it('caches with the configured bounds, and budgets from the config', async () => {
    const { service } = await build(
      {},
      { cache: { enabled: true }, budgets: { perConversation: { tokens: 1 } } },
    );
    const ctx = createCallContext({ conversationId: 'c-budget' });
    const first = await service.complete(ask('remember me'), ctx);
    expect(first.cached).toBe(false);
    const hit = await service.complete(ask('remember me'), ctx);
    expect(hit.cached).toBe(true);
    await expect(service.complete(ask('something new'), ctx)).rejects.toThrow(
      /budget of conversation c-budget is spent/,
    );
  });

  it('keeps the Redis cache and budget counters under redis.keyPrefix, as every other Redis key', async () => {
    const redis = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }) as RedisClientType;
    await redis.connect();
    const keyPrefix = `models-config-test-${process.pid}-${Date.now()}:`;
    try {
      const { config } = loadConfig({
        env: {},
        cwd,
        overrides: {
          redis: { keyPrefix },
          models: {
            cache: { enabled: true, kind: 'redis' },
            budgets: { perUserDaily: { tokens: 100_000 }, store: 'redis' },
          },
        },
      });
      const { service } = await buildModels(config, { logger: silentLogger(), redis: async () => redis });
      await service.complete(ask('prefixed'), createCallContext({ userId: 'u-prefix' }));
      const keys: string[] = [];
      for await (const batch of redis.scanIterator({ MATCH: `${keyPrefix}*` })) keys.push(...[batch].flat());
      expect(keys.filter((key) => key.startsWith(`${keyPrefix}model-cache:`))).toHaveLength(1);
      expect(keys).toContain(
        `${keyPrefix}model-usage:user:u-prefix:${new Date().toISOString().slice(0, 10)}`,
      );
      if (keys.length > 0) await redis.del(keys);
    } finally {
      await redis.quit();
    }
  });
});
