import { ClawmeshError } from '../core/errors.ts';

/**
 * Runs work one at a time per key, in arrival order; different keys run concurrently.
 * The monolith's turn lease: a second message of a conversation waits for the first.
 */
export interface KeyedQueue {
  /** Runs `work` after every earlier work of the same key has settled. */
  run<T>(key: string, work: () => Promise<T>): Promise<T>;
  /** Keys with work running or waiting. */
  readonly activeKeys: number;
}

/** Creates a {@link KeyedQueue}; more than `maxWaiting` waiting items for one key fail `RATE_LIMITED`. */
export function createKeyedQueue(options: { maxWaiting?: number } = {}): KeyedQueue {
  const maxWaiting = options.maxWaiting ?? 100;
  const tails = new Map<string, { tail: Promise<unknown>; size: number }>();
  return {
    run<T>(key: string, work: () => Promise<T>): Promise<T> {
      const entry = tails.get(key);
      if (entry && entry.size > maxWaiting) {
        return Promise.reject(
          new ClawmeshError(
            'RATE_LIMITED',
            `too many messages waiting in conversation ${key}; try again shortly`,
          ),
        );
      }
      const previous = entry?.tail ?? Promise.resolve();
      const result = previous.then(work, work);
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
      return result;
    },
    get activeKeys() {
      return tails.size;
    },
  };
}
