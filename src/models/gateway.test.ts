import { describe, expect, it } from 'vitest';
import { createCallContext } from '../core/context.ts';
import type { ModelRequest } from '../core/contracts/models.ts';
import { ClawmeshError } from '../core/errors.ts';
import { createMetrics } from '../observability/metrics.ts';
import { createBudgets } from './accounting/budgets.ts';
import { createMemoryUsageStore } from './accounting/usage-store.ts';
import { createMemoryCache } from './cache/memory.ts';
import { createLocalProvider } from './providers/local/provider.ts';
import { createModelsService, type ModelsServiceOptions } from './service.ts';
import type { Deployment, ModelProvider, ProviderRequest } from './types.ts';

/** A provider that answers `<name>:<model>` and counts its calls, or fails with `fail`. */
function provider(name: string, fail?: () => ClawmeshError): ModelProvider & { calls: ProviderRequest[] } {
  const calls: ProviderRequest[] = [];
  return {
    name,
    defaultModel: 'm',
    calls,
    async complete(request) {
      calls.push(request);
      if (fail) throw fail();
      return {
        content: `${name}:${request.model}`,
        toolCalls: [],
        finishReason: 'stop',
        usage: { inputTokens: 1000, outputTokens: 500 },
      };
    },
  };
}

const ask = (content: string, extra: Partial<ModelRequest> = {}): ModelRequest => ({
  messages: [{ role: 'user', content }],
  ...extra,
});
const hard = 'First analyze this code step by step, then compare the fixes:\n```js\nwhile (true) {}\n```';

function gateway(extra: Partial<ModelsServiceOptions> = {}) {
  const small = provider('small');
  const big = provider('big');
  const metrics = createMetrics({ defaultMetrics: false });
  const service = createModelsService({
    providers: [small, big, createLocalProvider()],
    defaultModel: 'local',
    tiers: { fast: ['small/mini'], capable: ['big/large'] },
    prices: { 'big/large': { input: 10, output: 30 }, mini: { input: 1, output: 2 } },
    resilience: { retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } },
    metrics,
    ...extra,
  });
  return { service, small, big, metrics };
}

const metricLine = async (metrics: ReturnType<typeof createMetrics>, name: string, ...labels: string[]) =>
  (await metrics.registry.metrics())
    .split('\n')
    .filter((line) => line.startsWith(name) && labels.every((label) => line.includes(label)));

