import {
  abortError,
  acquireSpec,
  busyError,
  closedError,
  createLeaseHandle,
  type InternalHandle,
  MAX_TIMER_MS,
} from './lease-handle.ts';
import type { LeaseDefaults, LeaseHandle, TurnLease } from './lease-types.ts';

interface Holder {
  handle: InternalHandle | undefined;
  expiry: NodeJS.Timeout | undefined;
}

interface Waiter {
  ttlMs: number;
  renew: boolean;
  resolve(handle: LeaseHandle): void;
  /** Stops the waiter's timer and abort listener. */
  settle(): void;
  reject(err: unknown): void;
}

/** One conversation's lease: its holder and the waiters in arrival order. Dropped when both are empty. */
interface Slot {
  holder: Holder | undefined;
  waiters: Waiter[];
}

/**
 * The in-process turn lease, for one process (the monolith, tests). It behaves as the Redis
 * lease does: FIFO waiters, expiry without renewal, and fencing tokens. Tokens start from the
 * clock in microseconds, so a restarted process still issues tokens above those its previous
 * run wrote to a store that outlives it (SQLite, PostgreSQL).
 *
 * @example
 * const lease = createMemoryTurnLease({ ttlMs: 10_000 });
 * const held = await lease.acquire(conversationId, { waitMs: 5000 });
 * try { await store.append(conversationId, messages, { fence: held.token }); } finally { await held.release(); }
 */
export function createMemoryTurnLease(defaults: LeaseDefaults = {}): TurnLease {
  const slots = new Map<string, Slot>();
  let lastToken = Date.now() * 1000;
  let closed = false;

  const grant = (id: string, slot: Slot, ttlMs: number, renew: boolean): InternalHandle => {
    const holder: Holder = { handle: undefined, expiry: undefined };
    const vacate = () => {
      clearTimeout(holder.expiry);
      slot.holder = undefined;
      next(id, slot);
    };
    holder.handle = createLeaseHandle({
      conversationId: id,
      token: ++lastToken,
      ttlMs,
      autoRenew: renew,
      askedAt: Date.now(),
      watchdog: false,
      async renewOnce() {
        if (slot.holder !== holder) return false;
        holder.expiry?.refresh();
        return true;
      },
      async releaseOnce() {
        if (slot.holder === holder) vacate();
      },
    });
    holder.expiry = setTimeout(() => {
      if (slot.holder !== holder) return;
      holder.handle?.markLost();
      vacate();
    }, ttlMs);
    holder.expiry.unref();
    slot.holder = holder;
    return holder.handle;
  };

  const next = (id: string, slot: Slot) => {
    const waiter = slot.waiters.shift();
    if (!waiter) {
      if (!slot.holder && slots.get(id) === slot) slots.delete(id);
      return;
    }
    waiter.settle();
    waiter.resolve(grant(id, slot, waiter.ttlMs, waiter.renew));
  };

  return {
    kind: 'memory',
    async acquire(conversationId, options = {}) {
      const { ttlMs, waitMs, renew, signal } = acquireSpec(conversationId, options, defaults);
      if (closed) throw closedError();
      if (signal?.aborted) throw abortError(signal);
      let slot = slots.get(conversationId);
      if (!slot) {
        slot = { holder: undefined, waiters: [] };
        slots.set(conversationId, slot);
      }
      if (!slot.holder && slot.waiters.length === 0) return grant(conversationId, slot, ttlMs, renew);
      if (waitMs <= 0) throw busyError(conversationId, waitMs);
      const queued = slot;
      return new Promise<LeaseHandle>((resolve, reject) => {
        const leave = (err: unknown) => {
          const at = queued.waiters.indexOf(waiter);
          if (at >= 0) queued.waiters.splice(at, 1);
          waiter.settle();
          reject(err);
        };
        const onAbort = () => leave(abortError(signal!));
        const timer = setTimeout(
          () => leave(busyError(conversationId, waitMs)),
          Math.min(waitMs, MAX_TIMER_MS),
        );
        const waiter: Waiter = {
          ttlMs,
          renew,
          resolve,
          reject,
          settle() {
            clearTimeout(timer);
            signal?.removeEventListener('abort', onAbort);
          },
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        queued.waiters.push(waiter);
      });
    },
    async close() {
      closed = true;
      for (const slot of slots.values()) {
        for (const waiter of slot.waiters.splice(0)) {
          waiter.settle();
          waiter.reject(closedError());
        }
        clearTimeout(slot.holder?.expiry);
        slot.holder?.handle?.dispose();
      }
      slots.clear();
    },
  };
}
