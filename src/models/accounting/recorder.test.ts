import { describe, expect, it } from 'vitest';
import type { ModelResponse } from '../../core/contracts/models.ts';
import { createMetrics, type Metrics } from '../../observability/metrics.ts';
import { createModelMetricsRecorder, OTHER_MODEL } from './recorder.ts';

const route = Object.freeze({ by: 'difficulty' as const, reason: 'difficulty 0 < 0.5 -> tier fast' });

const answer = (extra: Partial<ModelResponse> = {}): ModelResponse => ({
  content: 'ok',
  toolCalls: [],
  finishReason: 'stop',
  usage: { inputTokens: 10, outputTokens: 4 },
  model: 'openai/gpt-4o-mini',
  latencyMs: 12,
  cached: false,
  tier: 'fast',
  route,
  fallbackUsed: false,
  costUsd: 0.001,
  ...extra,
});

/** A sample's value from the registry's JSON (histogram samples by their `_count`/`_sum` name). */
async function value(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const json = await metrics.registry.getMetricsAsJSON();
  const base = name.replace(/_(count|sum)$/, '');
  const metric = json.find((m) => m.name === name) ?? json.find((m) => m.name === base);
  const found = (metric?.values ?? []).find(
    (v) =>
      ((v as { metricName?: string }).metricName ?? name) === name &&
      Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l),
  );
  return found?.value ?? 0;
}

describe('model metrics recorder', () => {
  it('shows every call on the first read of the registry after it', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const recorder = createModelMetricsRecorder(metrics);
    for (let i = 0; i < 3; i++) recorder.completed(answer(), 'support', undefined);
    recorder.completed(answer({ cached: true, costUsd: 0 }), 'support', undefined);
    recorder.failed('capable', 'capable', 'tier', 'UNAVAILABLE');
    recorder.cacheLookup('miss');

    const requests = { model: 'openai/gpt-4o-mini', tier: 'fast', route: 'difficulty' };
    expect(await value(metrics, 'clawmesh_model_requests_total', { ...requests, outcome: 'ok' })).toBe(3);
    expect(await value(metrics, 'clawmesh_model_requests_total', { ...requests, outcome: 'cached' })).toBe(1);
    expect(
      await value(metrics, 'clawmesh_model_requests_total', { model: 'capable', outcome: 'UNAVAILABLE' }),
    ).toBe(1);
    expect(
      await value(metrics, 'clawmesh_model_errors_total', { target: 'capable', code: 'UNAVAILABLE' }),
    ).toBe(1);
    // A cached answer adds no tokens and no cost.
    expect(await value(metrics, 'clawmesh_model_tokens_total', { direction: 'input' })).toBe(30);
    expect(
      await value(metrics, 'clawmesh_model_agent_tokens_total', { agent: 'support', direction: 'output' }),
    ).toBe(12);
    expect(await value(metrics, 'clawmesh_model_cost_usd_total', { agent: 'support' })).toBeCloseTo(0.003);
    expect(await value(metrics, 'clawmesh_model_cache_lookups_total', { result: 'miss' })).toBe(1);
    expect(
      await value(metrics, 'clawmesh_model_latency_seconds_count', {
        model: 'openai/gpt-4o-mini',
        cached: 'false',
      }),
    ).toBe(3);

    // Counted once: a second read adds nothing, a new call adds one.
    recorder.completed(answer(), 'support', 250);
    expect(await value(metrics, 'clawmesh_model_requests_total', { ...requests, outcome: 'ok' })).toBe(4);
    expect(await value(metrics, 'clawmesh_model_requests_total', { ...requests, outcome: 'ok' })).toBe(4);
    expect(
      await value(metrics, 'clawmesh_model_time_to_first_token_seconds_sum', { model: 'openai/gpt-4o-mini' }),
    ).toBeCloseTo(0.25);
  });

  it('counts the calls of several gateways sharing one registry', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const one = createModelMetricsRecorder(metrics);
    const two = createModelMetricsRecorder(metrics);
    for (let i = 0; i < 1500; i++) one.completed(answer(), undefined, undefined);
    two.completed(answer({ fallbackUsed: true }), undefined, undefined);
    const labels = { model: 'openai/gpt-4o-mini', outcome: 'ok' };
    expect(await value(metrics, 'clawmesh_model_requests_total', labels)).toBe(1501);
    expect(
      await value(metrics, 'clawmesh_model_latency_seconds_count', { model: 'openai/gpt-4o-mini' }),
    ).toBe(1501);
    expect(await value(metrics, 'clawmesh_model_fallbacks_total', { tier: 'fast' })).toBe(1);
    expect((await metrics.registry.metrics()).split('\n')).toContain(
      'clawmesh_model_agent_tokens_total{agent="none",direction="input"} 15010',
    );
  });

  it('bounds the series of ad-hoc model names callers make up, never those of the config', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const recorder = createModelMetricsRecorder(metrics, new Set(['openai/gpt-4o-mini']));
    for (let i = 0; i < 1000; i++) {
      recorder.completed(answer({ model: `local/made-up-${i}`, route: undefined }), 'a', undefined);
    }
    for (let i = 0; i < 1000; i++) recorder.failed(`openai/made-up-${i}`, undefined, 'exact', 'UNAVAILABLE');
    recorder.completed(answer(), 'a', undefined);
    const json = await metrics.registry.getMetricsAsJSON();
    const models = new Set(
      json.find((m) => m.name === 'clawmesh_model_requests_total')?.values.map((v) => v.labels.model),
    );
    expect(models.size).toBeLessThanOrEqual(258);
    expect(models).toContain(OTHER_MODEL);
    expect(models).toContain('openai/gpt-4o-mini');
    // Every call is still counted.
    expect(
      await value(metrics, 'clawmesh_model_tokens_total', { model: OTHER_MODEL, direction: 'input' }),
    ).toBe(10 * (1000 - 256));
  });

  it('records nothing and costs nothing without a registry', () => {
    const recorder = createModelMetricsRecorder(undefined);
    expect(() => recorder.completed(answer(), 'a', 1)).not.toThrow();
  });
});
