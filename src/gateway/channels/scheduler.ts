import { createInFlight } from '../../core/in-flight.ts';

/** Runs tasks with a bound on how many run at once, one at a time per key, in submission order. */
export interface KeyedScheduler {
  /** Queues `task` behind the earlier tasks of `key`; the returned promise settles with it. */
  run(key: string, task: () => Promise<void>): Promise<void>;
  /** Tasks queued or running. */
  readonly size: number;
  /** Resolves once no task is queued or running. */
  idle(): Promise<void>;
}

/**
 * Creates a scheduler running at most `concurrency` tasks at once. Tasks of one key (a chat)
 * run one after another, so a chat's replies go out in the order its messages came in.
 */
export function createKeyedScheduler(concurrency: number): KeyedScheduler {
  const tails = new Map<string, Promise<void>>();
  const waiting: (() => void)[] = [];
  const inFlight = createInFlight();
  let active = 0;
  const acquire = (): Promise<void> => {
    if (active < concurrency) {
      active += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => waiting.push(resolve));
  };
  // A freed slot passes straight to the next waiter, so `active` never over-counts.
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else active -= 1;
  };
  return {
    run(key, task) {
      inFlight.enter();
      const previous = tails.get(key) ?? Promise.resolve();
      const result = previous.then(async () => {
        await acquire();
        try {
          await task();
        } finally {
          release();
        }
      });
      const tail = result.then(
        () => undefined,
        () => undefined,
      );
      tails.set(key, tail);
      void tail.then(() => {
        if (tails.get(key) === tail) tails.delete(key);
        inFlight.leave();
      });
      return result;
    },
    get size() {
      return inFlight.count;
    },
    idle: () => inFlight.idle(),
  };
}
