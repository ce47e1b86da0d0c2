import type { CallContext } from '../core/context.ts';
import { callFields, type Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { createEvent, type EventTopics, type Topic } from './events.ts';
import { eventLogFields } from './log-fields.ts';
import type { Bus } from './types.ts';

/** Publishes events without ever blocking or failing the caller. */
export interface EventPublisher {
  emit<T extends Topic>(type: T, data: EventTopics[T], ctx?: CallContext): void;
}

/** An {@link EventPublisher} over a bus: a publish failure is logged and counted, never thrown. */
export function createEventPublisher(bus: Bus, logger: Logger, metrics?: Metrics): EventPublisher {
  const published = metrics?.eventCounts;
  return {
    emit(type, data, ctx) {
      const event = createEvent(type, data, ctx);
      if (published) published.set(type, (published.get(type) ?? 0) + 1);
      bus.publish(event).catch((err: unknown) => {
        metrics?.eventsPublished.inc({ topic: type, outcome: 'error' });
        logger.error(
          { err, ...eventLogFields(event), ...(ctx ? callFields(ctx) : {}) },
          'could not publish event',
        );
      });
    },
  };
}
