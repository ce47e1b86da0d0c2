import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LeaseHandle, TurnLease } from './lease-types.ts';
import { createMemoryConversationStore } from './memory.ts';
import type { ConversationStore } from './types.ts';

/*
 * The conformance suite every turn lease adapter runs. Conversation ids are unique per test, so
 * adapters whose tests share one server can run it as it is.
 */

/** One backend for a test: owners that stand for processes, and a store for the fence check. */
export interface LeaseFixture {
  /** One more owner on the same backend (another process; the memory lease may return itself). */
  open(): TurnLease | Promise<TurnLease>;
  /** The store the stale-token write goes to (default: a memory conversation store). */
  store?: ConversationStore;
  /** Closes every owner it opened. */
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves to what `promise` rejected with; fails the test if it resolved. */
async function rejection(promise: Promise<unknown>): Promise<{ code?: unknown; details?: unknown }> {
  try {
    await promise;
  } catch (err) {
    return err as { code?: unknown };
  }
  throw new Error('expected the call to reject');
}

/** Whether `promise` is still pending after the current turn of the event loop and `ms` more. */
async function pending(promise: Promise<unknown>, ms = 0): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await sleep(ms);
  return !settled;
}

/**
 * Registers the turn lease conformance suite. `make` is called before each test and the
 * fixture it returns is closed after it.
 *
 * @example
 * describeTurnLease('memory', () => {
 *   const lease = createMemoryTurnLease();
 *   return { open: () => lease, close: () => lease.close() };
 * });
 */
