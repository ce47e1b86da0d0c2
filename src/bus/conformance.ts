import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEAD_LETTER_SUFFIX } from './memory.ts';
import type { Bus, BusEvent } from './types.ts';

/*
 * The conformance suite every bus adapter runs unchanged. Topics and groups are unique per
 * test, so adapters whose tests share one server (Redis, NATS, RabbitMQ) can run it as it is.
 */

type Make = () => Promise<Bus> | Bus;

/** Options of {@link describeBus}. */
export interface DescribeBusOptions {
  /** The longest wait for a delivery, in milliseconds (default 5000). */
  waitMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves once `predicate` holds, polling every 10 ms; rejects after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs: number,
  what = 'condition',
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A version-1 event on `type` with a fresh id. */
function event(type: string, data: unknown = { n: 0 }): BusEvent {
  return {
    id: randomUUID(),
    type,
    version: 1,
    time: new Date().toISOString(),
    traceparent: `00-${randomUUID().replaceAll('-', '')}-${randomUUID().replaceAll('-', '').slice(0, 16)}-01`,
    data,
  };
}

/** How many times each value occurs. */
function counts(values: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const value of values) out.set(value, (out.get(value) ?? 0) + 1);
  return out;
}

/**
 * Registers the bus conformance suite. `make` is called before each test and the bus it
 * returns is closed after it.
 *
 * @example
 * describeBus('memory', () => createMemoryBus({ retryDelayMs: 1 }));
 */
