import type { RedisClientType } from 'redis';
import { abortError } from './lease-handle.ts';

/** A waiter's side of a release channel. */
export interface ReleaseWait {
  /** Resolves after `ms`, or sooner when a release message arrives (at once if one came since the last sleep). */
  sleep(ms: number): Promise<void>;
  /** Stops listening. */
  unlisten(): void;
}

/** Wakes lease waiters when a release is published on their conversation's channel. */
export interface ReleaseListener {
  /**
   * Listens on `channel`. Resolves once the subscription is confirmed, or after `maxWaitMs` if
   * it is slow (the caller polls meanwhile). `signal` makes `sleep` reject with its reason.
   */
  listen(channel: string, signal?: AbortSignal, maxWaitMs?: number): Promise<ReleaseWait>;
  /** Drops the subscriber connection. */
  close(): Promise<void>;
}

/**
 * Creates the listener of one lease: a subscriber connection, duplicated from the client on
 * first use, subscribed to a conversation's channel only while someone in this process waits
 * for it. Subscribe and unsubscribe calls go out in order, so a channel left and listened to
 * again is never unsubscribed by the earlier leave. Without a subscriber (Redis unreachable)
 * waiters still poll.
 */
export function createReleaseListener(client: Pick<RedisClientType, 'duplicate'>): ReleaseListener {
  let subscriber: RedisClientType | undefined;
  let connected: Promise<RedisClientType | undefined> | undefined;
  let ops: Promise<unknown> = Promise.resolve();
  let closed = false;
  const channels = new Map<string, { wakers: Set<() => void>; ready: Promise<unknown> }>();

  const onMessage = (_message: string, channel: string) => {
    for (const wake of channels.get(channel)?.wakers ?? []) wake();
  };
  const connect = () => {
    connected ??= (async () => {
      const sub = client.duplicate() as RedisClientType;
      subscriber = sub;
      sub.on('error', () => undefined);
      await sub.connect();
      return sub;
    })().catch(() => {
      connected = undefined;
      return undefined;
    });
    return connected;
  };
  /** Queues a subscription change after every earlier one. */
  const enqueue = (op: (sub: RedisClientType) => Promise<unknown>) => {
    ops = ops.then(async () => {
      const sub = closed ? undefined : await connect();
      if (sub) await op(sub).catch(() => undefined);
    });
    return ops;
  };

  return {
    async listen(channel, signal, maxWaitMs = 100) {
      let entry = channels.get(channel);
      if (!entry) {
        entry = { wakers: new Set(), ready: enqueue((sub) => sub.subscribe(channel, onMessage)) };
        channels.set(channel, entry);
      }
      const listening = entry;
      let woken = false;
      let wakeSleeper: (() => void) | undefined;
      const wake = () => {
        woken = true;
        wakeSleeper?.();
      };
      listening.wakers.add(wake);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        listening.ready,
        new Promise((resolve) => (timer = setTimeout(resolve, maxWaitMs))),
      ]);
      clearTimeout(timer);
      return {
        sleep(ms) {
          if (woken) {
            woken = false;
            return Promise.resolve();
          }
          return new Promise<void>((resolve, reject) => {
            const done = (err?: unknown) => {
              clearTimeout(sleepTimer);
              signal?.removeEventListener('abort', onAbort);
              wakeSleeper = undefined;
              woken = false;
              if (err) reject(err);
              else resolve();
            };
            const onAbort = () => done(abortError(signal!));
            const sleepTimer = setTimeout(done, ms);
            if (signal?.aborted) return onAbort();
            signal?.addEventListener('abort', onAbort, { once: true });
            wakeSleeper = () => done();
          });
        },
        unlisten() {
          listening.wakers.delete(wake);
          if (listening.wakers.size > 0 || channels.get(channel) !== listening) return;
          channels.delete(channel);
          enqueue((sub) => sub.unsubscribe(channel, onMessage));
        },
      };
    },
    async close() {
      closed = true;
      channels.clear();
      try {
        subscriber?.destroy();
      } catch {
        // not connected: nothing to drop
      }
    },
  };
}
