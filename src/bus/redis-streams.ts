import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { createClient, type RedisClientType } from 'redis';
import { ClawmeshError } from '../core/errors.ts';
import { createInFlight } from '../core/in-flight.ts';
import { settlesWithin } from '../core/wait.ts';
import type { Logger } from '../observability/logger.ts';
import { awaitHeldHandlers, closeAfterDrain } from './closing.ts';
import { eventLogFields } from './log-fields.ts';
import { DEAD_LETTER_SUFFIX } from './memory.ts';
import type { Bus, BusEvent, EventHandler, Subscription } from './types.ts';

/** Options of {@link createRedisStreamsBus}. */
export interface RedisStreamsBusOptions {
  /** A connected node-redis v5 client (RESP2, the default); shared, never closed by the bus. */
  client?: RedisClientType;
  /** Where to connect when no `client` is given (the bus then owns and closes the client). */
  url?: string;
  /**
   * Prefix of every key: streams are `<prefix><topic>` (default `clawmesh:events:`). On Redis
   * Cluster give it a hash tag (`{clawmesh}:events:`): a publish touches several keys in one script.
   */
  prefix?: string;
  /** Tries before an event goes to `<topic>.dead-letter` (default 3). */
  maxAttempts?: number;
  /** Delay before a retry in the same consumer, doubled each time, below `claimIdleMs / 2` (default 100). */
  retryDelayMs?: number;
  /** An entry unacknowledged and untouched this long is taken over by another member (default 30,000). */
  claimIdleMs?: number;
  /** Handlers one subscription runs at once; also the `COUNT` of a read (default 16). */
  prefetch?: number;
  /** How long one blocking `XREADGROUP` waits, in milliseconds (default 5000). */
  blockMs?: number;
  /** Approximate length each stream is trimmed to (`MAXLEN ~`, default 100,000). */
  maxLen?: number;
  /** How long a published event id is remembered to drop a repeat (default 120,000 ms). */
  dedupeWindowMs?: number;
  /** How long `Subscription.close` waits for running handlers before abandoning them (default 5000). */
  closeTimeoutMs?: number;
  /** The longest `drain()` waits before it rejects with `DEADLINE_EXCEEDED` (default 30,000). */
  drainTimeoutMs?: number;
  logger?: Logger;
}

/** A {@link Bus} over Redis Streams, with a connection check for readiness probes. */
export interface RedisStreamsBus extends Bus {
  /** Resolves when Redis answers. */
  ping(): Promise<void>;
}

type Entry = { id: string; message: Record<string, string> | null };
type ReadReply = Array<{ name: string; messages: Entry[] }> | null;

/** The name of the stream every topic is copied to, read by `*` subscriptions. */
const ALL_TOPICS = '*';
const TOPIC = /^[\w-]+(\.[\w-]+)*$/;

// KEYS: dedupe key, stream, [all-topics stream]; ARGV: window ms, max length, event JSON.
// The dedupe key and the appends happen atomically, so a repeat never reaches a stream.
const PUBLISH = `if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
for i = 2, #KEYS do redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[3]) end
return 1`;

// KEYS: dedupe key, dead-letter stream, source stream; ARGV: window ms, max length, event JSON,
// group, entry id, error. Appends to the dead-letter stream (once per id) and acks the source.
const DEAD_LETTER = `if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[3], 'group', ARGV[4], 'error', ARGV[6])
end
return redis.call('XACK', KEYS[3], ARGV[4], ARGV[5])`;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Throws `INVALID_ARGUMENT` unless `topic` is dot-separated words (or `*` where allowed). */
function checkTopic(topic: string, allowAll: boolean): void {
  if ((allowAll && topic === ALL_TOPICS) || TOPIC.test(topic)) return;
  throw new ClawmeshError('INVALID_ARGUMENT', `invalid topic "${topic}": use dot-separated words`);
}

