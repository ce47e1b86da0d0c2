import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { createClient, type RedisClientType } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import { createCallContext } from '../core/context.ts';
import { ClawmeshError } from '../core/errors.ts';
import { createLogger, silentLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { startTcpProxy, waitFor } from './conformance.ts';
import { createMemoryBus } from './memory.ts';
import { withPublishBuffer } from './outbox.ts';
import { createEventPublisher } from './publisher.ts';
import { createRabbitMqBus } from './rabbitmq.ts';
import { createRedisStreamsBus } from './redis-streams.ts';
import type { Bus, BusEvent } from './types.ts';

const event = (type = 'message.received', data: unknown = {}): BusEvent => ({
  id: randomUUID(),
  type,
  version: 1,
  time: new Date().toISOString(),
  data,
});

/** A bus whose broker is `up`, `down` (refuses at once), or `stuck` (never answers). */
function fakeBroker() {
  const sent: BusEvent[] = [];
  const state = { mode: 'down' as 'up' | 'down' | 'stuck', tries: 0, closed: false };
  const bus: Bus = {
    kind: 'fake',
    async publish(e) {
      state.tries += 1;
      if (state.mode === 'down') throw new ClawmeshError('UNAVAILABLE', 'broker down');
      if (state.mode === 'stuck') return new Promise<void>(() => undefined);
      if (e.type === 'bad topic') throw new ClawmeshError('INVALID_ARGUMENT', 'bad topic');
      sent.push(e);
    },
    subscribe: async () => ({ close: async () => undefined }),
    drain: async () => undefined,
    close: async () => {
      state.closed = true;
    },
  };
  return { bus, sent, state };
}

function capturedLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
  });
  return { logger, lines };
}

