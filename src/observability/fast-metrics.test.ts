import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { fastCounter, fastHistogram } from './fast-metrics.ts';

/** The same metric in two registries: one fed through prom-client's API, one through fast children. */
function pair<M>(make: (registry: Registry) => M) {
  const slow = new Registry();
  const fast = new Registry();
  return { slow, fast, slowMetric: make(slow), fastMetric: make(fast) };
}

describe('fast metric children', () => {
  it('expose exactly what prom-client exposes for the same observations', async () => {
    const buckets = [0.001, 0.01, 0.1, 1];
    const histograms = pair(
      (registry) =>
        new Histogram({
          name: 'x_seconds',
          help: 'h',
          labelNames: ['service', 'method'],
          buckets,
          registers: [registry],
        }),
    );
    const counters = pair(
      (registry) =>
        new Counter({ name: 'x_total', help: 'c', labelNames: ['service'], registers: [registry] }),
    );
    const values = [0.0005, 0.002, 0.002, 0.05, 0.3, 7, 0.01];
    const child = fastHistogram(histograms.fastMetric, { service: 'models', method: 'complete' });
    const other = fastHistogram(histograms.fastMetric, { service: 'skills', method: 'invoke' });
    const count = fastCounter(counters.fastMetric, { service: 'models' });
    for (const value of values) {
      histograms.slowMetric.observe({ service: 'models', method: 'complete' }, value);
      child.observe(value);
      counters.slowMetric.inc({ service: 'models' });
      count.inc();
    }
    histograms.slowMetric.zero({ service: 'skills', method: 'invoke' });
    other.observe(0.02);
    histograms.slowMetric.observe({ service: 'skills', method: 'invoke' }, 0.02);
    count.inc(2.5);
    counters.slowMetric.inc({ service: 'models' }, 2.5);
    expect(await histograms.fast.metrics()).toBe(await histograms.slow.metrics());
    expect(await counters.fast.metrics()).toBe(await counters.slow.metrics());
    expect(await histograms.fast.metrics()).toContain(
      'x_seconds_count{service="models",method="complete"} 7',
    );
  });

  it('keep what the public API records for the same series', async () => {
    const registry = new Registry();
    const counter = new Counter({ name: 'y_total', help: 'c', labelNames: ['a'], registers: [registry] });
    counter.inc({ a: '1' }, 3);
    const child = fastCounter(counter, { a: '1' });
    child.inc();
    counter.inc({ a: '1' });
    expect(await registry.metrics()).toContain('y_total{a="1"} 5');
  });
});
