import { Gauge } from 'prom-client';
import { ClawmeshError } from '../core/errors.ts';
import { settlesWithin } from '../core/wait.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { eventLogFields } from './log-fields.ts';
import type { EventSpool } from './spool.ts';
import type { Bus, BusEvent } from './types.ts';

/** Options of {@link withPublishBuffer}. */
export interface PublishBufferOptions {
  /** Events kept while the broker cannot take them; past this the oldest waiting is dropped (default 10,000). */
  maxBuffered?: number;
  /** The first delay before sending again after a failure, doubled up to `maxRetryMs` (default 100). */
  retryMs?: number;
  /** The longest delay between two tries (default 5000). */
  maxRetryMs?: number;
  /** Events sent to the broker at once (default 64). */
  batchSize?: number;
  /** A send the broker has not confirmed after this long counts as failed and is tried again (default 5000). */
  sendTimeoutMs?: number;
  /** The longest `drain()` waits for the buffer to empty before it gives up with a warning (default 5000). */
  drainTimeoutMs?: number;
  logger: Logger;
  /** Counts drops in `eventsPublished` (`dropped`, `error`) and exports the buffer size as a gauge. */
  metrics?: Pick<Metrics, 'eventsPublished' | 'registry'>;
  /**
   * Where events go once the broker fails to take them, and stay until it has: what an earlier
   * process left there is sent first. Without it, events still buffered when the process stops
   * or dies are lost.
   */
  spool?: EventSpool;
}

/** A bus whose `publish` never waits on the broker nor fails: see {@link withPublishBuffer}. */
export interface BufferedBus extends Bus {
  /** The bus events are sent to. */
  readonly inner: Bus;
  /** Events accepted and not yet confirmed by the broker. */
  readonly buffered: number;
  /** Events dropped since the start: oldest ones past `maxBuffered`, or refused as invalid. */
  readonly dropped: number;
  /** Resolves when the broker answers (the inner bus's `ping`, when it has one). */
  ping(): Promise<void>;
}

const BUFFERED_GAUGE = 'clawmesh_bus_buffered_events';

/**
 * Wraps a bus so that publishing never blocks or fails a turn. `publish` appends the event to
 * a buffer and returns at once; a background sender hands the buffer to `bus` in batches, and
 * when the broker is down keeps the events and tries again with a doubling delay. The buffer is
 * bounded: only when `maxBuffered` is reached is the oldest event waiting to be sent dropped,
 * counted and logged (an error line at most once a second).
 * `drain()` waits, within `drainTimeoutMs`, until the buffer is sent, then drains `bus` (a drain
 * again with nothing published since is the same drain); `close()` drains and reports what could
 * not be sent. With a `spool`, every event waiting while the broker fails is also written to
 * it (before `publish` returns) until the buffer is empty again, and `close()` keeps what is
 * left there: a process that stops or is killed during an outage loses nothing, and the next
 * one with the same spool sends it (consumers dedupe by event id, so an event sent twice is
 * handled once). Without one the buffer is in memory only.
 *
 * @example
 * const bus = withPublishBuffer(await createRedisStreamsBus({ url, logger }), { logger, metrics });
 */