describe('withPublishBuffer', () => {
  it('returns from publish at once while the broker is down, then delivers every event in order', async () => {
    const broker = fakeBroker();
    const { logger, lines } = capturedLogger();
    const bus = withPublishBuffer(broker.bus, { logger, retryMs: 5, maxRetryMs: 20 });
    const sent = Array.from({ length: 50 }, (_, n) => event('message.received', { n }));
    const started = performance.now();
    for (const e of sent) await expect(bus.publish(e)).resolves.toBeUndefined();
    expect(performance.now() - started).toBeLessThan(50);
    await waitFor(() => broker.state.tries >= 3 * 50, 5000, 'a few failed tries');
    expect(bus.buffered).toBe(50);
    expect(broker.sent).toEqual([]);

    broker.state.mode = 'up';
    await bus.drain();
    expect(bus.buffered).toBe(0);
    expect(bus.dropped).toBe(0);
    expect(broker.sent).toEqual(sent);
    expect(lines.some((l) => l.msg === 'cannot publish events yet: keeping them and retrying')).toBe(true);
    expect(lines.some((l) => l.msg === 'publishing events again')).toBe(true);
    await bus.close();
    expect(broker.state.closed).toBe(true);
  });

  it('drops only the oldest events once maxBuffered is reached, and counts and logs the drops', async () => {
    const broker = fakeBroker();
    const { logger, lines } = capturedLogger();
    const metrics = createMetrics({ defaultMetrics: false });
    // A long backoff: nothing is in flight when the later events come (drain() cuts it short).
    const bus = withPublishBuffer(broker.bus, { logger, metrics, maxBuffered: 3, retryMs: 60_000 });
    const sent = Array.from({ length: 5 }, (_, n) => event('skill.invoked', { n }));
    for (const e of sent.slice(0, 3)) await bus.publish(e);
    await waitFor(() => broker.state.tries >= 1, 5000, 'a failed try');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(bus.dropped).toBe(0);
    for (const e of sent.slice(3)) await bus.publish(e);
    expect(bus.buffered).toBe(3);
    expect(bus.dropped).toBe(2);
    const gauge = await metrics.registry.getSingleMetric('clawmesh_bus_buffered_events')!.get();
    expect(gauge.values[0]?.value).toBe(3);

    broker.state.mode = 'up';
    await bus.drain();
    expect(broker.sent.map((e) => (e.data as { n: number }).n)).toEqual([2, 3, 4]);
    const counted = (await metrics.eventsPublished.get()).values.find(
      (v) => v.labels.topic === 'skill.invoked' && v.labels.outcome === 'dropped',
    );
    expect(counted?.value).toBe(2);
    const full = lines.find((l) => l.msg === 'event buffer full: dropped the oldest events');
    expect(full).toMatchObject({ level: 50, maxBuffered: 3 });
    await bus.close();
  });

  it('drops nothing while the buffer has room, however long the broker is down', async () => {
    const broker = fakeBroker();
    const bus = withPublishBuffer(broker.bus, {
      logger: silentLogger(),
      maxBuffered: 100,
      retryMs: 1,
      maxRetryMs: 2,
    });
    for (let n = 0; n < 100; n += 1) await bus.publish(event('message.received', { n }));
    await waitFor(() => broker.state.tries >= 100 * 20, 5000, 'many failed tries');
    expect(bus.dropped).toBe(0);
    expect(bus.buffered).toBe(100);
    broker.state.mode = 'up';
    await bus.drain();
    expect(broker.sent).toHaveLength(100);
    await bus.close();
  });

  it('tries a send again when the broker does not answer within sendTimeoutMs', async () => {
    const broker = fakeBroker();
    broker.state.mode = 'stuck';
    const bus = withPublishBuffer(broker.bus, { logger: silentLogger(), sendTimeoutMs: 30, retryMs: 5 });
    const sent = event();
    await bus.publish(sent);
    await waitFor(() => broker.state.tries >= 2, 5000, 'a second try');
    broker.state.mode = 'up';
    await bus.drain();
    expect(broker.sent).toEqual([sent]);
  });

  it('drops an event the bus refuses as invalid instead of retrying it forever', async () => {
    const broker = fakeBroker();
    broker.state.mode = 'up';
    const { logger, lines } = capturedLogger();
    const bus = withPublishBuffer(broker.bus, { logger, retryMs: 5 });
    const traceId = randomUUID().replaceAll('-', '');
    await bus.publish({
      ...event('bad topic', { conversationId: 'c_dropped' }),
      traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
    });
    const good = event();
    await bus.publish(good);
    await bus.drain();
    expect(broker.sent).toEqual([good]);
    expect(broker.state.tries).toBe(2);
    expect(bus.dropped).toBe(1);
    // The line names the turn the event came from.
    expect(lines.find((l) => l.msg === 'the bus refused an event: dropped')).toMatchObject({
      topic: 'bad topic',
      traceId,
      conversationId: 'c_dropped',
    });
  });

  it("logs an event it could not publish with the publishing turn's request, trace and conversation", async () => {
    const { logger, lines } = capturedLogger();
    const refusing: Bus = { ...fakeBroker().bus, publish: async () => Promise.reject(new Error('no route')) };
    const ctx = createCallContext({ conversationId: 'c_refused' });
    createEventPublisher(refusing, logger).emit(
      'message.received',
      { conversationId: 'c_refused' } as never,
      ctx,
    );
    await waitFor(() => lines.length > 0, 2000);
    expect(lines[0]).toMatchObject({
      msg: 'could not publish event',
      topic: 'message.received',
      requestId: ctx.requestId,
      traceId: ctx.traceparent.slice(3, 35),
      spanId: ctx.traceparent.slice(36, 52),
      conversationId: 'c_refused',
    });
  });

  it('bounds drain() by drainTimeoutMs when the broker stays down, and close() reports the lost events', async () => {
    const broker = fakeBroker();
    const { logger, lines } = capturedLogger();
    const bus = withPublishBuffer(broker.bus, { logger, drainTimeoutMs: 100, retryMs: 5, maxRetryMs: 10 });
    await bus.publish(event());
    await bus.publish(event());
    const started = performance.now();
    await bus.drain();
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(95);
    expect(elapsed).toBeLessThan(1000);
    expect(bus.buffered).toBe(2);
    await bus.close();
    expect(lines.find((l) => l.msg?.toString().includes('could not be published'))).toMatchObject({
      lost: 2,
    });
    expect(bus.dropped).toBe(2);
    await bus.publish(event());
    expect(bus.dropped).toBe(3);
  });

  it('waits drainTimeoutMs once at shutdown with the broker down: close() after a timed-out drain does not wait again', async () => {
    const broker = fakeBroker();
    const { logger, lines } = capturedLogger();
    const bus = withPublishBuffer(broker.bus, { logger, drainTimeoutMs: 300, retryMs: 5, maxRetryMs: 10 });
    await bus.publish(event());
    const started = performance.now();
    await bus.drain(); // the runtime drains before closing the audit log, then closes the bus
    await bus.close();
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(295);
    expect(elapsed).toBeLessThan(590);
    expect(lines.filter((l) => String(l.msg).includes('still buffered'))).toHaveLength(1);
    expect(lines.find((l) => String(l.msg).includes('could not be published'))).toMatchObject({ lost: 1 });
  });

  it('drains again when an event was published after a drain', async () => {
    const broker = fakeBroker();
    const { logger, lines } = capturedLogger();
    const bus = withPublishBuffer(broker.bus, { logger, drainTimeoutMs: 150, retryMs: 5, maxRetryMs: 10 });
    await bus.publish(event());
    await bus.drain();
    await bus.publish(event());
    broker.state.mode = 'up';
    await bus.close();
    expect(broker.sent).toHaveLength(2);
    expect(lines.filter((l) => String(l.msg).includes('still buffered'))).toHaveLength(1);
    expect(bus.dropped).toBe(0);
  });

  it('keeps the memory bus behaviour: subscribers get events and drain waits for them', async () => {
    const bus = withPublishBuffer(createMemoryBus(), { logger: silentLogger() });
    const seen: number[] = [];
    await bus.subscribe('message.received', 'g', async (e) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      seen.push((e.data as { n: number }).n);
    });
    for (let n = 0; n < 5; n += 1) await bus.publish(event('message.received', { n }));
    await bus.drain();
    expect(seen.sort()).toEqual([0, 1, 2, 3, 4]);
    await bus.close();
  });
});