describe('the Model Gateway service', () => {
  it('routes an easy request to fast and a hard one to capable, saying why', async () => {
    const { service, small, big } = gateway();
    const easy = await service.complete(ask('hi'), createCallContext());
    expect(easy).toMatchObject({
      model: 'small/mini',
      tier: 'fast',
      deployment: 'small/mini',
      cached: false,
    });
    expect(easy.route).toEqual({
      by: 'difficulty',
      reason: 'difficulty 0 < 0.5 -> tier fast',
      difficulty: 0,
    });
    const tough = await service.complete(ask(hard), createCallContext());
    expect(tough).toMatchObject({ model: 'big/large', tier: 'capable' });
    expect(tough.route?.reason).toMatch(/>= 0\.5 .*-> tier capable/);
    expect([small.calls.length, big.calls.length]).toEqual([1, 1]);
  });

  it('never reroutes an exact model, even when a rule matches', async () => {
    const { service, small } = gateway({ routing: { rules: [{ pattern: '.', tier: 'capable' }] } });
    const response = await service.complete(ask(hard, { model: 'small/exact' }), createCallContext());
    expect(response).toMatchObject({ model: 'small/exact', route: { by: 'exact' } });
    expect(response.tier).toBeUndefined();
    expect(small.calls.at(-1)?.model).toBe('exact');
  });

  it('applies routing rules by agent and channel', async () => {
    const { service } = gateway({
      routing: { rules: [{ agent: 'coder', channel: 'api', tier: 'capable' }] },
    });
    const ctx = createCallContext({ agentId: 'coder', channel: 'api' });
    const response = await service.complete(ask('hi'), ctx);
    expect(response).toMatchObject({ tier: 'capable', route: { by: 'rule' } });
    expect(response.route?.reason).toBe('rule 1 (agent coder, channel api) -> tier capable');
  });

  it('falls back along a tier, and says so in the response and the metrics', async () => {
    const down = provider('down', () => new ClawmeshError('UNAVAILABLE', 'down: 503'));
    const { service, metrics } = gateway({
      providers: [down, provider('small'), provider('big'), createLocalProvider()],
      tiers: { fast: ['down/a', 'small/mini'], capable: ['big/large'] },
    });
    const response = await service.complete(ask('hi'), createCallContext());
    expect(response).toMatchObject({
      model: 'small/mini',
      fallbackUsed: true,
      attempts: 2,
      deployment: 'small/mini',
    });
    expect(await metricLine(metrics, 'clawmesh_model_fallbacks_total', 'tier="fast"')).toEqual([
      'clawmesh_model_fallbacks_total{tier="fast"} 1',
    ]);
  });

  it('costs each answer from the price table, by provider/model or bare model', async () => {
    const { service, metrics } = gateway();
    const tough = await service.complete(ask(hard), createCallContext({ agentId: 'a1' }));
    expect(tough.costUsd).toBeCloseTo((1000 * 10 + 500 * 30) / 1e6);
    const easy = await service.complete(ask('hi'), createCallContext({ agentId: 'a1' }));
    expect(easy.costUsd).toBeCloseTo((1000 * 1 + 500 * 2) / 1e6);
    const unpriced = await service.complete(ask('hi', { model: 'big/other' }), createCallContext());
    expect(unpriced.costUsd).toBeUndefined();
    const [cost] = await metricLine(
      metrics,
      'clawmesh_model_cost_usd_total',
      'model="big/large"',
      'agent="a1"',
    );
    expect(Number(cost?.split(' ')[1])).toBeCloseTo(0.025);
    expect(await metricLine(metrics, 'clawmesh_model_tokens_total', 'model="small/mini"', 'input')).toEqual([
      'clawmesh_model_tokens_total{model="small/mini",direction="input"} 1000',
    ]);
  });

  describe('with a cache', () => {
    const cached = () =>
      gateway({ cache: createMemoryCache({ maxEntries: 10, maxBytes: 1 << 20, ttlMs: 60_000 }) });

    it('answers a repeat from the cache, marked cached, at no cost and no provider call', async () => {
      const { service, small, metrics } = cached();
      const first = await service.complete(ask('hi'), createCallContext());
      const second = await service.complete(ask('hi'), createCallContext());
      expect(small.calls).toHaveLength(1);
      expect(first.cached).toBe(false);
      expect(second).toMatchObject({
        content: first.content,
        model: 'small/mini',
        tier: 'fast',
        cached: true,
        attempts: 0,
        costUsd: 0,
        fallbackUsed: false,
      });
      expect(await metricLine(metrics, 'clawmesh_model_cache_lookups_total')).toEqual([
        'clawmesh_model_cache_lookups_total{result="miss"} 1',
        'clawmesh_model_cache_lookups_total{result="hit"} 1',
      ]);
      expect(
        await metricLine(metrics, 'clawmesh_model_requests_total', 'outcome="cached"', 'route="difficulty"'),
      ).toHaveLength(1);
    });

    it('skips requests with a temperature above 0 unless configured', async () => {
      const { service, small, metrics } = cached();
      await service.complete(ask('hi', { temperature: 0.7 }), createCallContext());
      const again = await service.complete(ask('hi', { temperature: 0.7 }), createCallContext());
      expect(again.cached).toBe(false);
      expect(small.calls).toHaveLength(2);
      expect(await metricLine(metrics, 'clawmesh_model_cache_lookups_total', 'skip')).toEqual([
        'clawmesh_model_cache_lookups_total{result="skip"} 2',
      ]);
      const all = gateway({
        cache: createMemoryCache({ maxEntries: 10, maxBytes: 1 << 20, ttlMs: 60_000 }),
        cacheNonZeroTemperature: true,
      });
      await all.service.complete(ask('hi', { temperature: 0.7 }), createCallContext());
      expect((await all.service.complete(ask('hi', { temperature: 0.7 }), createCallContext())).cached).toBe(
        true,
      );
    });

    it('streams a cached answer to onDelta in one piece', async () => {
      const { service } = cached();
      await service.complete(ask('hi'), createCallContext());
      const deltas: string[] = [];
      const hit = await service.complete(ask('hi'), createCallContext({ onDelta: (d) => deltas.push(d) }));
      expect(hit.cached).toBe(true);
      expect(deltas).toEqual([hit.content]);
    });
  });

  it('refuses a user over budget before calling the provider, and counts usage per user', async () => {
    const budgets = createBudgets({
      limits: { perUserDaily: { tokens: 2000 } },
      store: createMemoryUsageStore(),
    });
    const { service, small, metrics } = gateway({ budgets });
    const ctx = createCallContext({ userId: 'alice', conversationId: 'c1' });
    await service.complete(ask('hi'), ctx);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await service.usage(ctx)).toEqual({
      userToday: { tokens: 1500, costUsd: 0.002 },
      conversation: { tokens: 1500, costUsd: 0.002 },
    });
    await service.complete(ask('hi again'), ctx);
    await new Promise((resolve) => setImmediate(resolve));
    const err = await service.complete(ask('and again'), ctx).catch((e: unknown) => e as ClawmeshError);
    expect(err).toBeInstanceOf(ClawmeshError);
    expect((err as ClawmeshError).code).toBe('RATE_LIMITED');
    expect((err as ClawmeshError).message).toMatch(
      /daily token budget of user alice is spent \(3000 tokens of 2000/,
    );
    expect(small.calls).toHaveLength(2);
    expect(await metricLine(metrics, 'clawmesh_model_errors_total', 'code="RATE_LIMITED"')).toHaveLength(1);
    // Bob has his own budget.
    await service.complete(ask('hi'), createCallContext({ userId: 'bob' }));
  });

  it('answers RATE_LIMITED with the soonest Retry-After when every deployment is rate limited', async () => {
    const limited = (seconds: number) => () =>
      new ClawmeshError('RATE_LIMITED', '429', { details: { retryAfterMs: seconds * 1000 } });
    const { service } = gateway({
      providers: [provider('a', limited(30)), provider('b', limited(7)), createLocalProvider()],
      tiers: { fast: ['a/x', 'b/y'] },
    });
    const err = (await service
      .complete(ask('hi'), createCallContext())
      .catch((e: unknown) => e)) as ClawmeshError;
    expect(err.code).toBe('RATE_LIMITED');
    expect(err.details?.retryAfterSeconds).toBe(7);
  });

  it('lists every attempt when all options fail with UNAVAILABLE, and counts the open circuit', async () => {
    const broken = provider('broken', () => new ClawmeshError('UNAVAILABLE', 'boom'));
    const refusing = provider('refusing', () => new ClawmeshError('UNAUTHENTICATED', 'bad key'));
    const { service, metrics } = gateway({
      providers: [broken, refusing, createLocalProvider()],
      tiers: { fast: ['broken/x', 'refusing/y'] },
      resilience: {
        retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
        breaker: { failureThreshold: 1, cooldownMs: 60_000 },
      },
    });
    const err = (await service
      .complete(ask('hi'), createCallContext())
      .catch((e: unknown) => e)) as ClawmeshError;
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.details?.attempts).toHaveLength(2);
    expect(await metricLine(metrics, 'clawmesh_model_circuit_open', 'deployment="broken/x"')).toEqual([
      'clawmesh_model_circuit_open{deployment="broken/x"} 1',
    ]);
    expect(
      await metricLine(metrics, 'clawmesh_model_errors_total', 'target="fast"', 'UNAVAILABLE'),
    ).toHaveLength(1);
  });

  it('re-codes a provider refusing the gateway key as UNAVAILABLE, never UNAUTHENTICATED', async () => {
    const refusing = provider('refusing', () => new ClawmeshError('UNAUTHENTICATED', '401 bad key'));
    const { service } = gateway({ providers: [refusing, createLocalProvider()], tiers: {} });
    const err = (await service
      .complete(ask('hi', { model: 'refusing/x' }), createCallContext())
      .catch((e: unknown) => e)) as ClawmeshError;
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toContain('refused the request');
  });

  it('resolves named deployments, alone and inside tiers', async () => {
    const eu = provider('openai');
    const us = provider('openai');
    const deployments: Deployment[] = [
      { id: 'eu', provider: eu, model: 'gpt-eu' },
      { id: 'us', provider: us, model: 'gpt-us' },
    ];
    const { service } = gateway({
      providers: [createLocalProvider()],
      deployments,
      tiers: { fast: ['eu', 'us'], capable: ['us'] },
    });
    expect(await service.complete(ask('hi', { model: 'us' }), createCallContext())).toMatchObject({
      model: 'openai/gpt-us',
      deployment: 'us',
    });
    expect(await service.complete(ask('hi'), createCallContext())).toMatchObject({
      deployment: 'eu',
      tier: 'fast',
    });
    expect(service.describe().tiers).toEqual([
      { name: 'fast', models: ['openai/gpt-eu', 'openai/gpt-us'] },
      { name: 'capable', models: ['openai/gpt-us'] },
    ]);
    expect(service.names()).toEqual(expect.arrayContaining(['local', 'eu', 'us', 'fast', 'capable']));
  });

  it('refuses unknown names with NOT_FOUND listing tiers, deployments and providers', async () => {
    const { service } = gateway();
    const err = (await service
      .complete(ask('hi', { model: 'gpt-9' }), createCallContext())
      .catch((e) => e)) as ClawmeshError;
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain('tiers: fast, capable');
    expect(() => gateway({ tiers: { fast: ['nowhere/x'] } })).toThrow(
      /models\.tiers\.fast\.0: unknown model provider "nowhere"/,
    );
  });

  it('streams text deltas to ctx.onDelta before the call returns, and as an async iterable', async () => {
    const { service } = gateway({ tiers: {} });
    const deltas: string[] = [];
    const response = await service.complete(
      ask('hello there'),
      createCallContext({ onDelta: (d) => deltas.push(d) }),
    );
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(response.content);

    const events: string[] = [];
    let done: unknown;
    for await (const event of service.stream(ask('hello there'), createCallContext())) {
      if (event.type === 'text') events.push(event.text);
      else done = event.response;
    }
    expect(events.join('')).toBe(response.content);
    expect(done).toMatchObject({ content: response.content, model: 'local/default', cached: false });
  });
});
