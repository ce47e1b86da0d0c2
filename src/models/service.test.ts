import { describe, expect, it } from 'vitest';
import { createCallContext } from '../core/context.ts';
import type { ModelRequest } from '../core/contracts/models.ts';
import { ClawmeshError } from '../core/errors.ts';
import { createMetrics } from '../observability/metrics.ts';
import { createBudgets } from './accounting/budgets.ts';
import { createMemoryUsageStore } from './accounting/usage-store.ts';
import { createLocalProvider } from './providers/local/provider.ts';
import { type CompletionInfo, createModelsService } from './service.ts';
import type { ModelProvider, ProviderRequest } from './types.ts';

/** A provider that records the model names it was asked for and answers with them. */
function recordingProvider(name: string, defaultModel: string): ModelProvider & { seen: string[] } {
  const seen: string[] = [];
  return {
    name,
    defaultModel,
    seen,
    async complete(request: ProviderRequest) {
      seen.push(request.model);
      return {
        content: `${name}:${request.model}`,
        toolCalls: [],
        finishReason: 'stop',
        usage: { inputTokens: 1, outputTokens: 2 },
      };
    },
  };
}

/** A provider that never answers unless its signal aborts. */
const hangingProvider: ModelProvider = {
  name: 'slow',
  defaultModel: 'forever',
  complete: (_request, _ctx, signal) =>
    new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason))),
};

const ask = (model?: string): ModelRequest => ({
  ...(model ? { model } : {}),
  messages: [{ role: 'user', content: 'hello' }],
});

describe('models service', () => {
  const openai = recordingProvider('openai', 'gpt-4o-mini');
  const other = recordingProvider('other', 'big');
  const completed: CompletionInfo[] = [];
  const service = createModelsService({
    providers: [openai, other, createLocalProvider(), hangingProvider],
    defaultModel: 'local',
    onCompleted: (info) => completed.push(info),
  });
  const ctx = createCallContext();

  it('routes provider/model to that provider with that model', async () => {
    const response = await service.complete(ask('openai/gpt-4.1'), ctx);
    expect(openai.seen.at(-1)).toBe('gpt-4.1');
    expect(response.model).toBe('openai/gpt-4.1');
    expect(response.content).toBe('openai:gpt-4.1');
    expect(response.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('keeps slashes after the provider as part of the model name', async () => {
    await service.complete(ask('other/meta-llama/llama-3-8b'), ctx);
    expect(other.seen.at(-1)).toBe('meta-llama/llama-3-8b');
  });

  it("uses the provider's default model for a bare provider name", async () => {
    const response = await service.complete(ask('other'), ctx);
    expect(response.model).toBe('other/big');
  });

  it('uses the default model when the request names none', async () => {
    const response = await service.complete(ask(), ctx);
    expect(response.model).toBe('local/default');
    expect(response.finishReason).toBe('stop');
  });

  it('rejects an unknown provider with NOT_FOUND naming the known ones', async () => {
    const err = await service.complete(ask('nope/x'), ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClawmeshError);
    expect((err as ClawmeshError).code).toBe('NOT_FOUND');
    expect((err as ClawmeshError).message).toContain('nope');
    expect((err as ClawmeshError).message).toContain('openai, other, local');
  });

  it('reports each completion to onCompleted', async () => {
    completed.length = 0;
    await service.complete(ask('openai'), ctx);
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({
      model: 'openai/gpt-4o-mini',
      usage: { inputTokens: 1, outputTokens: 2 },
    });
  });

  it('aborts the provider at the call deadline', async () => {
    const started = Date.now();
    const err = await service
      .complete(ask('slow'), createCallContext({ timeoutMs: 50 }))
      .catch((e: unknown) => e);
    expect((err as ClawmeshError).code).toBe('DEADLINE_EXCEEDED');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('lists the default and each provider default model', async () => {
    expect(await service.list({}, ctx)).toEqual({
      default: 'local',
      models: ['openai/gpt-4o-mini', 'other/big', 'local/default', 'slow/forever'],
      tiers: [
        { name: 'fast', models: ['local/default'] },
        { name: 'capable', models: ['local/default'] },
      ],
    });
  });

  it('refuses a default model whose provider is missing', () => {
    expect(() =>
      createModelsService({ providers: [createLocalProvider()], defaultModel: 'openai/gpt' }),
    ).toThrow(/defaultModel/);
  });
});

describe('the Model Gateway metrics under made-up model names', () => {
  it('keeps the series of configured deployments and tiers, however many ad-hoc names callers send', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const local = createLocalProvider();
    const service = createModelsService({
      providers: [local],
      defaultModel: 'local',
      deployments: [{ id: 'mine', provider: local, model: 'special' }],
      metrics,
    });
    const ask = (model: string) =>
      service.complete({ model, messages: [{ role: 'user', content: 'hi' }] }, createCallContext());
    for (let i = 0; i < 300; i++) await ask(`local/made-up-${i}`);
    await ask('mine');
    await ask('fast');
    const text = await metrics.registry.metrics();
    const series = text.split('\n').filter((line) => line.startsWith('clawmesh_model_requests_total{'));
    expect(series.length).toBeLessThanOrEqual(256 + 3);
    expect(series.some((line) => line.includes('model="local/special"'))).toBe(true);
    expect(series.some((line) => line.includes('model="local/default",tier="fast"'))).toBe(true);
    expect(series.some((line) => line.includes('model="other"'))).toBe(true);
  });
});

describe('models service: streams left mid-answer', () => {
  it('charges the budgets for an estimate when the consumer breaks out after text', async () => {
    // Two words, then nothing until the call is stopped: the usage never comes.
    const streaming: ModelProvider = {
      name: 'streamer',
      defaultModel: 'm',
      complete: () => Promise.reject(new Error('streams only')),
      async *stream(_request, _ctx, signal) {
        yield { type: 'text', text: 'twelve chars' };
        yield { type: 'text', text: 'and sixteen more' };
        await new Promise((resolve) => signal?.addEventListener('abort', resolve));
      },
    };
    const budgets = createBudgets({
      limits: { perUserDaily: { tokens: 10_000 } },
      store: createMemoryUsageStore(),
    });
    const service = createModelsService({ providers: [streaming], defaultModel: 'streamer', budgets });
    const ctx = createCallContext({ userId: 'u1' });
    const texts: string[] = [];
    for await (const event of service.stream(ask(), ctx)) {
      if (event.type === 'text') texts.push(event.text);
      if (texts.length === 2) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
    // 'hello': 2 tokens and 4 for the message; 28 characters streamed: 7 tokens.
    expect((await service.usage(ctx)).userToday?.tokens).toBe(2 + 4 + 7);
  });
});
