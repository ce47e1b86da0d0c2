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

/** Creates the idempotency guard over a dedupe store, which makes it hold across restarts and processes. */
export function createIdempotency(store: DedupeStore, ttlMs: number): Idempotency {
  const running = new Map<string, { fingerprint: string; promise: Promise<unknown> }>();
  return {
    async run<T>(key: string, fingerprintOf: unknown, work: () => Promise<T>): Promise<IdempotentResult<T>> {
      const fingerprint = createHash('sha256').update(JSON.stringify(fingerprintOf)).digest('hex');
      const local = running.get(key);
      if (local) {
        assertSameRequest(local.fingerprint, fingerprint);
        return { value: (await local.promise) as T, replayed: true };
      }
      const claim = await store.claim(key, ttlMs);
      if (claim.state === 'done') {
        const stored = claim.value as Stored;
        assertSameRequest(stored.fingerprint, fingerprint);
        return { value: stored.value as T, replayed: true };
      }
      if (claim.state === 'pending') {
        throw new ClawmeshError(
          'CONFLICT',
          'a request with this Idempotency-Key is still being processed; retry later',
        );
      }
      const promise = work();
      running.set(key, { fingerprint, promise });
      try {
        const value = await promise;
        await store.complete(key, { fingerprint, value } satisfies Stored, ttlMs);
        return { value, replayed: false };
      } catch (err) {
        await store.release(key).catch(() => undefined);
        throw err;
      } finally {
        running.delete(key);
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