export function describeTurnLease(name: string, make: () => LeaseFixture | Promise<LeaseFixture>): void {
  describe(`TurnLease conformance: ${name}`, () => {
    let fixture: LeaseFixture;
    let a: TurnLease;
    let b: TurnLease;
    beforeEach(async () => {
      fixture = await make();
      a = await fixture.open();
      b = await fixture.open();
    });
    afterEach(async () => {
      await fixture.close();
    });

    it('grants one owner at a time: a second acquire waits for the release', async () => {
      const id = randomUUID();
      const first = await a.acquire(id);
      const second = b.acquire(id, { waitMs: 5000 });
      expect(await pending(second, 60)).toBe(true);
      await first.release();
      const held = await second;
      expect(held.token).toBeGreaterThan(first.token);
      expect(held.lost).toBe(false);
      await held.release();
      // Other conversations never wait on this one.
      const other = await b.acquire(randomUUID(), { waitMs: 0 });
      await other.release();
    });

    it('keeps turns of one conversation apart under contention, tokens rising in grant order', async () => {
      const id = randomUUID();
      const owners = [a, b, await fixture.open()];
      let inside = 0;
      let overlaps = 0;
      const tokens: number[] = [];
      const turn = async (owner: TurnLease) => {
        const held = await owner.acquire(id, { waitMs: 10_000 });
        inside += 1;
        if (inside > 1) overlaps += 1;
        tokens.push(held.token);
        await sleep(2);
        inside -= 1;
        await held.release();
      };
      await Promise.all(owners.flatMap((owner) => Array.from({ length: 8 }, () => turn(owner))));
      expect(overlaps).toBe(0);
      expect(tokens).toHaveLength(24);
      for (let i = 1; i < tokens.length; i += 1) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
    });

    it('serves waiters in the order they started waiting, whichever owner they belong to', async () => {
      const id = randomUUID();
      const held = await a.acquire(id);
      const order: number[] = [];
      const waits: Promise<void>[] = [];
      for (let n = 1; n <= 6; n += 1) {
        const owner = n % 2 === 0 ? a : b;
        waits.push(
          owner.acquire(id, { waitMs: 10_000 }).then(async (lease) => {
            order.push(n);
            await lease.release();
          }),
        );
        await sleep(15);
      }
      await held.release();
      await Promise.all(waits);
      expect(order).toEqual([1, 2, 3, 4, 5, 6]);
    });

    it('lets another owner in once a holder that stopped renewing (a crash) expires', async () => {
      const id = randomUUID();
      const crashed = await a.acquire(id, { ttlMs: 150, renew: false });
      const started = performance.now();
      const next = await b.acquire(id, { waitMs: 5000 });
      const waited = performance.now() - started;
      expect(waited).toBeGreaterThanOrEqual(100);
      expect(waited).toBeLessThan(1500);
      expect(next.token).toBeGreaterThan(crashed.token);
      await sleep(20);
      expect(crashed.lost).toBe(true);
      expect(crashed.signal.aborted).toBe(true);
      expect((crashed.signal.reason as { code?: unknown }).code).toBe('CONFLICT');
      expect(await crashed.renew()).toBe(false);
      // The late release of the lost lease leaves the new owner's lease alone.
      await crashed.release();
      expect((await rejection(a.acquire(id, { waitMs: 50 }))).code).toBe('UNAVAILABLE');
      expect(next.lost).toBe(false);
      await next.release();
    });

    it('keeps the lease of a turn that outlives its TTL while it renews', async () => {
      const id = randomUUID();
      const held = await a.acquire(id, { ttlMs: 240 });
      const err = await rejection(b.acquire(id, { waitMs: 720 }));
      expect(err.code).toBe('UNAVAILABLE');
      expect(held.lost).toBe(false);
      expect(held.signal.aborted).toBe(false);
      expect(() => held.assertHeld()).not.toThrow();
      await held.release();
      const next = await b.acquire(id, { waitMs: 1000 });
      expect(next.token).toBeGreaterThan(held.token);
      await next.release();
    });

    it('renews on demand a lease taken without automatic renewal', async () => {
      const id = randomUUID();
      const held = await a.acquire(id, { ttlMs: 300, renew: false });
      for (let i = 0; i < 4; i += 1) {
        await sleep(100);
        expect(await held.renew()).toBe(true);
      }
      expect(held.lost).toBe(false);
      expect((await rejection(b.acquire(id, { waitMs: 30 }))).code).toBe('UNAVAILABLE');
      await held.release();
    });

    it('wakes a waiter within a few milliseconds of the release', async () => {
      const id = randomUUID();
      const latencies: number[] = [];
      for (let round = 0; round < 5; round += 1) {
        const held = await a.acquire(id);
        let grantedAt = 0;
        const waiter = b.acquire(id, { waitMs: 5000 }).then((lease) => {
          grantedAt = performance.now();
          return lease;
        });
        await sleep(40); // the waiter is in line and listening
        const releasedAt = performance.now();
        await held.release();
        await (await waiter).release();
        latencies.push(grantedAt - releasedAt);
      }
      latencies.sort((x, y) => x - y);
      // The median: one slow round on a busy machine says nothing. A polling waiter would take ~100 ms.
      expect(latencies[2]).toBeLessThan(25);
    });

    it('fails an acquire that waited waitMs with UNAVAILABLE, and the failed waiter blocks no one', async () => {
      const id = randomUUID();
      const held = await a.acquire(id);
      const started = performance.now();
      const err = await rejection(b.acquire(id, { waitMs: 80 }));
      expect(performance.now() - started).toBeGreaterThanOrEqual(70);
      expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true, details: { conversationId: id } });
      expect((await rejection(b.acquire(id, { waitMs: 0 }))).code).toBe('UNAVAILABLE');
      await held.release();
      const next = await b.acquire(id, { waitMs: 0 });
      await next.release();
    });

    it('stops waiting when the signal aborts, with the reason as the error', async () => {
      const id = randomUUID();
      const held = await a.acquire(id);
      expect((await rejection(b.acquire(id, { signal: AbortSignal.timeout(40) }))).code).toBe(
        'DEADLINE_EXCEEDED',
      );
      const controller = new AbortController();
      const waiting = b.acquire(id, { signal: controller.signal });
      await sleep(20);
      const reason = Object.assign(new Error('stop'), { code: 'X' });
      controller.abort(reason);
      expect((await rejection(waiting)).code).toBe('UNAVAILABLE');
      await held.release();
      const next = await b.acquire(id, { waitMs: 1000 });
      await next.release();
    });

    it('has the store reject a write carrying the token of a lease that was taken over', async () => {
      const store = fixture.store ?? createMemoryConversationStore();
      const { id } = await store.ensure({ id: randomUUID(), agentId: 'a', channel: 'c', peer: 'p' });
      const old: LeaseHandle = await a.acquire(id, { ttlMs: 100, renew: false });
      const current = await b.acquire(id, { waitMs: 5000 });
      await store.append(id, [{ role: 'user', content: 'from the new owner' }], { fence: current.token });
      const err = await rejection(
        store.append(id, [{ role: 'user', content: 'stale' }], { fence: old.token }),
      );
      expect(err.code).toBe('CONFLICT');
      expect(() => old.assertHeld()).toThrow(expect.objectContaining({ code: 'CONFLICT' }));
      expect((await store.messages(id)).map((m) => m.content)).toEqual(['from the new owner']);
      await current.release();
      if (!fixture.store) await store.close();
    });

    it('rejects an empty conversation id and a TTL below 3 ms with INVALID_ARGUMENT', async () => {
      expect((await rejection(a.acquire(''))).code).toBe('INVALID_ARGUMENT');
      expect((await rejection(a.acquire(randomUUID(), { ttlMs: 0 }))).code).toBe('INVALID_ARGUMENT');
      expect((await rejection(a.acquire(randomUUID(), { waitMs: -1 }))).code).toBe('INVALID_ARGUMENT');
    });
  });
}
