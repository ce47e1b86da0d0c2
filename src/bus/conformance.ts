import { randomUUID } from 'node:crypto';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
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
  /**
   * The adapter keeps events in a broker that outlives a consumer (Redis, NATS, RabbitMQ): adds
   * the cases where a consumer dies before acking, a group has no member for a while, and two
   * bus instances (two processes) share the broker. `make` must then return buses on one broker.
   */
  durable?: boolean;
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

/** A TCP proxy on loopback that a test cuts, as a network failure would, and restores. */
export interface TcpProxy {
  /** `127.0.0.1:<port>` of the proxy. */
  readonly address: string;
  readonly port: number;
  /** Closes every connection and refuses new ones. */
  cut(): void;
  /** Accepts connections again. */
  restore(): void;
  /** Stops forwarding on the open connections without closing them: a broker that hangs. */
  freeze(): void;
  close(): Promise<void>;
}

/** Starts a {@link TcpProxy} to `host:port`, for tests of lost broker connections. */
export async function startTcpProxy(host: string, port: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let open = true;
  const server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect(port, host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const bound = (server.address() as { port: number }).port;
  const cut = () => {
    open = false;
    for (const socket of sockets) socket.destroy();
  };
  return {
    address: `127.0.0.1:${bound}`,
    port: bound,
    cut,
    restore() {
      open = true;
    },
    freeze() {
      for (const socket of sockets) {
        socket.unpipe();
        socket.pause();
      }
    },
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
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

    it('shares the events of a group between its members', async () => {
      const first: string[] = [];
      const second: string[] = [];
      const shared = group('a');
      const slow = (into: string[]) => async (e: BusEvent) => {
        await sleep(30);
        into.push(e.id);
      };
      await bus.subscribe(topic, shared, slow(first));
      await bus.subscribe(topic, shared, slow(second));
      const sent = Array.from({ length: 12 }, (_, n) => event(topic, { n }));
      for (const e of sent) await bus.publish(e);
      await waitFor(() => first.length + second.length >= sent.length, waitMs, 'every event');
      await bus.drain();
      expect([...first, ...second].sort()).toEqual(sent.map((e) => e.id).sort());
      expect(first.length).toBeGreaterThan(0);
      expect(second.length).toBeGreaterThan(0);
    });

    it(`gives a * subscription every topic but the ${DEAD_LETTER_SUFFIX} ones`, async () => {
      const all: BusEvent[] = [];
      const dead: string[] = [];
      const deadTopic = `${topic}${DEAD_LETTER_SUFFIX}`;
      await bus.subscribe('*', group('all'), (e) => {
        all.push(e);
      });
      await bus.subscribe(deadTopic, group('dlq'), (e) => {
        dead.push(e.id);
      });
      const sent = [event(topic, { n: 1 }), event(`${topic}.second`, { n: 2 })];
      const deadLetter = event(deadTopic, { n: 3 });
      for (const e of sent) await bus.publish(e);
      await bus.publish(deadLetter);
      const ours = () => all.filter((e) => e.id === deadLetter.id || sent.some((s) => s.id === e.id));
      await waitFor(() => ours().length >= sent.length && dead.length === 1, waitMs, 'every event');
      await bus.drain();
      expect(ours()).toEqual(expect.arrayContaining(sent));
      expect(ours()).toHaveLength(sent.length);
    });

    it('handles an event id published twice at the same time once', async () => {
      const seen: string[] = [];
      await bus.subscribe(topic, group('a'), (e) => {
        seen.push(e.id);
      });
      const sent = event(topic);
      const after = event(topic);
      await Promise.all([bus.publish(sent), bus.publish({ ...sent }), bus.publish({ ...sent })]);
      await bus.publish(after);
      await waitFor(() => seen.includes(after.id), waitMs, 'the later event');
      await bus.drain();
      expect(seen.filter((id) => id === sent.id)).toHaveLength(1);
    });

    it('dead-letters an event with its id, data and trace context', async () => {
      const dead: BusEvent[] = [];
      await bus.subscribe(topic, group('a'), () => {
        throw new Error('permanent failure');
      });
      await bus.subscribe(`${topic}${DEAD_LETTER_SUFFIX}`, group('dlq'), (e) => {
        dead.push(e);
      });
      const sent = event(topic, { poison: 'yes' });
      await bus.publish(sent);
      await waitFor(() => dead.length === 1, waitMs, 'the dead-lettered event');
      expect(dead[0]).toEqual({ ...sent, type: `${topic}${DEAD_LETTER_SUFFIX}` });
    });

    if (!options.durable) return;

    it('redelivers to another member an event whose consumer died before acking', async () => {
      const shared = group('a');
      let release!: () => void;
      const stuck = new Promise<void>((resolve) => {
        release = resolve;
      });
      let holder: 'first' | 'second' | undefined;
      const handled: Array<{ by: string; id: string }> = [];
      const member = (name: 'first' | 'second') => (e: BusEvent) => {
        if (!holder) {
          holder = name; // this consumer "dies": its handler never finishes
          return stuck;
        }
        handled.push({ by: name, id: e.id });
      };
      const subscriptions = {
        first: await bus.subscribe(topic, shared, member('first')),
        second: await bus.subscribe(topic, shared, member('second')),
      };
      const sent = event(topic);
      await bus.publish(sent);
      await waitFor(() => holder !== undefined, waitMs, 'a member to take the event');
      await subscriptions[holder!].close();
      try {
        await waitFor(() => handled.length === 1, waitMs, 'the redelivery');
        const other = holder === 'first' ? 'second' : 'first';
        expect(handled).toEqual([{ by: other, id: sent.id }]);
        await bus.drain();
      } finally {
        release();
      }
    });

    it('keeps the events of a group while it has no member', async () => {
      const shared = group('a');
      const early = await bus.subscribe(topic, shared, () => undefined);
      await early.close();
      const sent = Array.from({ length: 3 }, (_, n) => event(topic, { n }));
      for (const e of sent) await bus.publish(e);
      const received: string[] = [];
      await bus.subscribe(topic, shared, (e) => {
        received.push(e.id);
      });
      await waitFor(() => received.length >= sent.length, waitMs, 'the kept events');
      await bus.drain();
      expect([...received].sort()).toEqual(sent.map((e) => e.id).sort());
    });

    it('carries events between two bus instances on one broker and shares a group across them', async () => {
      const peer = await make();
      try {
        const here: string[] = [];
        const there: string[] = [];
        const observed: BusEvent[] = [];
        const shared = group('a');
        await bus.subscribe(topic, shared, async (e) => {
          await sleep(20);
          here.push(e.id);
        });
        await peer.subscribe(topic, shared, async (e) => {
          await sleep(20);
          there.push(e.id);
        });
        await peer.subscribe(topic, group('observer'), (e) => {
          observed.push(e);
        });
        const sent = Array.from({ length: 10 }, (_, n) => event(topic, { n }));
        for (const e of sent) await bus.publish(e);
        await waitFor(
          () => observed.length >= sent.length && here.length + there.length >= sent.length,
          waitMs,
          'every event on both instances',
        );
        await Promise.all([bus.drain(), peer.drain()]);
        const byId = (x: BusEvent, y: BusEvent) => x.id.localeCompare(y.id);
        expect([...observed].sort(byId)).toEqual([...sent].sort(byId));
        expect([...here, ...there].sort()).toEqual(sent.map((e) => e.id).sort());
        expect(here.length).toBeGreaterThan(0);
        expect(there.length).toBeGreaterThan(0);
      } finally {
        await peer.close();
      }
    });
  });
}
