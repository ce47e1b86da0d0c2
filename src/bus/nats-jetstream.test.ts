import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../observability/logger.ts';
import { describeBus, startTcpProxy, waitFor } from './conformance.ts';
import { DEAD_LETTER_SUFFIX } from './memory.ts';
import { createJetStreamBus, type JetStreamBusOptions } from './nats-jetstream.ts';
import type { Bus, BusEvent } from './types.ts';

const servers = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const run = randomUUID().replaceAll('-', '').slice(0, 12);
const streamName = `CLAWMESH_TEST_${run}`;
const subjectPrefix = `clawmesh-test.${run}`;
let nc: NatsConnection;
const buses: Bus[] = [];

const fast: JetStreamBusOptions = {
  streamName,
  subjectPrefix,
  ackWaitMs: 600,
  retryDelayMs: 5,
  closeTimeoutMs: 200,
  drainTimeoutMs: 10_000,
  storage: 'memory',
  logger: silentLogger(),
};

async function make(options: Partial<JetStreamBusOptions> = {}): Promise<Bus> {
  const bus = await createJetStreamBus({ ...fast, connection: nc, ...options });
  buses.push(bus);
  return bus;
}

const event = (type: string, data: unknown = {}): BusEvent => ({
  id: randomUUID(),
  type,
  version: 1,
  time: new Date().toISOString(),
  data,
});

beforeAll(async () => {
  nc = await connect({ servers });
});

afterAll(async () => {
  await Promise.all(buses.map((bus) => bus.close().catch(() => undefined)));
  const jsm = await jetstreamManager(nc);
  // This run's streams: the shared one and each test's own (`<name>_consumer`, `_lost`, …).
  const ours: string[] = [];
  for await (const info of jsm.streams.list()) {
    if (info.config.name.startsWith(streamName)) ours.push(info.config.name);
  }
  await Promise.all(ours.map((name) => jsm.streams.delete(name).catch(() => undefined)));
  await nc.close();
});

describeBus('nats jetstream', () => make(), { durable: true });

