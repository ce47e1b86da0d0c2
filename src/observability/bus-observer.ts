import type { Bus, BusEvent, EventHandler } from '../bus/types.ts';
import {
  type FastCounterChild,
  type FastHistogramChild,
  fastCounter,
  fastHistogram,
} from './fast-metrics.ts';
import type { Metrics } from './metrics.ts';
import { inEventSpan, tracing } from './tracing.ts';

/** Options of {@link observeBus}. */
export interface BusObserverOptions {
  /** Counts consumed events, their lag and dead letters; absent when metrics are off. */
  metrics?: Metrics | undefined;
  /** Tries of one event before the bus dead-letters it (the bus's own `maxAttempts`). */
  maxAttempts: number;
}

/**
 * The epoch milliseconds of an event's ISO time. The events of one turn are published within
 * the same millisecond or so and share their time string: the last one parsed is kept, since
 * parsing a date costs more than the rest of the event's metering.
 */
function createTimeParser(): (iso: string) => number {
  let lastIso = '';
  let lastMs = Number.NaN;
  return (iso) => {
    if (iso !== lastIso) {
      lastIso = iso;
      lastMs = Date.parse(iso);
    }
    return lastMs;
  };
}

/** Failed events remembered per process to tell a last try; the oldest go first. */
const MAX_TRACKED = 10_000;

/**
 * Observes the consumers of a bus: each event is counted (`ok`, `error`) with its lag — the
 * seconds since it was published —, and one whose handler fails its `maxAttempts`-th try is
 * counted as a dead letter. On a broker (Redis Streams, JetStream, RabbitMQ) each handled event
 * also runs in a consumer span whose parent is the event's `traceparent` (the turn that
 * published it), wherever the consumer runs. The in-process bus hands an event to a consumer in
 * the publishing process a tick later: its consumers get no span (the turn's span covers that
 * process), which keeps a traced monolith's turns cheap. The bus itself is unchanged.
 */
export function observeBus<B extends Bus>(bus: B, options: BusObserverOptions): B {
  const { metrics, maxAttempts } = options;
  const traced = tracing().enabled && bus.kind !== 'memory';
  if (!metrics && !traced) return bus;
  const subscribe = bus.subscribe.bind(bus);
  const failures = new Map<string, number>();
  const publishedAt = createTimeParser();

  const observe = (group: string, handler: EventHandler): EventHandler => {
    // Series per topic, found once: prom-client hashes a label object on every call.
    const children = new Map<string, { ok: FastCounterChild; lag: FastHistogramChild }>();
    const childrenOf = (topic: string, metered: Metrics) => {
      let child = children.get(topic);
      if (!child) {
        child = {
          ok: fastCounter(metered.busConsumed, { topic, group, outcome: 'ok' }),
          lag: fastHistogram(metered.busConsumeLag, { topic, group }),
        };
        children.set(topic, child);
      }
      return child;
    };
    const settled = (event: BusEvent, ok: boolean) => {
      if (!metrics) return;
      if (ok) childrenOf(event.type, metrics).ok.inc();
      else metrics.busConsumed.inc({ topic: event.type, group, outcome: 'error' });
      const key = `${group}\u0000${event.id}`;
      if (ok) {
        if (failures.size > 0) failures.delete(key);
        return;
      }
      const tries = (failures.get(key) ?? 0) + 1;
      failures.delete(key);
      if (tries >= maxAttempts) {
        metrics.busDeadLetters.inc({ topic: event.type, group });
        return;
      }
      failures.set(key, tries);
      if (failures.size > MAX_TRACKED) failures.delete(failures.keys().next().value!);
    };
    const run = (event: BusEvent): Promise<void> | void => {
      const result = handler(event);
      if (result && typeof result.then === 'function') {
        return result.then(
          () => settled(event, true),
          (err: unknown) => {
            settled(event, false);
            throw err;
          },
        );
      }
      settled(event, true);
    };
    const attempt = (event: BusEvent): Promise<void> | void => {
      try {
        return run(event);
      } catch (err) {
        settled(event, false);
        throw err;
      }
    };
    return (event) => {
      if (metrics) {
        const lag = (Date.now() - publishedAt(event.time)) / 1000;
        if (lag >= 0) childrenOf(event.type, metrics).lag.observe(lag);
      }
      if (!traced) return attempt(event);
      return inEventSpan(
        `${event.type} process`,
        event.traceparent,
        () => ({
          'messaging.system': bus.kind,
          'messaging.operation.type': 'process',
          'messaging.destination.name': event.type,
          'messaging.consumer.group.name': group,
          'messaging.message.id': event.id,
        }),
        () => attempt(event),
      );
    };
  };

  Object.assign(bus, {
    subscribe: (topic: string, group: string, handler: EventHandler) =>
      subscribe(topic, group, observe(group, handler)),
  });
  return bus;
}
