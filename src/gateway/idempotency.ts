import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { ClawmeshError } from '../core/errors.ts';
import type { ClaimResult, DedupeStore } from '../store/types.ts';

/** A reply run once per idempotency key; `replayed` is set when it was the first run's reply. */
export interface IdempotentResult<T> {
  value: T;
  replayed: boolean;
}

/**
 * Runs work at most once per key: a repeat gets the first reply, waiting for it while it is still
 * running, in this process or in another one over the same store.
 */
export interface Idempotency {
  run<T>(key: string, fingerprint: unknown, work: () => Promise<T>): Promise<IdempotentResult<T>>;
}

type Stored = { fingerprint: string; value: unknown };
type Running = { fingerprint: string; execution: Promise<IdempotentResult<unknown>> };

/**
 * Creates the idempotency guard over a dedupe store, which makes it hold across restarts and
 * processes. A reply is kept `ttlMs`; a claim whose run never finished (the process died) is
 * held only `pendingTtlMs`, after which a repeat runs again. A repeat whose first run is going on
 * in another process (another gateway replica over a shared store) polls the store for its reply
 * up to `waitMs`, then answers `CONFLICT` (retryable) if the first run has still not finished.
 */
export function createIdempotency(
  store: DedupeStore,
  ttlMs: number,
  pendingTtlMs = Math.min(ttlMs, 120_000),
  waitMs = pendingTtlMs,
): Idempotency {
  // Runs in this process, registered before the first await so a repeat in the same tick joins it.
  const running = new Map<string, Running>();

  const execute = async <T>(
    key: string,
    fingerprint: string,
    work: () => Promise<T>,
  ): Promise<IdempotentResult<T>> => {
    const claim = await claimOrWait(key);
    if (claim.state === 'done') {
      const stored = claim.value as Stored;
      assertSameRequest(stored.fingerprint, fingerprint);
      return { value: stored.value as T, replayed: true };
    }
    if (claim.state === 'pending') {
      throw new ClawmeshError(
        'CONFLICT',
        'a request with this Idempotency-Key is still being processed; retry later',
        // Unlike a key reused with another body, this one clears up: say when to look again.
        { retryable: true, details: { retryAfterSeconds: 1 } },
      );
    }
    try {
      const value = await work();
      await store.complete(key, { fingerprint, value } satisfies Stored, ttlMs);
      return { value, replayed: false };
    } catch (err) {
      await store.release(key).catch(() => undefined);
      throw err;
    }
  };

  // Another process holds the key: poll until it stores its reply, releases the key (its run
  // failed) or its claim expires (it died), backing off from 50 ms to 500 ms, for at most waitMs.
  const claimOrWait = async (key: string): Promise<ClaimResult> => {
    const giveUpAt = Date.now() + waitMs;
    let pause = 50;
    for (;;) {
      const claim = await store.claim(key, pendingTtlMs);
      if (claim.state !== 'pending') return claim;
      const left = giveUpAt - Date.now();
      if (left <= 0) return claim;
      await delay(Math.min(pause, left));
      pause = Math.min(pause * 2, 500);
    }
  };

  return {
    async run<T>(key: string, request: unknown, work: () => Promise<T>): Promise<IdempotentResult<T>> {
      const fingerprint = createHash('sha256').update(JSON.stringify(request)).digest('hex');
      const local = running.get(key);
      if (local) {
        assertSameRequest(local.fingerprint, fingerprint);
        const first = await local.execution;
        return { value: first.value as T, replayed: true };
      }
      const entry: Running = { fingerprint, execution: execute(key, fingerprint, work) };
      running.set(key, entry);
      try {
        return (await entry.execution) as IdempotentResult<T>;
      } finally {
        if (running.get(key) === entry) running.delete(key);
      }
    },
  };
}

function assertSameRequest(expected: string, actual: string): void {
  if (expected !== actual) {
    throw new ClawmeshError(
      'CONFLICT',
      'this Idempotency-Key was already used with a different request body',
    );
  }
}