describe('nats jetstream bus', () => {
  it('stores events in one stream with the server dropping a repeated message id', async () => {
    const bus = await make();
    const topic = `t.${randomUUID()}`;
    const sent = event(topic, { n: 1 });
    await bus.publish(sent);
    await bus.publish({ ...sent });
    await bus.publish(event(topic, { n: 2 }));
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(streamName, { subjects_filter: `${subjectPrefix}.${topic}` });
    expect(info.state.subjects?.[`${subjectPrefix}.${topic}`]).toBe(2);
    const stored = await jsm.streams.getMessage(streamName, { last_by_subj: `${subjectPrefix}.${topic}` });
    expect(stored?.json()).toMatchObject({ type: topic, data: { n: 2 } });
  });

  it('tries an event maxAttempts times by the server delivery count, then dead-letters it', async () => {
    const bus = await make({ maxAttempts: 4 });
    const topic = `t.${randomUUID()}`;
    const attempts: string[] = [];
    const dead: BusEvent[] = [];
    await bus.subscribe(topic, 'g', (e) => {
      attempts.push(e.id);
      throw new Error('always broken');
    });
    await bus.subscribe(`${topic}${DEAD_LETTER_SUFFIX}`, 'dlq', (e) => {
      dead.push(e);
    });
    const sent = event(topic);
    await bus.publish(sent);
    await waitFor(() => dead.length === 1, 5000, 'the dead letter');
    await bus.drain();
    expect(attempts).toEqual([sent.id, sent.id, sent.id, sent.id]);
    expect(dead[0]).toMatchObject({ id: sent.id, type: `${topic}${DEAD_LETTER_SUFFIX}` });
  });

  it('dead-letters an event whose consumers kept dying, without running it again', async () => {
    // maxAttempts 1: the first member takes the event and dies; the next delivery dead-letters it.
    const bus = await make({ maxAttempts: 1 });
    const topic = `t.${randomUUID()}`;
    const ran: string[] = [];
    const dead: string[] = [];
    let release!: () => void;
    const stuck = new Promise<void>((resolve) => {
      release = resolve;
    });
    const dying = await bus.subscribe(topic, 'g', (e) => {
      ran.push(e.id);
      return stuck;
    });
    await bus.subscribe(`${topic}${DEAD_LETTER_SUFFIX}`, 'dlq', (e) => {
      dead.push(e.id);
    });
    const sent = event(topic);
    await bus.publish(sent);
    await waitFor(() => ran.length === 1, 5000, 'the first delivery');
    await dying.close();
    await bus.subscribe(topic, 'g', (e) => {
      ran.push(e.id);
    });
    await waitFor(() => dead.length === 1, 5000, 'the dead letter');
    release();
    expect(ran).toEqual([sent.id]);
    expect(dead).toEqual([sent.id]);
  });

  it('dead-letters from the max-deliveries advisory an event delivered max_deliver times elsewhere', async () => {
    const bus = await make({ maxAttempts: 1 });
    const topic = `t.${randomUUID()}`;
    const group = `g-${randomUUID()}`;
    // Create the group's consumer, then play two members that take the event and die.
    await (await bus.subscribe(topic, group, () => undefined)).close();
    const dead: string[] = [];
    await bus.subscribe(`${topic}${DEAD_LETTER_SUFFIX}`, 'dlq', (e) => {
      dead.push(e.id);
    });
    const sent = event(topic);
    await bus.publish(sent);
    const jsm = await jetstreamManager(nc);
    const consumers = await jsm.consumers.list(streamName).next();
    const durable = consumers.find((c) => c.config.description === `clawmesh group ${group} on ${topic}`);
    expect(durable).toBeDefined();
    const raw = await jetstream(nc).consumers.get(streamName, durable!.name);
    for (let delivery = 1; delivery <= 2; delivery += 1) {
      const msg = await raw.next({ expires: 2000 });
      expect(msg?.info.deliveryCount).toBe(delivery);
      await new Promise((resolve) => setTimeout(resolve, 700)); // past ack_wait, never acked
    }
    const ran: string[] = [];
    await bus.subscribe(topic, group, (e) => {
      ran.push(e.id);
    });
    await waitFor(() => dead.length === 1, 5000, 'the dead letter from the advisory');
    expect(dead).toEqual([sent.id]);
    expect(ran).toEqual([]);
  });

  it('rejects a topic that is not a valid subject', async () => {
    const bus = await make();
    await expect(bus.publish(event('bad topic'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(bus.subscribe('a.>', 'g', () => undefined)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('connects from servers, owns that connection and closes it', async () => {
    const bus = await createJetStreamBus({ ...fast, servers });
    const topic = `t.${randomUUID()}`;
    const seen: string[] = [];
    await bus.subscribe(topic, 'g', (e) => {
      seen.push(e.id);
    });
    const sent = event(topic);
    await bus.publish(sent);
    await waitFor(() => seen.length === 1, 5000, 'the event');
    await bus.ping();
    await bus.close();
    await expect(bus.ping()).rejects.toThrow();
    expect(seen).toEqual([sent.id]);
  });

  it('closes within about a second while NATS is unreachable, instead of waiting out every consumer lookup', async () => {
    const target = new URL(servers);
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 4222));
    const connection = await connect({ servers: `nats://${proxy.address}`, maxReconnectAttempts: -1 });
    try {
      const bus = await createJetStreamBus({ ...fast, connection });
      const topic = `t.${randomUUID()}`;
      const seen: string[] = [];
      await bus.subscribe(topic, 'g', (e) => {
        seen.push(e.id);
      });
      await bus.publish(event(topic));
      await waitFor(() => seen.length === 1, 5000, 'the event');
      proxy.cut();
      const began = performance.now();
      await expect(bus.drain()).rejects.toMatchObject({ code: 'UNAVAILABLE', message: /unreachable/ });
      await bus.close();
      expect(performance.now() - began).toBeLessThan(4000);
    } finally {
      await connection.close();
      await proxy.close();
    }
  });

  it('fails with UNAVAILABLE when NATS cannot be reached', async () => {
    await expect(createJetStreamBus({ servers: 'nats://127.0.0.1:1' })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
  });
});

describe('nats jetstream bus, its stream or consumer gone under it', () => {
  const own = (name: string): Partial<JetStreamBusOptions> => ({
    streamName: `${streamName}_${name}`,
    subjectPrefix: `${subjectPrefix}-${name}`,
  });

  it('creates a vanished stream again on the next publish, and its consumers read it from the start', async () => {
    const options = own('lost');
    const bus = (await make(options)) as Awaited<ReturnType<typeof createJetStreamBus>>;
    const seen: string[] = [];
    await bus.subscribe('order.placed', 'audit', async (e) => {
      seen.push((e.data as { n: number }).n.toString());
    });
    await bus.publish(event('order.placed', { n: 1 }));
    await waitFor(() => seen.length === 1, 5000);

    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(options.streamName!);
    // A server that lost its storage: publishing fails until the stream is back, then goes on.
    await bus.publish(event('order.placed', { n: 2 }));
    await bus.publish(event('order.placed', { n: 3 }));
    await waitFor(() => seen.length === 3, 15_000);
    expect(seen).toEqual(['1', '2', '3']);
    await expect(bus.ping()).resolves.toBeUndefined();
  }, 30_000);

  it('makes a deleted consumer again from the last message it saw, losing nothing published meanwhile', async () => {
    const options = own('consumer');
    const bus = await make(options);
    const seen = new Set<number>();
    await bus.subscribe('order.paid', 'billing', async (e) => {
      seen.add((e.data as { n: number }).n);
    });
    await bus.publish(event('order.paid', { n: 1 }));
    await waitFor(() => seen.size === 1, 5000);
    const jsm = await jetstreamManager(nc);
    const consumers = await jsm.consumers.list(options.streamName!).next();
    await jsm.consumers.delete(options.streamName!, consumers[0]!.name);
    await bus.publish(event('order.paid', { n: 2 }));
    await waitFor(() => seen.size === 2, 15_000);
    expect([...seen].sort()).toEqual([1, 2]);
  }, 30_000);

  it('is not ready while its stream is gone and cannot be made again', async () => {
    const options = own('ping');
    const bus = (await make(options)) as Awaited<ReturnType<typeof createJetStreamBus>>;
    await expect(bus.ping()).resolves.toBeUndefined();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(options.streamName!);
    // Another stream now holds the subjects: ours cannot be created again.
    const rival = `${options.streamName}_RIVAL`;
    await jsm.streams.add({
      name: rival,
      subjects: [`${options.subjectPrefix}.>`],
      storage: 'memory' as never,
    });
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the check runs at most once a second
    try {
      await expect(bus.ping()).rejects.toBeDefined();
    } finally {
      await jsm.streams.delete(rival);
    }
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the check runs at most once a second
    await expect(bus.ping()).resolves.toBeUndefined();
  });
});