export function withPublishBuffer(bus: Bus, options: PublishBufferOptions): BufferedBus {
  const maxBuffered = Math.max(1, options.maxBuffered ?? 10_000);
  const retryMs = Math.max(1, options.retryMs ?? 100);
  const maxRetryMs = Math.max(retryMs, options.maxRetryMs ?? 5000);
  const batchSize = Math.max(1, options.batchSize ?? 64);
  const sendTimeoutMs = options.sendTimeoutMs ?? 5000;
  const drainTimeoutMs = options.drainTimeoutMs ?? 5000;
  const { logger, metrics } = options;

  // A queue as an array and a head index: shifting an array is O(n).
  let queue: BusEvent[] = [];
  let head = 0;
  let sending = 0;
  let dropped = 0;
  let failures = 0;
  let pumping = false;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let wakeRetry: (() => void) | undefined;
  let idleWaiters: Array<() => void> = [];
  let lastDropLog = 0;
  let dropsSinceLog = 0;
  /** The batch the broker is being handed. */
  let inFlight: BusEvent[] = [];
  let spool = options.spool;
  /** Whether the spool holds events the broker may not have taken (it is emptied with the buffer). */
  let spooling = false;
  /** Events written to the spool since it was last emptied or rewritten. */
  let spooled = 0;
  const spill = (events: readonly BusEvent[]) => {
    if (!spool) return;
    if (!spool.append(events)) {
      spool = undefined;
      return;
    }
    spooled += events.length;
    // A long outage must not fill the disk: once the file holds twice what the buffer may, it is
    // rewritten with what the buffer holds (the events dropped from memory go from it too).
    if (spooled > 2 * maxBuffered) {
      const held = [...inFlight, ...queue.slice(head)];
      spool.clear();
      spooled = 0;
      if (!spool.append(held)) spool = undefined;
      else spooled = held.length;
    }
  };

  const waiting = () => queue.length - head;
  const buffered = () => waiting() + sending;

  if (metrics && !metrics.registry.getSingleMetric(BUFFERED_GAUGE)) {
    new Gauge({
      name: BUFFERED_GAUGE,
      help: 'Events accepted by the bus and not yet confirmed by the broker',
      registers: [metrics.registry],
      collect() {
        this.set(buffered());
      },
    });
  }

  const drop = (event: BusEvent, outcome: 'dropped' | 'error') => {
    dropped += 1;
    metrics?.eventsPublished.inc({ topic: event.type, outcome });
  };

  const dropOldest = () => {
    const oldest = queue[head]!;
    queue[head] = undefined as unknown as BusEvent;
    head += 1;
    drop(oldest, 'dropped');
    dropsSinceLog += 1;
    const now = Date.now();
    if (now - lastDropLog >= 1000) {
      logger.error(
        { dropped: dropsSinceLog, total: dropped, maxBuffered, topic: oldest.type },
        'event buffer full: dropped the oldest events',
      );
      lastDropLog = now;
      dropsSinceLog = 0;
    }
  };

  const takeBatch = (): BusEvent[] => {
    const end = Math.min(queue.length, head + batchSize);
    const batch = queue.slice(head, end);
    head = end;
    if (head === queue.length) {
      queue = [];
      head = 0;
    } else if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
    return batch;
  };

  const sendOne = (event: BusEvent): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ClawmeshError('UNAVAILABLE', `the broker did not take the event in ${sendTimeoutMs} ms`),
          ),
        sendTimeoutMs,
      );
    });
    return Promise.race([Promise.resolve().then(() => bus.publish(event)), timeout]).finally(() =>
      clearTimeout(timer),
    );
  };

  const backoff = (ms: number) =>
    new Promise<void>((resolve) => {
      wakeRetry = resolve;
      retryTimer = setTimeout(resolve, ms);
      retryTimer.unref();
    }).finally(() => {
      wakeRetry = undefined;
      retryTimer = undefined;
    });

  const pump = async (): Promise<void> => {
    if (pumping) return;
    pumping = true;
    try {
      while (waiting() > 0) {
        const batch = takeBatch();
        sending = batch.length;
        inFlight = batch;
        const results = await Promise.allSettled(batch.map(sendOne));
        sending = 0;
        inFlight = [];
        const retry: BusEvent[] = [];
        let firstError: unknown;
        results.forEach((result, i) => {
          if (result.status === 'fulfilled') return;
          const event = batch[i]!;
          const err = result.reason;
          if (err instanceof ClawmeshError && !err.retryable) {
            drop(event, 'error');
            logger.error({ err, ...eventLogFields(event) }, 'the bus refused an event: dropped');
          } else {
            retry.push(event);
            firstError ??= err;
          }
        });
        if (retry.length > 0) {
          // Back at the head, in their order, unless newer events filled the buffer meanwhile.
          queue = [...retry, ...queue.slice(head)];
          head = 0;
          while (waiting() > maxBuffered) dropOldest();
          if (spool && !spooling) {
            spill(queue);
            spooling = true;
          }
          failures += 1;
          const delay = Math.min(retryMs * 2 ** (failures - 1), maxRetryMs);
          if (failures === 1 || delay === maxRetryMs)
            logger.warn(
              {
                err: (firstError as Error)?.message ?? String(firstError),
                buffered: buffered(),
                retryInMs: delay,
              },
              'cannot publish events yet: keeping them and retrying',
            );
          if (closed) break;
          await backoff(delay);
          if (closed) break;
        } else if (failures > 0) {
          logger.info({ afterTries: failures, buffered: buffered() }, 'publishing events again');
          failures = 0;
        }
      }
    } finally {
      pumping = false;
      if (buffered() === 0 && spooling) {
        spool?.clear();
        spooled = 0;
        spooling = false;
      }
      if (buffered() === 0 || closed) {
        const woken = idleWaiters;
        idleWaiters = [];
        for (const wake of woken) wake();
      }
    }
  };

  let scheduled = false;
  const startPump = () => {
    scheduled = false;
    void pump();
  };

  const flushed = (): Promise<void> => {
    if (buffered() === 0 && !pumping && !scheduled) return Promise.resolve();
    wakeRetry?.(); // try now rather than after the backoff
    return new Promise<void>((resolve) => idleWaiters.push(resolve));
  };

  /**
   * The last drain, while no event has been published since it began: shutdown drains once to
   * let the audit log read the last events and again in `close()`, and with the broker down each
   * waited `drainTimeoutMs` for the same buffer.
   */
  let lastDrain: Promise<void> | undefined;
  const drain = (): Promise<void> => {
    lastDrain ??= drainOnce();
    return lastDrain;
  };
  const drainOnce = async (): Promise<void> => {
    if (!(await settlesWithin(flushed(), drainTimeoutMs))) {
      logger.warn(
        { buffered: buffered() },
        `events still buffered after ${drainTimeoutMs} ms: still retrying`,
      );
      return;
    }
    try {
      await bus.drain();
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'the bus did not drain');
    }
  };

  // What an earlier process kept in the spool goes first; the spool keeps it until it is sent.
  if (spool && spool.recovered.length > 0) {
    const kept = spool.recovered.slice(-maxBuffered);
    const over = spool.recovered.length - kept.length;
    if (over > 0) {
      dropped += over;
      logger.error(
        { dropped: over, maxBuffered },
        'the spool held more events than the buffer: dropped the oldest',
      );
    }
    queue = kept;
    spooling = true;
    logger.info(
      { events: kept.length, path: spool.path },
      'sending the events an earlier process kept in the spool',
    );
    scheduled = true;
    queueMicrotask(startPump);
  }

  return {
    kind: bus.kind,
    inner: bus,
    get buffered() {
      return buffered();
    },
    get dropped() {
      return dropped;
    },
    async ping() {
      const check = (bus as Partial<Pick<BufferedBus, 'ping'>>).ping;
      if (typeof check === 'function') await check.call(bus);
    },
    publish(event) {
      if (closed) {
        drop(event, 'dropped');
        logger.warn(eventLogFields(event), 'event published after the bus closed: dropped');
        return Promise.resolve();
      }
      if (buffered() >= maxBuffered) {
        if (waiting() > 0) dropOldest();
        else {
          drop(event, 'dropped'); // every buffered event is being sent: the new one waits nowhere
          return Promise.resolve();
        }
      }
      queue.push(event);
      if (spooling) spill([event]);
      lastDrain = undefined;
      // Sent after the caller's tick, together with whatever else it publishes in that tick.
      if (!pumping && !scheduled) {
        scheduled = true;
        queueMicrotask(startPump);
      }
      return Promise.resolve();
    },
    subscribe(topic, group, handler) {
      return bus.subscribe(topic, group, handler);
    },
    drain,
    async close() {
      if (closed) return;
      await drain();
      closed = true;
      wakeRetry?.();
      const left = buffered();
      if (left > 0 && spool && !spooling) spill([...inFlight, ...queue.slice(head)]);
      const kept = left > 0 && spool !== undefined;
      spool?.close(kept);
      if (kept) {
        logger.warn(
          { kept: left, path: spool?.path },
          'closing the bus with events the broker has not taken: kept in the spool, sent by the next process started with it',
        );
      } else if (left > 0) {
        logger.error(
          { lost: left },
          'closing the bus with events that could not be published: they are lost',
        );
        for (const event of queue.slice(head)) drop(event, 'dropped');
      }
      queue = [];
      head = 0;
      if (retryTimer) clearTimeout(retryTimer);
      await bus.close();
    },
  };
}
