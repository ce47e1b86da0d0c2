import { createHash } from 'node:crypto';
import {
  AckPolicy,
  type Consumer,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import {
  connect,
  type NatsConnection,
  type Subscription as NatsSubscription,
  nanos,
} from '@nats-io/transport-node';
import { ClawmeshError } from '../core/errors.ts';
import { createInFlight } from '../core/in-flight.ts';
import { settlesWithin } from '../core/wait.ts';
import type { Logger } from '../observability/logger.ts';
import { awaitHeldHandlers, closeAfterDrain } from './closing.ts';
import { eventLogFields } from './log-fields.ts';
import { DEAD_LETTER_SUFFIX } from './memory.ts';
import { createEventStream, type EventStream } from './nats-jetstream-stream.ts';
import type { Bus, BusEvent, EventHandler, Subscription } from './types.ts';

/** Options of {@link createJetStreamBus}. */
export interface JetStreamBusOptions {
  /** A NATS connection (shared, never closed by the bus). */
  connection?: NatsConnection;
  /** Servers to connect to when no `connection` is given (the bus then owns the connection). */
  servers?: string | string[];
  /** The stream holding every event (default `CLAWMESH_EVENTS`); created or updated on start. */
  streamName?: string;
  /** Subjects are `<subjectPrefix>.<topic>`; the stream covers `<subjectPrefix>.>` (default `clawmesh.events`). */
  subjectPrefix?: string;
  /** Tries before an event goes to `<topic>.dead-letter` (default 3). */
  maxAttempts?: number;
  /** Delay before a retry (a `nak` with delay), doubled each time (default 100). */
  retryDelayMs?: number;
  /** How long the server waits for an ack before redelivering, in milliseconds (default 30,000). */
  ackWaitMs?: number;
  /** Messages one subscription pulls at a time (default 16). */
  prefetch?: number;
  /** Unacknowledged messages a group may hold at once, across its members (default 1000). */
  maxAckPending?: number;
  /** How long the stream keeps events (default 7 days). */
  maxAgeMs?: number;
  /** The server's dedupe window for `Nats-Msg-Id` (default 120,000 ms). */
  duplicateWindowMs?: number;
  /** Stream storage (default `file`). */
  storage?: 'file' | 'memory';
  /** Stream replicas, for a cluster (default 1). */
  replicas?: number;
  /** How long a publish waits for the server's ack (default 5000). */
  publishTimeoutMs?: number;
  /** How long `Subscription.close` waits for running handlers before abandoning them (default 5000). */
  closeTimeoutMs?: number;
  /** The longest `drain()` waits before it rejects with `DEADLINE_EXCEEDED` (default 30,000). */
  drainTimeoutMs?: number;
  logger?: Logger;
}

/** A {@link Bus} over NATS JetStream, with a connection check for readiness probes. */
export interface JetStreamBus extends Bus {
  /** Resolves when the server answers. */
  ping(): Promise<void>;
}

const TOPIC = /^[\w-]+(\.[\w-]+)*$/;
/** How long NATS may take to answer a ping before a drain gives up on it. */
const REACHABLE_WITHIN_MS = 1000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const decoder = new TextDecoder();

/** Throws `INVALID_ARGUMENT` unless `topic` is dot-separated words (or `*` where allowed). */
function checkTopic(topic: string, allowAll: boolean): void {
  if ((allowAll && topic === '*') || TOPIC.test(topic)) return;
  throw new ClawmeshError('INVALID_ARGUMENT', `invalid topic "${topic}": use dot-separated words`);
}

/** A durable consumer name for a (topic, group): readable, and unique by a hash of both. */
function durableName(topic: string, group: string): string {
  const hash = createHash('sha256').update(`${topic}\u0000${group}`).digest('hex').slice(0, 16);
  return `${group.replace(/[^\w-]/g, '_').slice(0, 40)}_${hash}`;
}

/**
 * The NATS JetStream bus. One stream over `<subjectPrefix>.>`; a topic is the subject
 * `<subjectPrefix>.<topic>`. Publishing waits for the server's ack and sets `Nats-Msg-Id` to
 * `<topic>:<event id>`, so a repeat within the stream's dedupe window is dropped by the server.
 * A group is a durable pull consumer (explicit ack, `deliver_policy: new` when first created)
 * whose members pull from it and so share its messages. A failure is `nak`ed with a doubling
 * delay; the delivery count comes from the server, and after `maxAttempts` the event is
 * published to `<topic>.dead-letter` and the message acked. `max_deliver` is one more than
 * `maxAttempts`: the extra delivery only dead-letters an event whose consumers kept dying, and
 * the server's max-deliveries advisory catches one that was delivered even that often.
 * A `*` subscription filters `<subjectPrefix>.>` and skips dead letters.
 *
 * @example
 * const bus = await createJetStreamBus({ servers: 'nats://127.0.0.1:4222', logger });
 */
export async function createJetStreamBus(options: JetStreamBusOptions): Promise<JetStreamBus> {
  const streamName = options.streamName ?? 'CLAWMESH_EVENTS';
  const subjectPrefix = options.subjectPrefix ?? 'clawmesh.events';
  const maxAttempts = Math.max(1, options.maxAttempts ?? 3);
  const retryDelayMs = options.retryDelayMs ?? 100;
  const ackWaitMs = Math.max(50, options.ackWaitMs ?? 30_000);
  const prefetch = Math.max(1, options.prefetch ?? 16);
  const publishTimeoutMs = options.publishTimeoutMs ?? 5000;
  const closeTimeoutMs = options.closeTimeoutMs ?? 5000;
  const drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
  const logger = options.logger;

  let owned = false;
  let nc = options.connection;
  if (!nc) {
    if (!options.servers)
      throw new ClawmeshError('INVALID_ARGUMENT', 'the JetStream bus needs a connection or servers');
    try {
      nc = await connect({
        servers: options.servers,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        // Otherwise every publish (a request to JetStream) allocates an Error to keep the caller's stack.
        noAsyncTraces: true,
      });
    } catch (err) {
      throw new ClawmeshError('UNAVAILABLE', `cannot connect to NATS: ${(err as Error).message}`, {
        cause: err,
      });
    }
    owned = true;
  }
  const conn = nc;
  let jsm: JetStreamManager;
  let js: JetStreamClient;
  let stream: EventStream;
  try {
    jsm = await jetstreamManager(conn);
    js = jetstream(conn);
    stream = createEventStream(jsm, { ...options, streamName, subjectPrefix }, logger);
    await stream.ensure();
  } catch (err) {
    if (owned) await conn.close().catch(() => undefined);
    throw new ClawmeshError('UNAVAILABLE', `JetStream is not usable: ${(err as Error).message}`, {
      cause: err,
    });
  }

  const subjectOf = (topic: string) => (topic === '*' ? `${subjectPrefix}.>` : `${subjectPrefix}.${topic}`);
  const publishing = createInFlight();
  const handling = createInFlight();
  let deliveriesStarted = 0;
  const subscriptions = new Set<JetStreamSubscription>();
  let closed = false;

  const send = async (event: BusEvent): Promise<void> => {
    await js.publish(subjectOf(event.type), Buffer.from(JSON.stringify(event), 'utf8'), {
      msgID: `${event.type}:${event.id}`,
      expect: { streamName },
      timeout: publishTimeoutMs,
    });
  };

  /*
   * The stream can vanish under a running bus. A failed publish, a consumer told its consumer or
   * stream is gone, and the readiness probe make it again (EventStream.restore); each consumer
   * then makes its durable consumer again (JetStreamSubscription.recover).
   */
  const publish = async (event: BusEvent): Promise<void> => {
    checkTopic(event.type, false);
    publishing.enter();
    try {
      await send(event);
    } catch (err) {
      // Once more when the stream was missing and is back; else the caller keeps it for later.
      if (!(await stream.restore().catch(() => false))) throw ClawmeshError.from(err, 'UNAVAILABLE');
      await send(event).catch((again: unknown) => {
        throw ClawmeshError.from(again, 'UNAVAILABLE');
      });
    } finally {
      publishing.leave();
    }
  };

  /** Publishes the dead letter of `event` (once per event id, by its message id). */
  const deadLetter = async (event: BusEvent, group: string): Promise<void> => {
    if (event.type.endsWith(DEAD_LETTER_SUFFIX)) {
      logger?.error({ ...eventLogFields(event), group }, 'dropping a failed dead letter');
      return;
    }
    await send({ ...event, type: `${event.type}${DEAD_LETTER_SUFFIX}` });
    logger?.warn({ ...eventLogFields(event), group }, 'event dead-lettered');
  };

  /** One member of a group: a pull consumer's messages, handled as they come. */
  class JetStreamSubscription implements Subscription {
    readonly durable: string;
    readonly held = new Set<JsMsg>();
    open = true;
    private messages: ConsumerMessages | undefined;
    private advisories: NatsSubscription | undefined;
    private consumer: Consumer | undefined;
    private timer: NodeJS.Timeout | undefined;

    constructor(
      readonly topic: string,
      readonly group: string,
      private readonly handler: EventHandler,
    ) {
      this.durable = durableName(topic, group);
    }

    /** The stream time of the last message delivered here: where a consumer made again starts. */
    private lastSeen: Date | undefined;
    private recovering: Promise<void> | undefined;

    /** Creates the durable consumer (kept as it is when it exists), delivering from `from`. */
    private async addConsumer(from: { policy: DeliverPolicy; time?: Date }): Promise<void> {
      await jsm.consumers.add(streamName, {
        durable_name: this.durable,
        description: `clawmesh group ${this.group} on ${this.topic}`,
        filter_subject: subjectOf(this.topic),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: from.policy,
        ...(from.time ? { opt_start_time: from.time.toISOString() } : {}),
        ack_wait: nanos(ackWaitMs),
        max_deliver: maxAttempts + 1,
        max_ack_pending: options.maxAckPending ?? 1000,
      });
    }

    /**
     * The consumer (or its whole stream) is gone: creates the stream again if it is missing, then
     * the consumer, which the running pull picks up. A new stream is read from its start (all it
     * holds was published since); a consumer deleted alone resumes from the last message seen.
     */
    recover(): Promise<void> {
      this.recovering ??= (async () => {
        try {
          const newStream = await stream.restore();
          const from = newStream
            ? { policy: DeliverPolicy.All }
            : this.lastSeen
              ? { policy: DeliverPolicy.StartTime, time: this.lastSeen }
              : { policy: DeliverPolicy.New };
          await this.addConsumer(from);
          // A new pull: the old one stopped asking once its consumer was gone.
          const stale = this.messages;
          if (this.open) await this.pull();
          await stale?.close().catch(() => undefined);
          logger?.warn(
            { topic: this.topic, group: this.group },
            'the JetStream consumer was missing: created it again',
          );
        } catch (err) {
          logger?.warn(
            { err: (err as Error).message, topic: this.topic, group: this.group },
            'could not create the JetStream consumer again; will retry',
          );
        } finally {
          this.recovering = undefined;
        }
      })();
      return this.recovering;
    }

    /** Follows the pull's notifications: a missing consumer or stream is made again. */
    private async watch(messages: ConsumerMessages): Promise<void> {
      try {
        for await (const status of messages.status()) {
          if (!this.open || messages !== this.messages) return;
          if (
            status.type === 'consumer_deleted' ||
            status.type === 'consumer_not_found' ||
            status.type === 'stream_not_found'
          )
            await this.recover();
        }
      } catch {
        // the pull ended (closing)
      }
    }

    /** Starts pulling the consumer's messages (again, after it was made again), and watching the pull. */
    private async pull(): Promise<void> {
      this.consumer = await js.consumers.get(streamName, this.durable);
      const messages = await this.consumer.consume({
        max_messages: prefetch,
        callback: (msg) => this.deliver(msg),
      });
      this.messages = messages;
      void this.watch(messages);
    }

    async start(): Promise<void> {
      await this.addConsumer({ policy: DeliverPolicy.New });
      // One member of the group handles the advisory for a message delivered max_deliver times.
      this.advisories = conn.subscribe(
        `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${streamName}.${this.durable}`,
        {
          queue: this.durable,
          callback: (err, msg) => {
            if (!err) void this.onMaxDeliveries(msg.json());
          },
        },
      );
      await this.pull();
      // Tell the server the handlers still running are alive, so it does not redeliver them.
      this.timer = setInterval(
        () => {
          for (const msg of this.held) msg.working();
        },
        Math.max(20, Math.floor(ackWaitMs / 3)),
      );
    }

    private deliver(msg: JsMsg): void {
      if (!this.open) return; // not acked: redelivered to another member after ack_wait
      this.lastSeen = new Date(Math.floor(Number(msg.info.timestampNanos) / 1e6));
      this.held.add(msg);
      deliveriesStarted += 1;
      handling.enter();
      void this.attempt(msg);
    }

    release(msg: JsMsg): void {
      if (this.held.delete(msg)) handling.leave();
    }

    private async attempt(msg: JsMsg): Promise<void> {
      let event: BusEvent;
      try {
        event = JSON.parse(decoder.decode(msg.data)) as BusEvent;
      } catch {
        logger?.error({ topic: this.topic, seq: msg.seq }, 'dropping an unreadable bus message');
        msg.ack();
        this.release(msg);
        return;
      }
      const attempt = msg.info.deliveryCount;
      if (this.topic === '*' && event.type.endsWith(DEAD_LETTER_SUFFIX)) {
        msg.ack();
        this.release(msg);
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
      if (!this.held.has(msg)) return; // abandoned by close(): redelivered after ack_wait
      try {
        if (attempt <= maxAttempts && failure === undefined) msg.ack();
        else if (attempt < maxAttempts) msg.nak(retryDelayMs * 2 ** (attempt - 1));
        else {
          // Acked rather than term()ed: nats-server 2.9 counts a terminated message as pending
          // until its ack wait ends, which would hold up drain().
          await deadLetter(event, this.group);
          msg.ack();
        }
      } catch (err) {
        // The dead letter was not published: leave the message to be redelivered and tried again.
        logger?.warn({ err: (err as Error).message, topic: event.type }, 'jetstream bus dead-letter failed');
        msg.nak(retryDelayMs);
      } finally {
        this.release(msg);
      }
    }

    private async onMaxDeliveries(advisory: { stream_seq?: number }): Promise<void> {
      if (!advisory.stream_seq) return;
      try {
        const stored = await jsm.streams.getMessage(streamName, { seq: advisory.stream_seq });
        if (!stored) return;
        await deadLetter(JSON.parse(decoder.decode(stored.data)) as BusEvent, this.group);
      } catch (err) {
        logger?.error(
          { err: (err as Error).message, seq: advisory.stream_seq },
          'could not dead-letter a message',
        );
      }
    }

    /** Whether the group has nothing left to deliver and nothing unacknowledged. */
    async caughtUp(): Promise<boolean> {
      try {
        const info = await jsm.consumers.info(streamName, this.durable);
        return info.num_pending === 0 && info.num_ack_pending === 0;
      } catch (err) {
        return /not found/i.test(String((err as Error).message)); // the consumer is gone: nothing to wait for
      }
    }

    async close(): Promise<void> {
      if (!this.open) return;
      this.open = false;
      subscriptions.delete(this);
      this.advisories?.unsubscribe();
      await this.messages?.close().catch(() => undefined);
      await awaitHeldHandlers(this.held, closeTimeoutMs, (item) => this.release(item), logger, {
        topic: this.topic,
        group: this.group,
      });
      clearInterval(this.timer);
    }
  }

  /** Whether NATS answers a ping within a second: while it is unreachable nothing can drain. */
  const answering = async (): Promise<boolean> => {
    try {
      return await settlesWithin(conn.flush(), REACHABLE_WITHIN_MS);
    } catch {
      return false;
    }
  };

  const drain = async (): Promise<void> => {
    // Unreachable, each consumer lookup below would wait out its request timeout, round after
    // round until drainTimeoutMs: a shutdown with NATS down took 15 s.
    if (!(await answering()))
      throw new ClawmeshError('UNAVAILABLE', 'NATS is unreachable: the JetStream bus cannot drain');
    const until = Date.now() + drainTimeoutMs;
    for (;;) {
      await publishing.idle();
      if (handling.count === 0) {
        const started = deliveriesStarted;
        const groups = new Map<string, JetStreamSubscription>();
        for (const s of subscriptions) groups.set(s.durable, s);
        const states = await Promise.all([...groups.values()].map((s) => s.caughtUp()));
        if (states.every(Boolean) && handling.count === 0 && started === deliveriesStarted) return;
      }
      if (Date.now() > until)
        throw new ClawmeshError(
          'DEADLINE_EXCEEDED',
          `the JetStream bus did not drain in ${drainTimeoutMs} ms`,
        );
      await sleep(10);
    }
  };

  return {
    kind: 'nats',
    publish,
    async subscribe(topic, group, handler) {
      checkTopic(topic, true);
      if (closed) throw new ClawmeshError('UNAVAILABLE', 'the JetStream bus is closed');
      const subscription = new JetStreamSubscription(topic, group, handler);
      try {
        await subscription.start();
      } catch (err) {
        await subscription.close().catch(() => undefined);
        throw ClawmeshError.from(err, 'UNAVAILABLE');
      }
      subscriptions.add(subscription);
      return subscription;
    },
    drain,
    async close() {
      if (closed) return;
      await closeAfterDrain('JetStream', drain, logger, async () => {
        closed = true;
        await Promise.all([...subscriptions].map((s) => s.close()));
        if (owned) await conn.drain().catch(() => undefined);
      });
    },
    async ping() {
      await conn.flush();
      // The stream is there (or made again): a bus whose stream vanished is not ready.
      await stream.restore();
    },
  };
}
