import { randomUUID } from 'node:crypto';
import { createClient, type RedisClientType } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../observability/logger.ts';
import { describeBus, startTcpProxy, waitFor } from './conformance.ts';
import { DEAD_LETTER_SUFFIX } from './memory.ts';
import { createRedisStreamsBus, type RedisStreamsBusOptions } from './redis-streams.ts';
import type { Bus, BusEvent } from './types.ts';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `clawmesh-test:${randomUUID()}:`;
let client: RedisClientType;
const buses: Bus[] = [];

const fast: RedisStreamsBusOptions = {
  prefix,
  claimIdleMs: 300,
  retryDelayMs: 5,
  blockMs: 1000,
  closeTimeoutMs: 200,
  drainTimeoutMs: 10_000,
  logger: silentLogger(),
};

async function make(options: Partial<RedisStreamsBusOptions> = {}): Promise<Bus> {
  const bus = await createRedisStreamsBus({ ...fast, client, ...options });
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
  client = createClient({ url }) as RedisClientType;
  await client.connect();
});

afterAll(async () => {
  await Promise.all(buses.map((bus) => bus.close().catch(() => undefined)));
  const keys: string[] = [];
  for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) keys.push(...batch);
  if (keys.length > 0) await client.del(keys);
  await client.close();
});

describeBus('redis streams', () => make(), { durable: true });

describe('redis streams bus', () => {
  it('keeps one stream per topic and copies events to the * stream, trimmed', async () => {
    const bus = await make({ maxLen: 10 });
    const topic = `t.${randomUUID()}`;
    for (let n = 0; n < 300; n += 1) await bus.publish(event(topic, { n }));
    const length = await client.xLen(`${prefix}${topic}`);
    expect(length).toBeGreaterThanOrEqual(10);
    expect(length).toBeLessThan(300);
    const last = await client.xRevRange(`${prefix}${topic}`, '+', '-', { COUNT: 1 });
    expect(JSON.parse(last[0]!.message.e!)).toMatchObject({ type: topic, data: { n: 299 } });
    const all = await client.xRevRange(`${prefix}*`, '+', '-', { COUNT: 1 });
    expect(JSON.parse(all[0]!.message.e!)).toMatchObject({ type: topic, data: { n: 299 } });
    await bus.close();
  });

  it('tries an event maxAttempts times, counting deliveries in Redis, then dead-letters it with the error', async () => {
    const bus = await make({ maxAttempts: 4 });
    const topic = `t.${randomUUID()}`;
    const attempts: string[] = [];
    await bus.subscribe(topic, 'g', (e) => {
      attempts.push(e.id);
      throw new Error('always broken');
    });
    const sent = event(topic);
    await bus.publish(sent);
    await waitFor(() => attempts.length === 4, 5000, 'four attempts');
    await bus.drain();
    expect(attempts).toEqual([sent.id, sent.id, sent.id, sent.id]);
    const dead = await client.xRange(`${prefix}${topic}${DEAD_LETTER_SUFFIX}`, '-', '+');
    expect(dead).toHaveLength(1);
    expect(dead[0]!.message).toMatchObject({ group: 'g', error: 'always broken' });
    expect(JSON.parse(dead[0]!.message.e!)).toMatchObject({
      id: sent.id,
      type: `${topic}${DEAD_LETTER_SUFFIX}`,
    });
    const pending = await client.xPending(`${prefix}${topic}`, 'g');
    expect(pending.pending).toBe(0);
  });

  it('dead-letters an event whose consumers keep dying without running it again', async () => {
    const bus = await make({ maxAttempts: 2 });
    const topic = `t.${randomUUID()}`;
    const stream = `${prefix}${topic}`;
    // Two consumers that read the entry and vanish: the delivery counter reaches 2.
    await client.xGroupCreate(stream, 'g', '$', { MKSTREAM: true });
    const sent = event(topic);
    await bus.publish(sent);
    await client.xReadGroup('g', 'dead-1', { key: stream, id: '>' });
    await client.xClaim(stream, 'g', 'dead-2', 0, (await client.xRange(stream, '-', '+'))[0]!.id);
    await client.xClaim(stream, 'g', 'dead-3', 0, (await client.xRange(stream, '-', '+'))[0]!.id);
    const ran: string[] = [];
    const dead: string[] = [];
    await bus.subscribe(topic, 'g', (e) => {
      ran.push(e.id);
    });
    await bus.subscribe(`${topic}${DEAD_LETTER_SUFFIX}`, 'dlq', (e) => {
      dead.push(e.id);
    });
    await waitFor(() => dead.length === 1, 5000, 'the dead letter');
    expect(ran).toEqual([]);
    expect(dead).toEqual([sent.id]);
  });

  it('delivers the events of a stream that was deleted and recreated (Redis restarted empty)', async () => {
    const bus = await make({ blockMs: 100 });
    const topic = `t.${randomUUID()}`;
    const seen: unknown[] = [];
    await bus.subscribe(topic, 'audit', (e) => {
      seen.push((e.data as { n: number }).n);
    });
    await bus.publish(event(topic, { n: 0 }));
    await waitFor(() => seen.length === 1, 5000, 'the first event');
    // The stream and its groups go, as with a Redis that restarts without its data; publishing
    // recreates the stream before the consumer notices its group is gone.
    await client.del(`${prefix}${topic}`);
    for (let n = 1; n <= 5; n += 1) await bus.publish(event(topic, { n }));
    await waitFor(() => seen.length === 6, 5000, 'the events published after the stream was recreated');
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('closes within its timeouts while Redis is unreachable (a shutdown during an outage)', async () => {
    const target = new URL(url);
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 6379));
    const cut = createClient({
      url: `redis://${proxy.address}`,
      socket: { reconnectStrategy: () => 50 },
    }) as RedisClientType;
    cut.on('error', () => undefined);
    await cut.connect();
    try {
      const bus = await createRedisStreamsBus({ ...fast, client: cut, drainTimeoutMs: 500 });
      const subscription = await bus.subscribe(`t.${randomUUID()}`, 'audit', () => undefined);
      await bus.subscribe('*', 'audit', () => undefined);
      await proxy.close(); // connections refused, as with a Redis that is down
      await waitFor(() => !cut.isReady, 5000, 'the client to notice');
      const started = Date.now();
      await subscription.close();
      await expect(bus.drain()).rejects.toThrow();
      await bus.close();
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      cut.destroy();
    }
  });

  it('rejects a topic that is not dot-separated words', async () => {
    const bus = await make();
    await expect(bus.publish(event('bad topic'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(bus.subscribe('a..b', 'g', () => undefined)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('connects from a url, owns that client and closes it', async () => {
    const bus = await createRedisStreamsBus({ ...fast, url });
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

  it('fails with UNAVAILABLE when Redis cannot be reached', async () => {
    await expect(createRedisStreamsBus({ url: 'redis://127.0.0.1:1' })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
  });
});
