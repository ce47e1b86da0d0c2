import { describe, expect, it } from 'vitest';
import { createMemoryBus } from '../bus/memory.ts';
import type { BusEvent } from '../bus/types.ts';
import { observeBus } from './bus-observer.ts';
import { createMetrics } from './metrics.ts';

const event = (id: string, type: string, ageMs = 0): BusEvent => ({
  id,
  type,
  version: 1,
  time: new Date(Date.now() - ageMs).toISOString(),
  data: {},
});

async function sampleValue(
  metrics: ReturnType<typeof createMetrics>,
  name: string,
  labels: Record<string, string>,
) {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const sample = metric?.values.find((v) =>
    Object.entries(labels).every(([key, value]) => v.labels[key] === value),
  );
  return sample?.value ?? 0;
}

describe('observeBus', () => {
  it('counts consumed events per topic, group and outcome, with their lag', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const bus = observeBus(createMemoryBus({ maxAttempts: 3, retryDelayMs: 1 }), { metrics, maxAttempts: 3 });
    await bus.subscribe('*', 'audit', async () => undefined);
    await bus.subscribe('message.received', 'sync', () => undefined);
    await bus.publish(event('e1', 'message.received', 2000));
    await bus.publish(event('e2', 'response.generated'));
    await bus.drain();
    expect(
      await sampleValue(metrics, 'clawmesh_bus_events_consumed_total', {
        topic: 'message.received',
        group: 'audit',
        outcome: 'ok',
      }),
    ).toBe(1);
    expect(
      await sampleValue(metrics, 'clawmesh_bus_events_consumed_total', {
        topic: 'message.received',
        group: 'sync',
        outcome: 'ok',
      }),
    ).toBe(1);
    expect(
      await sampleValue(metrics, 'clawmesh_bus_events_consumed_total', {
        topic: 'response.generated',
        group: 'audit',
        outcome: 'ok',
      }),
    ).toBe(1);
    const lag = (await metrics.registry.getMetricsAsJSON()).find(
      (m) => m.name === 'clawmesh_bus_consume_lag_seconds',
    );
    const sum = lag?.values.find(
      (v) =>
        (v as { metricName?: string }).metricName === 'clawmesh_bus_consume_lag_seconds_sum' &&
        v.labels.group === 'sync',
    );
    // The event was published two seconds before it was handled.
    expect(sum?.value).toBeGreaterThanOrEqual(1.9);
    // The next event, with a time of its own, has its own lag (the last time parsed is not reused).
    const fresh = lag?.values.find(
      (v) =>
        (v as { metricName?: string }).metricName === 'clawmesh_bus_consume_lag_seconds_sum' &&
        v.labels.group === 'audit' &&
        v.labels.topic === 'response.generated',
    );
    expect(fresh?.value).toBeGreaterThanOrEqual(0);
    expect(fresh?.value).toBeLessThan(1);
  });

  it('counts an event whose handler fails every try as one dead letter', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const bus = observeBus(createMemoryBus({ maxAttempts: 2, retryDelayMs: 1 }), { metrics, maxAttempts: 2 });
    const dead: string[] = [];
    await bus.subscribe('skill.invoked', 'flaky', async () => {
      throw new Error('consumer down');
    });
    await bus.subscribe('skill.invoked.dead-letter', 'ops', (e) => {
      dead.push(e.id);
    });
    let syncFailures = 0;
    await bus.subscribe('skill.invoked', 'sync-throw', () => {
      syncFailures += 1;
      if (syncFailures === 1) throw new Error('once');
    });
    await bus.publish(event('e3', 'skill.invoked'));
    await bus.drain();
    expect(dead).toEqual(['e3']);
    expect(
      await sampleValue(metrics, 'clawmesh_bus_events_consumed_total', { group: 'flaky', outcome: 'error' }),
    ).toBe(2);
    expect(
      await sampleValue(metrics, 'clawmesh_bus_dead_letters_total', {
        topic: 'skill.invoked',
        group: 'flaky',
      }),
    ).toBe(1);
    // A handler that throws once and then succeeds is retried, not dead-lettered.
    expect(
      await sampleValue(metrics, 'clawmesh_bus_events_consumed_total', {
        group: 'sync-throw',
        outcome: 'error',
      }),
    ).toBe(1);
    expect(
      await sampleValue(metrics, 'clawmesh_bus_events_consumed_total', {
        group: 'sync-throw',
        outcome: 'ok',
      }),
    ).toBe(1);
    expect(await sampleValue(metrics, 'clawmesh_bus_dead_letters_total', { group: 'sync-throw' })).toBe(0);
  });

  it('leaves the bus untouched when neither metrics nor tracing is on', () => {
    const bus = createMemoryBus();
    const subscribe = bus.subscribe;
    expect(observeBus(bus, { maxAttempts: 3 })).toBe(bus);
    expect(bus.subscribe).toBe(subscribe);
  });
});