export function describeBus(name: string, make: Make, options: DescribeBusOptions = {}): void {
  const waitMs = options.waitMs ?? 5000;

  describe(`Bus conformance: ${name}`, () => {
    let bus: Bus;
    let topic: string;
    const group = (label: string) => `${label}-${randomUUID()}`;

    beforeEach(async () => {
      bus = await make();
      topic = `conformance.${randomUUID()}`;
    });
    afterEach(async () => {
      await bus.close();
    });

    it('delivers a published event to a subscriber with id, type, version and data intact', async () => {
      const received: BusEvent[] = [];
      await bus.subscribe(topic, group('a'), (e) => {
        received.push(e);
      });
      const sent = event(topic, { text: 'héllo', nested: { list: [1, 2, 3], flag: true } });
      await bus.publish(sent);
      await waitFor(() => received.length === 1, waitMs, 'the event');
      expect(received[0]).toEqual(sent);
    });

    it('gives every group each event once and shares a group between its members', async () => {
      const a1: string[] = [];
      const a2: string[] = [];
      const b: string[] = [];
      const groupA = group('a');
      await bus.subscribe(topic, groupA, (e) => {
        a1.push(e.id);
      });
      await bus.subscribe(topic, groupA, (e) => {
        a2.push(e.id);
      });
      await bus.subscribe(topic, group('b'), (e) => {
        b.push(e.id);
      });
      const sent = Array.from({ length: 20 }, (_, n) => event(topic, { n }));
      for (const e of sent) await bus.publish(e);
      await waitFor(
        () => a1.length + a2.length >= sent.length && b.length >= sent.length,
        waitMs,
        'every event',
      );
      await bus.drain();

      const ids = sent.map((e) => e.id);
      const groupACounts = counts([...a1, ...a2]);
      expect([...groupACounts.keys()].sort()).toEqual([...ids].sort());
      expect([...groupACounts.values()].every((n) => n === 1)).toBe(true);
      expect([...b].sort()).toEqual([...ids].sort());
    });

    it('retries a handler that throws until the event is delivered', async () => {
      let attempts = 0;
      const handled: BusEvent[] = [];
      await bus.subscribe(topic, group('a'), (e) => {
        attempts += 1;
        if (attempts === 1) throw new Error('transient failure');
        handled.push(e);
      });
      const sent = event(topic);
      await bus.publish(sent);
      await waitFor(() => handled.length === 1, waitMs, 'the retried event');
      await bus.drain();
      expect(handled[0]).toEqual(sent);
      expect(attempts).toBe(2);
    });

    it(`moves an event that always fails to <topic>${DEAD_LETTER_SUFFIX} after several attempts`, async () => {
      let attempts = 0;
      const dead: BusEvent[] = [];
      await bus.subscribe(topic, group('a'), () => {
        attempts += 1;
        throw new Error('permanent failure');
      });
      await bus.subscribe(`${topic}${DEAD_LETTER_SUFFIX}`, group('dlq'), (e) => {
        dead.push(e);
      });
      const sent = event(topic, { poison: true });
      await bus.publish(sent);
      await waitFor(() => dead.length === 1, waitMs, 'the dead-lettered event');
      await bus.drain();
      expect(dead[0]).toMatchObject({ id: sent.id, version: 1, data: { poison: true } });
      expect(dead[0]?.type).toBe(`${topic}${DEAD_LETTER_SUFFIX}`);
      expect(attempts).toBeGreaterThan(1);
      expect(dead).toHaveLength(1);
    });

    it('handles an event id published twice once per group', async () => {
      const a: string[] = [];
      const b: string[] = [];
      await bus.subscribe(topic, group('a'), (e) => {
        a.push(e.id);
      });
      await bus.subscribe(topic, group('b'), (e) => {
        b.push(e.id);
      });
      const sent = event(topic);
      const after = event(topic);
      await bus.publish(sent);
      await bus.publish({ ...sent });
      await bus.publish(after);
      await waitFor(() => a.includes(after.id) && b.includes(after.id), waitMs, 'the later event');
      await bus.drain();
      expect(a.filter((id) => id === sent.id)).toHaveLength(1);
      expect(b.filter((id) => id === sent.id)).toHaveLength(1);
    });

    it('resolves drain() only after every handler ran', async () => {
      const finished: number[] = [];
      await bus.subscribe(topic, group('a'), async (e) => {
        await sleep(20);
        finished.push((e.data as { n: number }).n);
      });
      for (let n = 0; n < 10; n += 1) await bus.publish(event(topic, { n }));
      await bus.drain();
      expect([...finished].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });

    it('resolves drain() at once when nothing is in flight', async () => {
      await bus.subscribe(topic, group('a'), () => undefined);
      await expect(bus.drain()).resolves.toBeUndefined();
    });

    it('stops delivering to a subscription once it is closed', async () => {
      const closed: string[] = [];
      const kept: string[] = [];
      const observer: string[] = [];
      const shared = group('a');
      const subscription = await bus.subscribe(topic, shared, (e) => {
        closed.push(e.id);
      });
      await bus.subscribe(topic, shared, (e) => {
        kept.push(e.id);
      });
      await bus.subscribe(topic, group('observer'), (e) => {
        observer.push(e.id);
      });
      const first = event(topic);
      await bus.publish(first);
      await waitFor(
        () => observer.length === 1 && closed.length + kept.length === 1,
        waitMs,
        'the first event',
      );

      await subscription.close();
      const later = Array.from({ length: 6 }, (_, n) => event(topic, { n }));
      for (const e of later) await bus.publish(e);
      await waitFor(() => observer.length === 1 + later.length, waitMs, 'the later events');
      await waitFor(() => closed.length + kept.length === 1 + later.length, waitMs, 'the open member');
      await bus.drain();
      expect(closed.filter((id) => id !== first.id)).toEqual([]);
      expect(kept).toEqual(expect.arrayContaining(later.map((e) => e.id)));
    });

    it('does not make publish wait for handlers', async () => {
      let started = 0;
      let finished = 0;
      await bus.subscribe(topic, group('slow'), async () => {
        started += 1;
        await sleep(200);
        finished += 1;
      });
      await bus.publish(event(topic));
      await waitFor(() => started === 1, waitMs, 'the slow handler to start');

      const before = performance.now();
      await bus.publish(event(topic));
      const elapsed = performance.now() - before;
      expect(finished).toBe(0);
      expect(elapsed).toBeLessThan(100);
      await bus.drain();
      expect(finished).toBe(2);
    });
  });
}
