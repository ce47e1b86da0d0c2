import type { CallContext } from '../core/context.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { createEvent, type EventTopics, type Topic } from './events.ts';
import type { Bus } from './types.ts';

/** Publishes events without ever blocking or failing the caller. */
export interface EventPublisher {
  emit<T extends Topic>(type: T, data: EventTopics[T], ctx?: CallContext): void;
}

/** An {@link EventPublisher} over a bus: a publish failure is logged and counted, never thrown. */
export function createEventPublisher(bus: Bus, logger: Logger, metrics?: Metrics): EventPublisher {
  // One counter child per topic and outcome, looked up once rather than on every event.
  const counters = new Map<string, { inc(): void }>();
  const count = (topic: string, outcome: 'ok' | 'error') => {
    if (!metrics) return;
    const key = `${topic}\u0000${outcome}`;
    let counter = counters.get(key);
    if (!counter) {
      counter = metrics.eventsPublished.labels({ topic, outcome });
      counters.set(key, counter);
    }
    counter.inc();
  };
  return {
    emit(type, data, ctx) {
      const event = createEvent(type, data, ctx);
      bus.publish(event).then(
        () => count(type, 'ok'),
        (err: unknown) => {
          count(type, 'error');
          logger.error({ err, topic: type, eventId: event.id }, 'could not publish event');
        },
      );
    },
  };
}