describe('withPublishBuffer over real brokers that go away and come back', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it('delivers over RabbitMQ the events published while the connection was down', async () => {
    const target = new URL(process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5672));
    cleanups.push(() => proxy.close());
    const exchange = `clawmesh-test.${randomUUID()}`;
    const inner = await createRabbitMqBus({
      url: `amqp://${target.username}:${target.password}@${proxy.address}`,
      exchange,
      queueArguments: { 'x-expires': 60_000 },
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
      logger: silentLogger(),
    });
    const bus = withPublishBuffer(inner, {
      logger: silentLogger(),
      retryMs: 10,
      maxRetryMs: 50,
      drainTimeoutMs: 10_000,
    });
    cleanups.push(async () => {
      await bus.close();
      const admin = await connect(target.toString());
      await (await admin.createChannel()).deleteExchange(exchange).catch(() => undefined);
      await admin.close();
    });
    const seen: string[] = [];
    await bus.subscribe('message.received', 'g', (e) => {
      seen.push(e.id);
    });

    proxy.cut();
    await expect
      .poll(
        () =>
          inner.ping().then(
            () => 'up',
            () => 'down',
          ),
        { timeout: 5000 },
      )
      .toBe('down');
    const sent = Array.from({ length: 5 }, (_, n) => event('message.received', { n }));
    for (const e of sent) await bus.publish(e);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(bus.buffered).toBe(5);
    expect(seen).toEqual([]);

    proxy.restore();
    await waitFor(() => seen.length >= sent.length, 10_000, 'the buffered events');
    await bus.drain();
    expect(seen).toEqual(sent.map((e) => e.id));
    expect(bus.dropped).toBe(0);
  });

  it('delivers over Redis Streams the events published while Redis was unreachable', async () => {
    const target = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 6379));
    cleanups.push(() => proxy.close());
    const prefix = `clawmesh-test:${randomUUID()}:`;
    const client = createClient({
      url: `redis://${proxy.address}`,
      socket: { reconnectStrategy: () => 20 },
    }) as RedisClientType;
    client.on('error', () => undefined);
    await client.connect();
    const inner = await createRedisStreamsBus({ client, prefix, blockMs: 200, logger: silentLogger() });
    const bus = withPublishBuffer(inner, {
      logger: silentLogger(),
      retryMs: 10,
      maxRetryMs: 50,
      drainTimeoutMs: 10_000,
    });
    cleanups.push(async () => {
      await bus.close();
      const direct = createClient({ url: target.toString() });
      await direct.connect();
      const keys: string[] = [];
      for await (const batch of direct.scanIterator({ MATCH: `${prefix}*` })) keys.push(...batch);
      if (keys.length > 0) await direct.del(keys);
      await direct.close();
      client.destroy();
    });
    const seen: string[] = [];
    await bus.subscribe('skill.invoked', 'g', (e) => {
      seen.push(e.id);
    });

    proxy.cut();
    await waitFor(() => !client.isReady, 5000, 'the client to notice');
    const sent = Array.from({ length: 5 }, (_, n) => event('skill.invoked', { n }));
    for (const e of sent) await bus.publish(e);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(bus.buffered).toBe(5);

    proxy.restore();
    await waitFor(() => seen.length >= sent.length, 10_000, 'the buffered events');
    await bus.drain();
    expect([...seen].sort()).toEqual(sent.map((e) => e.id).sort());
    expect(bus.dropped).toBe(0);
  });
});