/**
 * The Redis Streams bus. One stream per topic (`<prefix><topic>`), and every event is also
 * appended to `<prefix>*`, the stream `*` subscriptions read (dead letters excepted). A group is
 * a consumer group created on subscribe (at the stream's end, `MKSTREAM`); each subscription is
 * one consumer reading with a blocking `XREADGROUP` on a connection of its own. Success acks
 * (`XACK`); a failure is retried by the same consumer (`XCLAIM` bumps the delivery counter);
 * an entry whose consumer died is taken over with `XAUTOCLAIM` once idle for `claimIdleMs`;
 * after `maxAttempts` deliveries it is appended to `<topic>.dead-letter` and acked in one script.
 * A repeated event id on a topic is dropped at publish within `dedupeWindowMs`.
 *
 * @example
 * const bus = await createRedisStreamsBus({ url: 'redis://127.0.0.1:6379', logger });
 */
export async function createRedisStreamsBus(options: RedisStreamsBusOptions): Promise<RedisStreamsBus> {
  const prefix = options.prefix ?? 'clawmesh:events:';
  const maxAttempts = Math.max(1, options.maxAttempts ?? 3);
  const claimIdleMs = Math.max(20, options.claimIdleMs ?? 30_000);
  const retryDelayMs = options.retryDelayMs ?? 100;
  const prefetch = Math.max(1, options.prefetch ?? 16);
  const blockMs = Math.max(1, options.blockMs ?? 5000);
  const maxLen = String(options.maxLen ?? 100_000);
  const dedupeWindowMs = String(options.dedupeWindowMs ?? 120_000);
  const closeTimeoutMs = options.closeTimeoutMs ?? 5000;
  const drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
  const logger = options.logger;

  let owned = false;
  let client = options.client;
  if (!client) {
    if (!options.url) throw new ClawmeshError('INVALID_ARGUMENT', 'the Redis bus needs a client or a url');
    let connected = false;
    client = createClient({
      url: options.url,
      // Give up on the first connection after a few tries; once connected, reconnect forever.
      socket: {
        connectTimeout: 5000,
        reconnectStrategy: (retries, cause) =>
          !connected && retries >= 2 ? cause : Math.min(50 * 2 ** retries, 2000),
      },
    }) as RedisClientType;
    client.on('error', (err: Error) => logger?.warn({ err: err.message }, 'redis bus connection error'));
    try {
      await client.connect();
      connected = true;
    } catch (err) {
      if (client.isOpen) client.destroy();
      throw new ClawmeshError('UNAVAILABLE', `cannot connect to Redis: ${(err as Error).message}`, {
        cause: err,
      });
    }
    owned = true;
  }
  const redis = client;

  const scripts = new Map<string, string>();
  const runScript = async (script: string, keys: string[], args: string[]): Promise<unknown> => {
    let sha = scripts.get(script);
    if (!sha) {
      sha = await redis.scriptLoad(script);
      scripts.set(script, sha);
    }
    try {
      return await redis.evalSha(sha, { keys, arguments: args });
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      return redis.eval(script, { keys, arguments: args });
    }
  };

  const streamOf = (topic: string) => `${prefix}${topic}`;
  const dedupeKey = (topic: string, id: string) => `${prefix}dedupe:${topic}:${id}`;

  const publishing = createInFlight();
  const handling = createInFlight();
  let deliveriesStarted = 0;
  const subscriptions = new Set<RedisSubscription>();
  let closed = false;

  const publish = async (event: BusEvent): Promise<void> => {
    checkTopic(event.type, false);
    if (!redis.isReady) throw new ClawmeshError('UNAVAILABLE', 'the Redis bus is not connected');
    const keys = [dedupeKey(event.type, event.id), streamOf(event.type)];
    if (!event.type.endsWith(DEAD_LETTER_SUFFIX)) keys.push(streamOf(ALL_TOPICS));
    publishing.enter();
    try {
      await runScript(PUBLISH, keys, [dedupeWindowMs, maxLen, JSON.stringify(event)]);
    } catch (err) {
      throw ClawmeshError.from(err, 'UNAVAILABLE');
    } finally {
      publishing.leave();
    }
  };

  /** One consumer of a group: a read loop on its own connection, plus a claim/heartbeat timer. */
  class RedisSubscription implements Subscription {
    readonly stream: string;
    readonly consumer = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    /** Entries this consumer holds: running, or waiting for a retry. */
    readonly held = new Set<string>();
    open = true;
    private reader: RedisClientType | undefined;
    private timer: NodeJS.Timeout | undefined;
    private claimCursor = '0-0';
    private maintaining = false;
    private wakeReader: (() => void) | undefined;
    private loop: Promise<void> = Promise.resolve();

    constructor(
      readonly topic: string,
      readonly group: string,
      private readonly handler: EventHandler,
    ) {
      this.stream = streamOf(topic);
    }

    async start(): Promise<void> {
      await this.ensureGroup();
      this.reader = redis.duplicate() as RedisClientType;
      this.reader.on('error', (err: Error) =>
        logger?.warn({ err: err.message, topic: this.topic }, 'redis bus reader error'),
      );
      await this.reader.connect();
      const every = Math.max(10, Math.floor(claimIdleMs / 3));
      this.timer = setInterval(() => void this.maintain(), every);
      this.loop = this.read();
    }

    /**
     * Creates the group: at the stream's end when subscribing (`$`), or from its first entry
     * (`0`) when the group vanished while reading — the stream was deleted or Redis restarted
     * without its data, and every entry in the new stream was published since, unread.
     */
    async ensureGroup(from: '$' | '0' = '$'): Promise<void> {
      try {
        await redis.xGroupCreate(this.stream, this.group, from, { MKSTREAM: true });
      } catch (err) {
        if (!String((err as Error).message).startsWith('BUSYGROUP')) throw err;
      }
    }

    private async read(): Promise<void> {
      let failures = 0;
      while (this.open) {
        if (this.held.size >= prefetch) {
          await new Promise<void>((resolve) => {
            this.wakeReader = resolve;
          });
          continue;
        }
        try {
          const reply = (await this.reader!.xReadGroup(
            this.group,
            this.consumer,
            { key: this.stream, id: '>' },
            { COUNT: prefetch - this.held.size, BLOCK: blockMs },
          )) as unknown as ReadReply;
          failures = 0;
          if (!this.open) return; // abandoned: the entries stay pending and are claimed by another member
          for (const stream of reply ?? []) for (const entry of stream.messages) this.deliver(entry, 1);
        } catch (err) {
          if (!this.open) return;
          failures += 1;
          const message = String((err as Error).message);
          if (message.startsWith('NOGROUP')) await this.ensureGroup('0').catch(() => undefined);
          else if (failures === 1) logger?.warn({ err: message, topic: this.topic }, 'redis bus read failed');
          await sleep(Math.min(50 * 2 ** failures, 2000));
        }
      }
    }

    /** Keeps the held entries fresh, then takes over entries idle past `claimIdleMs`. */
    private async maintain(): Promise<void> {
      if (!this.open || this.maintaining) return;
      this.maintaining = true;
      try {
        if (this.held.size > 0)
          await redis.xClaimJustId(this.stream, this.group, this.consumer, 0, [...this.held]);
        const room = prefetch - this.held.size;
        if (room <= 0 || !this.open) return;
        const claimed = await redis.xAutoClaim(
          this.stream,
          this.group,
          this.consumer,
          claimIdleMs,
          this.claimCursor,
          { COUNT: room },
        );
        this.claimCursor = claimed.nextId;
        const entries = (claimed.messages as Array<Entry | null>).filter((m): m is Entry => m !== null);
        if (entries.length === 0) return;
        if (!this.open) return;
        // XAUTOCLAIM counted this delivery; read the counters to know the attempt number.
        const pending = await redis.xPendingRange(
          this.stream,
          this.group,
          entries[0]!.id,
          entries[entries.length - 1]!.id,
          entries.length + this.held.size + 10,
          { consumer: this.consumer },
        );
        const deliveries = new Map(pending.map((p) => [p.id, p.deliveriesCounter]));
        for (const entry of entries) {
          const attempt = deliveries.get(entry.id);
          if (attempt === undefined || this.held.has(entry.id)) continue;
          logger?.info({ topic: this.topic, group: this.group, entry: entry.id }, 'took over an idle event');
          this.deliver(entry, attempt);
        }
      } catch (err) {
        if (this.open)
          logger?.warn({ err: (err as Error).message, topic: this.topic }, 'redis bus claim failed');
      } finally {
        this.maintaining = false;
      }
    }

    /** Runs the handler on one entry; `attempt` is its delivery count. */
    private deliver(entry: Entry, attempt: number): void {
      this.held.add(entry.id);
      deliveriesStarted += 1;
      handling.enter();
      void this.attempt(entry, attempt);
    }

    /** Lets go of an entry: acked, dead-lettered, retried or abandoned. */
    release(id: string): void {
      if (!this.held.delete(id)) return;
      handling.leave();
      const wake = this.wakeReader;
      this.wakeReader = undefined;
      wake?.();
    }

    private async attempt(entry: Entry, attempt: number): Promise<void> {
      const raw = entry.message?.e;
      let event: BusEvent;
      try {
        event = JSON.parse(raw ?? '') as BusEvent;
      } catch {
        logger?.error({ topic: this.topic, entry: entry.id }, 'dropping an unreadable bus entry');
        await this.ack(entry.id);
        return;
      }
      if (attempt > maxAttempts) {
        await this.deadLetter(entry.id, event, 'delivered too many times without an ack');
        return;
      }
      let failure: unknown;
      try {
        await this.handler(event);
      } catch (err) {
        failure = err;
      }
      if (!this.held.has(entry.id)) return; // abandoned by close(): another member takes over
      if (failure === undefined) {
        await this.ack(entry.id);
        return;
      }
      logger?.warn(
        { ...eventLogFields(event), err: failure, group: this.group, attempt },
        'event handler failed',
      );
      if (attempt >= maxAttempts) {
        await this.deadLetter(entry.id, event, String((failure as Error)?.message ?? failure));
        return;
      }
      await sleep(Math.min(retryDelayMs * 2 ** (attempt - 1), claimIdleMs / 2));
      if (!this.open) this.release(entry.id); // left pending: another member takes it over
      if (!this.held.has(entry.id)) return;
      try {
        // XCLAIM counts the new delivery; an empty reply means the entry is gone or taken.
        const again = (await redis.xClaim(
          this.stream,
          this.group,
          this.consumer,
          0,
          entry.id,
        )) as Array<Entry | null>;
        this.release(entry.id);
        if (again[0]) this.deliver(again[0], attempt + 1);
      } catch (err) {
        this.release(entry.id); // left pending: XAUTOCLAIM retries it once idle
        logger?.warn({ err: (err as Error).message, topic: this.topic }, 'redis bus retry failed');
      }
    }

    private async ack(id: string): Promise<void> {
      try {
        await redis.xAck(this.stream, this.group, id);
      } catch (err) {
        logger?.warn({ err: (err as Error).message, topic: this.topic }, 'redis bus ack failed');
      } finally {
        this.release(id);
      }
    }

    private async deadLetter(id: string, event: BusEvent, error: string): Promise<void> {
      if (event.type.endsWith(DEAD_LETTER_SUFFIX)) {
        logger?.error({ ...eventLogFields(event), group: this.group }, 'dropping a failed dead letter');
        await this.ack(id);
        return;
      }
      const type = `${event.type}${DEAD_LETTER_SUFFIX}`;
      try {
        await runScript(
          DEAD_LETTER,
          [dedupeKey(type, event.id), streamOf(type), this.stream],
          [dedupeWindowMs, maxLen, JSON.stringify({ ...event, type }), this.group, id, error],
        );
        logger?.warn({ ...eventLogFields(event), group: this.group }, 'event dead-lettered');
      } catch (err) {
        logger?.warn({ err: (err as Error).message, topic: this.topic }, 'redis bus dead-letter failed');
      } finally {
        this.release(id);
      }
    }

    /** Whether this group has read every entry of its stream and holds none unacked. */
    async caughtUp(): Promise<boolean> {
      let groups: unknown;
      let info: unknown;
      try {
        [groups, info] = await Promise.all([redis.xInfoGroups(this.stream), redis.xInfoStream(this.stream)]);
      } catch (err) {
        return /no such key/i.test(String((err as Error).message)); // the stream is gone: nothing to wait for
      }
      const mine = (groups as Array<Record<string, unknown>>).find((g) => g.name === this.group);
      if (!mine) return true;
      const lastId = (info as Record<string, unknown>)['last-generated-id'];
      return Number(mine.pending) === 0 && String(mine['last-delivered-id']) === String(lastId);
    }

    async close(): Promise<void> {
      if (!this.open) return;
      this.open = false;
      subscriptions.delete(this);
      clearInterval(this.timer);
      this.wakeReader?.();
      this.reader?.destroy();
      await this.loop;
      await awaitHeldHandlers(this.held, closeTimeoutMs, (item) => this.release(item), logger, {
        topic: this.topic,
        group: this.group,
      });
      // A consumer with nothing pending can go; one with pending entries stays for XAUTOCLAIM.
      // Best effort: an idle consumer left behind holds nothing. While Redis is away a command
      // would wait for it in the client's queue, and closing (a shutdown) with it.
      if (!redis.isReady) return;
      const forget = async () => {
        const pending = await redis.xPendingRange(this.stream, this.group, '-', '+', 1, {
          consumer: this.consumer,
        });
        if (pending.length === 0) await redis.xGroupDelConsumer(this.stream, this.group, this.consumer);
      };
      await settlesWithin(
        forget().catch(() => undefined),
        1000,
      );
    }
  }

  const drain = async (): Promise<void> => {
    const until = Date.now() + drainTimeoutMs;
    for (;;) {
      await publishing.idle();
      // Asking a Redis that is away would wait for its return, past any deadline.
      if (!redis.isReady)
        throw new ClawmeshError('UNAVAILABLE', 'the Redis bus is not connected: cannot drain');
      if (handling.count === 0) {
        const started = deliveriesStarted;
        const groups = new Map<string, RedisSubscription>();
        for (const s of subscriptions) groups.set(`${s.stream}\u0000${s.group}`, s);
        const asked = Promise.all([...groups.values()].map((s) => s.caughtUp()));
        const answered = await settlesWithin(asked, Math.max(0, until - Date.now()));
        if (answered && (await asked).every(Boolean) && handling.count === 0 && started === deliveriesStarted)
          return;
      }
      if (Date.now() > until)
        throw new ClawmeshError('DEADLINE_EXCEEDED', `the Redis bus did not drain in ${drainTimeoutMs} ms`);
      await sleep(10);
    }
  };

  return {
    kind: 'redis',
    publish,
    async subscribe(topic, group, handler) {
      checkTopic(topic, true);
      if (closed) throw new ClawmeshError('UNAVAILABLE', 'the Redis bus is closed');
      if (!redis.isReady) throw new ClawmeshError('UNAVAILABLE', 'the Redis bus is not connected');
      const subscription = new RedisSubscription(topic, group, handler);
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
      await closeAfterDrain('Redis', drain, logger, async () => {
        closed = true;
        await Promise.all([...subscriptions].map((s) => s.close()));
        if (owned) await redis.close().catch(() => undefined);
      });
    },
    async ping() {
      await redis.ping();
    },
  };
}
