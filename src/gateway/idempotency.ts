import { createHash } from 'node:crypto';
import { ClawmeshError } from '../core/errors.ts';
import type { DedupeStore } from '../store/types.ts';

/** A reply run once per idempotency key; `replayed` is set when it was the first run's reply. */
export interface IdempotentResult<T> {
  value: T;
  replayed: boolean;
}

/** Runs work at most once per key: a repeat gets the first reply (waiting for it when it is still running here). */
export interface Idempotency {
  run<T>(key: string, fingerprint: unknown, work: () => Promise<T>): Promise<IdempotentResult<T>>;
}

type Stored = { fingerprint: string; value: unknown };
type Running = { fingerprint: string; execution: Promise<IdempotentResult<unknown>> };

/**
 * Creates the idempotency guard over a dedupe store, which makes it hold across restarts and
 * processes. A reply is kept `ttlMs`; a claim whose run never finished (the process died) is
 * held only `pendingTtlMs`, after which a repeat runs again.
 */
export function createIdempotency(
  store: DedupeStore,
  ttlMs: number,
  pendingTtlMs = Math.min(ttlMs, 120_000),
): Idempotency {
  // Runs in this process, registered before the first await so a repeat in the same tick joins it.
  const running = new Map<string, Running>();

  const execute = async <T>(
    key: string,
    fingerprint: string,
    work: () => Promise<T>,
  ): Promise<IdempotentResult<T>> => {
    const claim = await store.claim(key, pendingTtlMs);
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
