import { randomUUID } from 'node:crypto';
import { type ChannelModel, connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../observability/logger.ts';
import { describeBus, startTcpProxy, waitFor } from './conformance.ts';
import { DEAD_LETTER_SUFFIX } from './memory.ts';
import { createRabbitMqBus, type RabbitMqBus, type RabbitMqBusOptions } from './rabbitmq.ts';
import type { Bus, BusEvent } from './types.ts';

const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchange = `clawmesh-test.${randomUUID()}`;
const buses: Bus[] = [];
let admin: ChannelModel;

const fast: RabbitMqBusOptions = {
  url,
  exchange,
  retryDelayMs: 5,
  closeTimeoutMs: 200,
  drainTimeoutMs: 10_000,
  // Queues of this run vanish a minute after their last consumer.
  queueArguments: { 'x-expires': 60_000 },
  reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
  logger: silentLogger(),
};

async function make(options: Partial<RabbitMqBusOptions> = {}): Promise<RabbitMqBus> {
  const bus = await createRabbitMqBus({ ...fast, ...options });
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

/** A proxy to the broker, with the bus URL through it. */
async function brokerProxy() {
  const target = new URL(url);
  const proxy = await startTcpProxy(target.hostname, Number(target.port || 5672));
  return Object.assign(proxy, { url: `amqp://${target.username}:${target.password}@${proxy.address}` });
}

beforeAll(async () => {
  admin = await connect(url);
});

afterAll(async () => {
  await Promise.all(buses.map((bus) => bus.close().catch(() => undefined)));
  const channel = await admin.createChannel();
  await channel.deleteExchange(exchange).catch(() => undefined);
  await admin.close();
});

describeBus('rabbitmq', () => make(), { durable: true });

describe('rabbitmq bus', () => {
  it('counts attempts in a header and dead-letters with the group and the error', async () => {
    const bus = await make({ maxAttempts: 4 });
    const topic = `t.${randomUUID()}`;
    const channel = await admin.createChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(queue, exchange, `${topic}${DEAD_LETTER_SUFFIX}`);
    const attempts: number[] = [];
    await bus.subscribe(topic, 'g', () => {
      attempts.push(attempts.length + 1);
      throw new Error('always broken');
    });
    const sent = event(topic, { n: 1 });
    await bus.publish(sent);
    await waitFor(() => attempts.length === 4, 5000, 'four attempts');
    await bus.drain();
    let dead: Awaited<ReturnType<typeof channel.get>> = false;
    const poll = setInterval(async () => {
      if (dead === false) dead = await channel.get(queue, { noAck: true });
    }, 20);
    await waitFor(() => dead !== false, 5000, 'the dead letter').finally(() => clearInterval(poll));
    expect(attempts).toEqual([1, 2, 3, 4]);
    const message = dead as unknown as { content: Buffer; properties: { headers: Record<string, unknown> } };
    expect(message.properties.headers).toMatchObject({ 'x-group': 'g', 'x-error': 'always broken' });
    expect(JSON.parse(message.content.toString())).toMatchObject({
      id: sent.id,
      type: `${topic}${DEAD_LETTER_SUFFIX}`,
      data: { n: 1 },
    });
    await channel.close();
  });

  it('fails publish at once while the connection is down and resumes consumers once it is back', async () => {
    const proxy = await brokerProxy();
    try {
      const bus = await make({ url: proxy.url });
      const topic = `t.${randomUUID()}`;
      const seen: string[] = [];
      await bus.subscribe(topic, 'g', (e) => {
        seen.push(e.id);
      });
      const before = event(topic);
      await bus.publish(before);
      await waitFor(() => seen.length === 1, 5000, 'the first event');

      proxy.cut();
      await expect
        .poll(
          async () =>
            bus.publish(event(topic)).then(
              () => 'ok',
              (err) => err.code,
            ),
          { timeout: 5000 },
        )
        .toBe('UNAVAILABLE');
      const started = performance.now();
      await expect(bus.publish(event(topic))).rejects.toMatchObject({ code: 'UNAVAILABLE', retryable: true });
      expect(performance.now() - started).toBeLessThan(100);
      await expect(bus.ping()).rejects.toMatchObject({ code: 'UNAVAILABLE' });

      proxy.restore();
      await expect
        .poll(
          () =>
            bus.ping().then(
              () => true,
              () => false,
            ),
          { timeout: 10_000 },
        )
        .toBe(true);
      const after = event(topic);
      await bus.publish(after);
      await waitFor(() => seen.includes(after.id), 5000, 'the event after the reconnection');
      expect(seen).toEqual([before.id, after.id]);
    } finally {
      await proxy.close();
    }
  });

  it('requeues to another member the event of a member whose connection dropped before acking', async () => {
    const proxy = await brokerProxy();
    try {
      const dying = await make({
        url: proxy.url,
        reconnect: { initialDelayMs: 5000, maxDelayMs: 5000 },
        drainTimeoutMs: 300,
      });
      const survivor = await make();
      const topic = `t.${randomUUID()}`;
      const taken: string[] = [];
      const handled: string[] = [];
      await dying.subscribe(topic, 'g', (e) => {
        taken.push(e.id);
        return new Promise<void>(() => undefined); // never acks
      });
      const sent = event(topic);
      await dying.publish(sent);
      await waitFor(() => taken.length === 1, 5000, 'the dying member to take the event');
      await survivor.subscribe(topic, 'g', (e) => {
        handled.push(e.id);
      });
      expect(handled).toEqual([]);
      proxy.cut();
      await waitFor(() => handled.length === 1, 5000, 'the requeued event');
      expect(handled).toEqual([sent.id]);
    } finally {
      await proxy.close();
    }
  });

  it('rejects a subscription whose queue exists with other arguments, naming the broker reason', async () => {
    const bus = await make();
    const topic = `t.${randomUUID()}`;
    await (await bus.subscribe(topic, 'g', () => undefined)).close();
    const other = await make({ queueArguments: { 'x-expires': 60_000, 'x-max-length': 5 } });
    await expect(other.subscribe(topic, 'g', () => undefined)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringContaining('PRECONDITION_FAILED'),
    });
    // The bus stays usable: the failed consumer is not retried behind the caller's back.
    const seen: string[] = [];
    await other.subscribe(topic, 'h', (e) => {
      seen.push(e.id);
    });
    const sent = event(topic);
    await other.publish(sent);
    await waitFor(() => seen.length === 1, 5000, 'the event');
    expect(seen).toEqual([sent.id]);
  });

  it('rejects a topic that is not dot-separated words', async () => {
    const bus = await make();
    await expect(bus.publish(event('bad#topic'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(bus.subscribe('a.*', 'g', () => undefined)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('fails with UNAVAILABLE when RabbitMQ cannot be reached', async () => {
    await expect(
      createRabbitMqBus({ url: 'amqp://guest:guest@127.0.0.1:1', reconnect: { initialDelayMs: 10 } }),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});

describe('rabbitmq bus with a broker that stops answering', () => {
  it('closes a subscription within closeTimeoutMs rather than waiting for the broker forever', async () => {
    const proxy = await brokerProxy();
    try {
      const bus = await make({ url: proxy.url, closeTimeoutMs: 200 });
      const subscription = await bus.subscribe('qa.frozen', 'frozen', () => undefined);
      proxy.freeze();
      const started = Date.now();
      const closed = await Promise.race([
        subscription.close().then(() => true),
        new Promise<boolean>((resolve) => setTimeout(resolve, 5000, false)),
      ]);
      expect(closed).toBe(true);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await proxy.close();
    }
  });

  it('fails its readiness check (ping) while the broker does not answer', async () => {
    const proxy = await brokerProxy();
    try {
      const bus = await make({ url: proxy.url });
      await bus.ping();
      proxy.freeze();
      const answered = await Promise.race([
        bus.ping().then(
          () => 'ready',
          () => 'failed',
        ),
        new Promise<string>((resolve) => setTimeout(resolve, 1000, 'no answer')),
      ]);
      expect(answered).not.toBe('ready');
    } finally {
      await proxy.close();
    }
  });
});
