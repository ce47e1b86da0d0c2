/**
 * The turn lease port (DESIGN.md §8): one owner at a time per conversation, across processes.
 * A lease has an owner, an expiry that the holder renews while its turn runs, and a fencing
 * token that grows with every grant; each write of the turn carries the token, and the
 * conversation store rejects a write whose token is lower than one already written
 * (`AppendOptions.fence`), so a holder that lost its lease (a pause longer than the TTL, a
 * partition) cannot overwrite the work of the next one.
 *
 * Waiters are served in the order they started waiting. An acquire that cannot get the lease
 * within `waitMs` fails `UNAVAILABLE` (retryable: the conversation is busy, not broken); one
 * whose `signal` aborts fails with the signal's reason when that is a ClawmeshError, else
 * `DEADLINE_EXCEEDED` for a timeout signal and `UNAVAILABLE` for any other abort.
 */

/** Options of {@link TurnLease.acquire}. */
export interface AcquireOptions {
  /** How long the lease lives without renewal (default: the lease's `ttlMs`, 10 s unless set). */
  ttlMs?: number;
  /** How long to wait for a busy lease before failing `UNAVAILABLE` (default: the lease's `waitMs`). */
  waitMs?: number;
  /** Aborts the wait. */
  signal?: AbortSignal;
  /**
   * Renew the lease every `ttlMs / 3` while it is held (default `true`). With `false` it
   * expires `ttlMs` after the grant unless {@link LeaseHandle.renew} is called.
   */
  renew?: boolean;
}

/** A held lease. */
export interface LeaseHandle {
  readonly conversationId: string;
  /** The fencing token: greater than every token granted before for this conversation. */
  readonly token: number;
  /** Whether the lease was lost: it expired or another owner holds it now. */
  readonly lost: boolean;
  /**
   * `true` when the first command `acquire` sent took the lease: it did not wait, and did not
   * send its command again. Commands sent on the lease's Redis connection in the same tick as
   * the `acquire` call then ran after the grant, so what they read holds for this holder. Only
   * the Redis lease sets it; otherwise `undefined`.
   */
  readonly grantedAtOnce?: boolean;
  /** Aborts when the lease is lost, with a `CONFLICT` ClawmeshError as the reason. */
  readonly signal: AbortSignal;
  /** Throws the `CONFLICT` error of a lost lease; returns when it is still held. */
  assertHeld(): void;
  /** Extends the lease by its TTL now; `false` (and the lease counts as lost) when it was no longer held. */
  renew(): Promise<boolean>;
  /** Gives the lease up and wakes the next waiter. Idempotent; a lost lease is left to its new owner. */
  release(): Promise<void>;
}

/** The turn lease port. Adapters: memory (one process), Redis (across processes). */
export interface TurnLease {
  readonly kind: string;
  /** Waits for the conversation's lease and takes it. */
  acquire(conversationId: string, options?: AcquireOptions): Promise<LeaseHandle>;
  /** Stops renewals and waits; releases nothing (held leases expire). Closes a client the lease created. */
  close(): Promise<void>;
}

/** Defaults shared by every lease adapter's factory. */
export interface LeaseDefaults {
  /** TTL of a grant when `acquire` names none (default 10 000 ms). */
  ttlMs?: number;
  /** How long `acquire` waits when it names no `waitMs` (default 30 000 ms). */
  waitMs?: number;
}
