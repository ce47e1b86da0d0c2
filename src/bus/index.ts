import { ClawmeshError } from '../core/errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { createMemoryBus, type MemoryBusOptions } from './memory.ts';
import type { JetStreamBusOptions } from './nats-jetstream.ts';
import { type PublishBufferOptions, withPublishBuffer } from './outbox.ts';
import type { RabbitMqBusOptions } from './rabbitmq.ts';
import type { RedisStreamsBusOptions } from './redis-streams.ts';
import type { Bus } from './types.ts';

/** The bus adapters, as `CLAWMESH_BUS` names them. */
export const BUS_KINDS = ['memory', 'redis', 'nats', 'rabbitmq'] as const;

/** One of {@link BUS_KINDS}. */
export type BusKind = (typeof BUS_KINDS)[number];

/** Options of {@link createBus}. */
export interface CreateBusOptions {
  kind: BusKind;
  logger: Logger;
  /** Counts dropped events and exports the publish buffer's size. */
  metrics?: Metrics;
  /** Tries before an event goes to `<topic>.dead-letter`, for every kind (default 3). */
  maxAttempts?: number;
  /** `kind: 'memory'`: the in-process bus's options. */
  memory?: Omit<MemoryBusOptions, 'logger'>;
  /** `kind: 'redis'`: a connected client (shared, kept open) or a `url` (`REDIS_URL`), and stream options. */
  redis?: Omit<RedisStreamsBusOptions, 'logger'>;
  /** `kind: 'nats'`: a connection (shared, kept open) or `servers` (`NATS_URL`), and stream options. */
  nats?: Omit<JetStreamBusOptions, 'logger'>;
  /** `kind: 'rabbitmq'`: the broker URL (`RABBITMQ_URL`). */
  rabbitmqUrl?: string;
  /** `kind: 'rabbitmq'`: exchange, prefetch and the other options. */
  rabbitmq?: Omit<RabbitMqBusOptions, 'url' | 'logger'>;
  /** The publish buffer in front of a broker (every kind but `memory`). */
  buffer?: Omit<PublishBufferOptions, 'logger' | 'metrics'>;
}

/** The bus a process runs on: a {@link Bus} with a readiness check and its buffer's figures. */
export interface ManagedBus extends Bus {
  /** Resolves when the broker answers (at once for `memory`). */
  ping(): Promise<void>;
  /** Events published and not yet confirmed by the broker (0 for `memory`). */
  readonly buffered: number;
  /** Events the publish buffer dropped: the oldest past its bound, or refused as invalid. */
  readonly dropped: number;
}

const missing = (kind: BusKind, what: string) =>
  new ClawmeshError('INVALID_ARGUMENT', `CLAWMESH_BUS=${kind} needs ${what}`);

/**
 * Creates the bus a deployment's configuration names. `memory` is the in-process bus; the
 * durable kinds connect to their broker (failing with `UNAVAILABLE` if it cannot be reached at
 * start), are wrapped in a publish buffer ({@link withPublishBuffer}) so publishing never
 * blocks or fails a turn, and load their adapter only when chosen.
 *
 * @example
 * const bus = await createBus({ kind: 'redis', redis: { client: await connections.redis() }, logger });
 */
export async function createBus(options: CreateBusOptions): Promise<ManagedBus> {
  const { kind, logger, metrics } = options;
  const maxAttempts = options.maxAttempts;
  let inner: Bus;
  switch (kind) {
    case 'memory': {
      const bus = createMemoryBus({ maxAttempts, ...options.memory, logger });
      return Object.assign(bus, { ping: async () => undefined, buffered: 0, dropped: 0 });
    }
    case 'redis': {
      if (!options.redis?.client && !options.redis?.url) throw missing(kind, 'a Redis client or REDIS_URL');
      const { createRedisStreamsBus } = await import('./redis-streams.ts');
      inner = await createRedisStreamsBus({ maxAttempts, ...options.redis, logger });
      break;
    }
    case 'nats': {
      if (!options.nats?.connection && !options.nats?.servers)
        throw missing(kind, 'a NATS connection or NATS_URL');
      const { createJetStreamBus } = await import('./nats-jetstream.ts');
      inner = await createJetStreamBus({ maxAttempts, ...options.nats, logger });
      break;
    }
    case 'rabbitmq': {
      if (!options.rabbitmqUrl) throw missing(kind, 'RABBITMQ_URL');
      const { createRabbitMqBus } = await import('./rabbitmq.ts');
      inner = await createRabbitMqBus({ maxAttempts, ...options.rabbitmq, url: options.rabbitmqUrl, logger });
      break;
    }
    default:
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `unknown bus kind "${String(kind)}": use one of ${BUS_KINDS.join(', ')}`,
      );
  }
  return withPublishBuffer(inner, { ...options.buffer, logger, metrics });
}

export { DEAD_LETTER_SUFFIX } from './memory.ts';
export type { BufferedBus, PublishBufferOptions } from './outbox.ts';
export { withPublishBuffer } from './outbox.ts';
export type { Bus, BusEvent, EventHandler, Subscription } from './types.ts';
