import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { connect as amqpConnect } from 'amqplib';
import { createClient } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { waitFor } from './conformance.ts';
import { type BusKind, type CreateBusOptions, createBus, type ManagedBus } from './index.ts';
import type { BusEvent } from './types.ts';

const logger = silentLogger();
const run = randomUUID().replaceAll('-', '').slice(0, 12);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const rabbitmqUrl = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

const configs: Record<BusKind, Omit<CreateBusOptions, 'kind' | 'logger'>> = {
  memory: {},
  redis: { redis: { url: redisUrl, prefix: `clawmesh-test:${run}:` } },
  nats: {
    nats: {
      servers: natsUrl,
      streamName: `CLAWMESH_TEST_${run}`,
      subjectPrefix: `clawmesh-test.${run}`,
      storage: 'memory',
    },
  },
  rabbitmq: {
    rabbitmqUrl,
    rabbitmq: { exchange: `clawmesh-test.${run}`, queueArguments: { 'x-expires': 60_000 } },
  },
};

const event = (data: unknown): BusEvent => ({
  id: randomUUID(),
  type: 'message.received',
  version: 1,
  time: new Date().toISOString(),
  data,
});

afterAll(async () => {
  const redis = createClient({ url: redisUrl });
  await redis.connect();
  const keys: string[] = [];
  for await (const batch of redis.scanIterator({ MATCH: `clawmesh-test:${run}:*` })) keys.push(...batch);
  if (keys.length > 0) await redis.del(keys);
  await redis.close();
  const amqp = await amqpConnect(rabbitmqUrl);
  await (await amqp.createChannel()).deleteExchange(`clawmesh-test.${run}`).catch(() => undefined);
  await amqp.close();
  const nc = await connect({ servers: natsUrl });
  await (await jetstreamManager(nc)).streams.delete(`CLAWMESH_TEST_${run}`).catch(() => undefined);
  await nc.close();
});

describe('createBus', () => {
  for (const kind of ['memory', 'redis', 'nats', 'rabbitmq'] as const) {
    it(`creates a working ${kind} bus that reports its buffer and answers ping`, async () => {
      const metrics = createMetrics({ defaultMetrics: false });
      const bus: ManagedBus = await createBus({ kind, logger, metrics, ...configs[kind] });
      try {
        expect(bus.kind).toBe(kind);
        await bus.ping();
        const seen: unknown[] = [];
        await bus.subscribe('message.received', `g-${randomUUID()}`, (e) => {
          seen.push(e.data);
        });
        const started = performance.now();
        for (let n = 0; n < 3; n += 1) await bus.publish(event({ n }));
        expect(performance.now() - started).toBeLessThan(50);
        await waitFor(() => seen.length === 3, 5000, 'the events');
        await bus.drain();
        const order = (x: unknown) => (x as { n: number }).n;
        expect([...seen].sort((a, b) => order(a) - order(b))).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
        expect(bus.buffered).toBe(0);
        expect(bus.dropped).toBe(0);
      } finally {
        await bus.close();
      }
    });
  }

  it('names the missing setting of a durable kind', async () => {
    await expect(createBus({ kind: 'redis', logger })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('REDIS_URL'),
    });
    await expect(createBus({ kind: 'nats', logger })).rejects.toThrow(/NATS_URL/);
    await expect(createBus({ kind: 'rabbitmq', logger })).rejects.toThrow(/RABBITMQ_URL/);
    await expect(createBus({ kind: 'kafka' as BusKind, logger })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('memory, redis, nats, rabbitmq'),
    });
  });

  it('fails with UNAVAILABLE when the broker of a durable kind cannot be reached at start', async () => {
    await expect(
      createBus({ kind: 'rabbitmq', logger, rabbitmqUrl: 'amqp://127.0.0.1:1' }),
    ).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
  });
});

describe('createBus, a broker it cannot reach', () => {
  it('names RABBITMQ_URL and the address, without the password', async () => {
    const made = createBus({
      kind: 'rabbitmq',
      rabbitmqUrl: 'amqp://guest:hunter2@127.0.0.1:1',
      logger: silentLogger(),
    });
    const err = await made.then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toMatchObject({ code: 'UNAVAILABLE' });
    expect(err!.message).toMatch(
      /^cannot connect to RabbitMQ \(RABBITMQ_URL\) at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1:/,
    );
    expect(err!.message).not.toContain('hunter2');
  });
});
