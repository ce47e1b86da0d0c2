import { ClawmeshError } from '../core/errors.ts';

/**
 * Runs work one at a time per key, in arrival order; different keys run concurrently.
 * The monolith's turn lease: a second message of a conversation waits for the first.
 */
export interface KeyedQueue {
  /**
   * Runs `work` after every earlier work of the same key has settled. With a `deadline` (epoch
   * ms), work still waiting at the deadline fails `DEADLINE_EXCEEDED` then and is never run.
   */
  run<T>(key: string, work: () => Promise<T>, deadline?: number): Promise<T>;
  /** Keys with work running or waiting. */
  readonly activeKeys: number;
}

const waitedPastDeadline = (key: string) =>
  new ClawmeshError(
    'DEADLINE_EXCEEDED',
    `the turn waited for the earlier turns of conversation ${key} past its deadline`,
  );

/** Creates a {@link KeyedQueue}; more than `maxWaiting` waiting items for one key fail `RATE_LIMITED`. */
export function createKeyedQueue(options: { maxWaiting?: number } = {}): KeyedQueue {
  const maxWaiting = options.maxWaiting ?? 100;
  const tails = new Map<string, { tail: Promise<unknown>; size: number }>();
  return {
    run<T>(key: string, work: () => Promise<T>, deadline?: number): Promise<T> {
      const entry = tails.get(key);
      if (entry && entry.size > maxWaiting) {
        return Promise.reject(
          new ClawmeshError(
            'RATE_LIMITED',
            `too many messages waiting in conversation ${key}; try again shortly`,
            { details: { retryAfterSeconds: 1 } },
          ),
        );
      }
      const previous = entry?.tail ?? Promise.resolve();
      // Nothing ahead (the usual case): no timer, the work starts on the next microtask.
      const waits = entry !== undefined && deadline !== undefined;
      let timer: NodeJS.Timeout | undefined;
      let expired = false;
      const start = (): Promise<T> => {
        clearTimeout(timer);
        if (expired || (deadline !== undefined && Date.now() >= deadline))
          return Promise.reject(waitedPastDeadline(key));
        return work();
      };
      const result = previous.then(start, start);
      const tail = result.then(
        () => undefined,
        () => undefined,
      );
      const next = { tail, size: (entry?.size ?? 0) + 1 };
      tails.set(key, next);
      tail.then(() => {
        const current = tails.get(key);
        if (!current) return;
        current.size -= 1;
        if (current.tail === tail) tails.delete(key);
      });
      if (!waits) return result;
      // The result of expired work still settles (rejected) when its turn comes; the tail above
      // handles that rejection.
      const expiry = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => {
            expired = true;
            reject(waitedPastDeadline(key));
          },
          Math.max(0, deadline - Date.now()),
        );
      });
      return Promise.race([result, expiry]);
    },
    get activeKeys() {
      return tails.size;
    },
  };
}
