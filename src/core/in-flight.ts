/** Counts work in progress and lets a caller wait until there is none (for drains and shutdown). */
export interface InFlight {
  readonly count: number;
  enter(): void;
  leave(): void;
  /** Resolves once the count is zero (at once when it already is). */
  idle(): Promise<void>;
}

/** Creates an {@link InFlight} counter. */
export function createInFlight(): InFlight {
  let count = 0;
  let waiters: Array<() => void> = [];
  return {
    get count() {
      return count;
    },
    enter() {
      count += 1;
    },
    leave() {
      count -= 1;
      if (count > 0) return;
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake();
    },
    idle() {
      return count === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}
