import {
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  connect,
  type Options,
  type RecoveringChannelModel,
} from 'amqplib';
import { createRecentKeys, type RecentKeys } from '../core/bounded.ts';
import { ClawmeshError } from '../core/errors.ts';
import { createInFlight } from '../core/in-flight.ts';
import { redactUrl } from '../core/redact-url.ts';
import { settlesWithin } from '../core/wait.ts';
import type { Logger } from '../observability/logger.ts';
import { awaitHeldHandlers, closeAfterDrain } from './closing.ts';
import { eventLogFields } from './log-fields.ts';
import { DEAD_LETTER_SUFFIX } from './memory.ts';
import type { Bus, BusEvent, EventHandler, Subscription } from './types.ts';

/** Options of {@link createRabbitMqBus}. */
export interface RabbitMqBusOptions {
  /** The broker, such as `amqp://guest:guest@127.0.0.1:5672`. */
  url: string;
  /** The topic exchange events are published to; queues are named after it (default `clawmesh.events`). */
  exchange?: string;
  /** Tries before an event goes to `<topic>.dead-letter` (default 3). */
  maxAttempts?: number;
  /** Delay before a retry, doubled each time (default 100). */
  retryDelayMs?: number;
  /** Unacknowledged messages one subscription holds at once (channel prefetch, default 16). */
  prefetch?: number;
  /** Extra `x-` arguments of every queue, such as `{ 'x-queue-type': 'quorum' }` or `x-expires`. */
  queueArguments?: Record<string, unknown>;
  /** Event ids each group remembers in this process to drop a repeat (default 10,000). */
  dedupeWindow?: number;
  /** How long a publish waits for the broker's confirm (default 5000). */
  publishTimeoutMs?: number;
  /** How long `Subscription.close` waits for running handlers before abandoning them (default 5000). */
  closeTimeoutMs?: number;
  /** The longest `drain()` waits before it rejects with `DEADLINE_EXCEEDED` (default 30,000). */
  drainTimeoutMs?: number;
  /** Reconnect delays after a lost connection: first and longest, in milliseconds (default 100 and 5000). */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  logger?: Logger;
}

/** A {@link Bus} over RabbitMQ, with a connection check for readiness probes. */
export interface RabbitMqBus extends Bus {
  /** Resolves when the broker answers on the connection. */
  ping(): Promise<void>;
}

const TOPIC = /^[\w-]+(\.[\w-]+)*$/;
const ATTEMPT = 'x-attempt';
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Throws `INVALID_ARGUMENT` unless `topic` is dot-separated words (or `*` where allowed). */
function checkTopic(topic: string, allowAll: boolean): void {
  if ((allowAll && topic === '*') || TOPIC.test(topic)) return;
  throw new ClawmeshError('INVALID_ARGUMENT', `invalid topic "${topic}": use dot-separated words`);
}

const unavailable = (message: string, cause?: unknown) =>
  new ClawmeshError('UNAVAILABLE', message, cause === undefined ? {} : { cause });

/**
 * The RabbitMQ bus. Events go to a durable topic exchange with the topic as routing key, as
 * persistent messages, and `publish` resolves on the broker's confirm. A group is a durable
 * queue `<exchange>.<group>.<topic>` bound to its topic (`#` for `*`, which skips dead letters);
 * members consume it with manual acks and a prefetch, so they share its messages. A failed
 * message is republished to its own queue with an incremented `x-attempt` header (after a
 * doubling delay) and the original acked; after `maxAttempts` it is published to
 * `<topic>.dead-letter`. A consumer that dies before acking gets its messages requeued by the
 * broker for another member. RabbitMQ keeps no event ids: a repeated id, or a redelivery of an
 * event already handled here (an ack lost with a connection), is dropped by each group within this
 * process (`dedupeWindow`); members in other processes do not see those ids. A lost connection is re-established with backoff and
 * every subscription resumed; meanwhile `publish` fails at once with `UNAVAILABLE`.
 *
 * @example
 * const bus = await createRabbitMqBus({ url: 'amqp://guest:guest@127.0.0.1:5672', logger });
 */
export async function createRabbitMqBus(options: RabbitMqBusOptions): Promise<RabbitMqBus> {
  const exchange = options.exchange ?? 'clawmesh.events';
  const maxAttempts = Math.max(1, options.maxAttempts ?? 3);
  const retryDelayMs = options.retryDelayMs ?? 100;
  const prefetch = Math.max(1, options.prefetch ?? 16);
  const dedupeWindow = options.dedupeWindow ?? 10_000;
  const publishTimeoutMs = options.publishTimeoutMs ?? 5000;
  const closeTimeoutMs = options.closeTimeoutMs ?? 5000;
  const drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
  const logger = options.logger;

  const publishing = createInFlight();
  const handling = createInFlight();
  let deliveriesStarted = 0;
  const subscriptions = new Set<RabbitSubscription>();
  const idsByQueue = new Map<string, { seen: RecentKeys; done: RecentKeys }>();
  let current: ChannelModel | undefined;
  let publisher: ConfirmChannel | undefined;
  let admin: Channel | undefined;
  let closed = false;

  /** Publishes and waits for the broker's confirm; fails at once while disconnected. */
  const send = (
    target: string,
    routingKey: string,
    content: Buffer,
    props: Options.Publish,
  ): Promise<void> => {
    const channel = publisher;
    if (!channel) return Promise.reject(unavailable('the RabbitMQ bus is not connected'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(unavailable(`RabbitMQ did not confirm within ${publishTimeoutMs} ms`)),
        publishTimeoutMs,
      );
      try {
        channel.publish(target, routingKey, content, props, (err: unknown) => {
          clearTimeout(timer);
          if (err) reject(unavailable('RabbitMQ did not confirm the event', err));
          else resolve();
        });
      } catch (err) {
        clearTimeout(timer);
        reject(unavailable('the RabbitMQ channel is closed', err));
      }
    });
  };

  const propsOf = (event: BusEvent, attempt: number): Options.Publish => ({
    persistent: true,
    contentType: 'application/json',
    messageId: event.id,
    type: event.type,
    headers: { [ATTEMPT]: attempt },
  });

  const publish = async (event: BusEvent): Promise<void> => {
    checkTopic(event.type, false);
    publishing.enter();
    try {
      await send(exchange, event.type, Buffer.from(JSON.stringify(event)), propsOf(event, 1));
    } finally {
      publishing.leave();
    }
  };

  /** One member of a group: a channel consuming the group's queue. */
  class RabbitSubscription implements Subscription {
    readonly queue: string;
    readonly held = new Set<ConsumeMessage>();
    open = true;
    private channel: Channel | undefined;
    private consumerTag: string | undefined;
    /** Ids this process took (`seen`) and handled (`done`) for the group, to drop repeats. */
    private readonly ids: { seen: RecentKeys; done: RecentKeys };

    constructor(
      readonly topic: string,
      readonly group: string,
      private readonly handler: EventHandler,
    ) {
      this.queue = `${exchange}.${group}.${topic}`;
      let ids = idsByQueue.get(this.queue);
      if (!ids) {
        ids = { seen: createRecentKeys(dedupeWindow), done: createRecentKeys(dedupeWindow) };
        idsByQueue.set(this.queue, ids);
      }
      this.ids = ids;
    }

    /** Declares the queue and its binding and starts consuming on a channel of `model`. */
    async attach(model: ChannelModel): Promise<void> {
      if (this.channel || !this.open) return;
      const channel = await model.createChannel();
      channel.on('error', (err: Error) =>
        logger?.warn({ err: err.message, queue: this.queue }, 'rabbitmq channel error'),
      );
      channel.on('close', () => {
        if (this.channel !== channel) return;
        this.channel = undefined;
        // A channel closed on a live connection (a channel error) is reopened; after a lost
        // connection the reconnection reattaches every subscription.
        setTimeout(() => {
          if (this.open && current === model)
            this.attach(model).catch((err: Error) =>
              logger?.warn({ err: err.message, queue: this.queue }, 'rabbitmq could not resume a consumer'),
            );
        }, 200).unref();
      });
      // Set before consuming: a queue with messages waiting delivers them before consume() resolves.
      this.channel = channel;
      try {
        await channel.prefetch(prefetch);
        await channel.assertQueue(this.queue, { durable: true, arguments: options.queueArguments });
        await channel.bindQueue(this.queue, exchange, this.topic === '*' ? '#' : this.topic);
        const reply = await channel.consume(this.queue, (msg) => this.onMessage(channel, msg), {
          noAck: false,
        });
        this.consumerTag = reply.consumerTag;
      } catch (err) {
        if (this.channel === channel) this.channel = undefined;
        await channel.close().catch(() => undefined);
        throw err;
      }
      if (!this.open) await channel.close().catch(() => undefined);
    }

    private onMessage(channel: Channel, msg: ConsumeMessage | null): void {
      if (!msg) {
        logger?.warn({ queue: this.queue }, 'rabbitmq cancelled the consumer (queue deleted?)');
        return;
      }
      if (!this.open || this.channel !== channel) return; // requeued when the channel closes
      this.held.add(msg);
      deliveriesStarted += 1;
      handling.enter();
      void this.attempt(channel, msg);
    }

    private release(msg: ConsumeMessage): void {
      if (this.held.delete(msg)) handling.leave();
    }

    private settle(channel: Channel, msg: ConsumeMessage, ack: boolean): void {
      try {
        if (ack) channel.ack(msg);
        else channel.nack(msg, false, true);
      } catch {
        // the channel is gone: the broker requeues the message
      }
      this.release(msg);
    }

    private async attempt(channel: Channel, msg: ConsumeMessage): Promise<void> {
      let event: BusEvent;
      try {
        event = JSON.parse(msg.content.toString('utf8')) as BusEvent;
      } catch {
        logger?.error({ queue: this.queue }, 'dropping an unreadable bus message');
        this.settle(channel, msg, true);
        return;
      }
      const headers = msg.properties.headers ?? {};
      let attempt = Number(headers[ATTEMPT] ?? 1) || 1;
      // Quorum queues count deliveries themselves, including those of consumers that died.
      const deliveries = Number(headers['x-delivery-count']);
      if (deliveries > 0) attempt = Math.max(attempt, deliveries + 1);
      // A repeat published again, or a message handled here whose ack a lost connection dropped.
      const first = attempt === 1 && !msg.fields.redelivered;
      const duplicate = first ? !this.ids.seen.add(event.id) : this.ids.done.has(event.id);
      if (duplicate || (this.topic === '*' && event.type.endsWith(DEAD_LETTER_SUFFIX))) {
        this.settle(channel, msg, true);
        return;
      }
      let failure: unknown;
      if (attempt <= maxAttempts) {
        try {
          await this.handler(event);
        } catch (err) {
          failure = err;
          logger?.warn({ ...eventLogFields(event), err, group: this.group, attempt }, 'event handler failed');
        }
      }
      if (!this.held.has(msg)) return; // abandoned by close(): requeued for another member
      if (attempt <= maxAttempts && failure === undefined) {
        this.ids.done.add(event.id);
        this.settle(channel, msg, true);
        return;
      }
      try {
        if (attempt < maxAttempts) {
          await sleep(retryDelayMs * 2 ** (attempt - 1));
          if (!this.held.has(msg)) return;
          // To this queue only (the default exchange), so other groups do not see it again.
          await send('', this.queue, msg.content, propsOf(event, attempt + 1));
        } else if (event.type.endsWith(DEAD_LETTER_SUFFIX)) {
          logger?.error({ ...eventLogFields(event), group: this.group }, 'dropping a failed dead letter');
        } else {
          const type = `${event.type}${DEAD_LETTER_SUFFIX}`;
          await send(exchange, type, Buffer.from(JSON.stringify({ ...event, type })), {
            ...propsOf({ ...event, type }, 1),
            headers: {
              'x-group': this.group,
              'x-error': String((failure as Error)?.message ?? failure ?? 'too many deliveries'),
            },
          });
          logger?.warn({ ...eventLogFields(event), group: this.group }, 'event dead-lettered');
        }
        this.settle(channel, msg, true);
      } catch (err) {
        logger?.warn(
          { err: (err as Error).message, queue: this.queue },
          'rabbitmq bus could not retry an event',
        );
        this.settle(channel, msg, false);
      }
    }

    async close(): Promise<void> {
      if (!this.open) return;
      this.open = false;
      subscriptions.delete(this);
      const channel = this.channel;
      // A broker that hangs without closing the connection never answers: wait for it no longer
      // than for the handlers (an unacknowledged message goes back to the queue anyway).
      if (channel && this.consumerTag)
        await settlesWithin(
          channel.cancel(this.consumerTag).catch(() => undefined),
          closeTimeoutMs,
        );
      await awaitHeldHandlers(this.held, closeTimeoutMs, (item) => this.release(item), logger, {
        queue: this.queue,
      });
      this.channel = undefined;
      if (channel)
        await settlesWithin(
          channel.close().catch(() => undefined),
          closeTimeoutMs,
        );
    }
  }

  // Runs after every (re)connection: the publishing channel, the exchange, every subscription.
  const setup = async (model: ChannelModel): Promise<void> => {
    const channel = await model.createConfirmChannel();
    channel.on('error', (err: Error) =>
      logger?.warn({ err: err.message }, 'rabbitmq publishing channel error'),
    );
    channel.on('close', () => {
      if (publisher === channel) publisher = undefined;
    });
    await channel.assertExchange(exchange, 'topic', { durable: true });
    for (const subscription of subscriptions) await subscription.attach(model);
    current = model;
    admin = undefined;
    publisher = channel;
  };

  let model: RecoveringChannelModel;
  try {
    model = await connect(options.url, {
      noDelay: true,
      recovery: {
        initialDelay: options.reconnect?.initialDelayMs ?? 100,
        maxDelay: options.reconnect?.maxDelayMs ?? 5000,
        initialMaxRetries: 1,
        maxRetries: Number.POSITIVE_INFINITY,
        setup,
      },
    });
  } catch (err) {
    throw unavailable(
      `cannot connect to RabbitMQ (RABBITMQ_URL) at ${redactUrl(options.url)}: ${(err as Error).message}`,
      err,
    );
  }
  model.on('error', (err: Error) => logger?.warn({ err: err.message }, 'rabbitmq connection error'));
  model.on('disconnect', (err: Error) => {
    current = undefined;
    publisher = undefined;
    admin = undefined;
    logger?.warn({ err: err.message }, 'rabbitmq connection lost: reconnecting');
  });
  model.on('connect', () => logger?.info('rabbitmq connected'));

  /** A channel of its own for checks (a failed check closes a channel). */
  const adminChannel = async (): Promise<Channel> => {
    if (!current) throw unavailable('the RabbitMQ bus is not connected');
    if (!admin) {
      const channel = await current.createChannel();
      channel.on('error', () => undefined);
      channel.on('close', () => {
        if (admin === channel) admin = undefined;
      });
      admin = channel;
    }
    return admin;
  };

  /** Ready messages in `queue`. */
  const readyCount = async (queue: string): Promise<number> =>
    (await (await adminChannel()).checkQueue(queue)).messageCount;

  const drain = async (): Promise<void> => {
    const until = Date.now() + drainTimeoutMs;
    // The broker reports ready messages, not those already sent to a consumer: a message on its
    // way to a local handler is caught by asking twice, a few milliseconds apart.
    let quietPasses = 0;
    for (;;) {
      await publishing.idle();
      const started = deliveriesStarted;
      let quiet = handling.count === 0;
      if (quiet) {
        const queues = new Set([...subscriptions].map((s) => s.queue));
        try {
          const counts = await Promise.all([...queues].map(readyCount));
          quiet = counts.every((n) => n === 0) && handling.count === 0 && started === deliveriesStarted;
        } catch {
          quiet = false;
        }
      }
      quietPasses = quiet ? quietPasses + 1 : 0;
      if (quietPasses >= 2) return;
      if (Date.now() > until)
        throw new ClawmeshError(
          'DEADLINE_EXCEEDED',
          `the RabbitMQ bus did not drain in ${drainTimeoutMs} ms`,
        );
      await sleep(quiet ? 20 : 10);
    }
  };

  return {
    kind: 'rabbitmq',
    publish,
    async subscribe(topic, group, handler) {
      checkTopic(topic, true);
      if (closed) throw unavailable('the RabbitMQ bus is closed');
      if (!current) throw unavailable('the RabbitMQ bus is not connected');
      const subscription = new RabbitSubscription(topic, group, handler);
      subscriptions.add(subscription);
      try {
        await subscription.attach(current);
      } catch (err) {
        await subscription.close(); // no reattaching of a consumer that could not start
        throw ClawmeshError.from(err, 'UNAVAILABLE');
      }
      return subscription;
    },
    drain,
    async close() {
      if (closed) return;
      // Disconnected, nothing can drain: unacked messages go back to their queues anyway.
      const drainIfConnected = async () => (current ? drain() : undefined);
      await closeAfterDrain('RabbitMQ', drainIfConnected, logger, async () => {
        closed = true;
        await Promise.all([...subscriptions].map((s) => s.close()));
        await model.close().catch(() => undefined);
        current = publisher = admin = undefined;
      });
    },
    async ping() {
      if (!current || !publisher) throw unavailable('the RabbitMQ bus is not connected');
      // A round trip: a broker that hangs keeps the connection open, and would look connected
      // until heartbeats time out (minutes).
      await (await adminChannel()).checkExchange(exchange);
    },
  };
}
