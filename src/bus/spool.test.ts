import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type RedisClientType } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import { ClawmeshError } from '../core/errors.ts';
import { createLogger, silentLogger } from '../observability/logger.ts';
import { startTcpProxy, waitFor } from './conformance.ts';
import { withPublishBuffer } from './outbox.ts';
import { createRedisStreamsBus } from './redis-streams.ts';
import { openEventSpool } from './spool.ts';
import type { Bus, BusEvent } from './types.ts';

const event = (n: number): BusEvent => ({
  id: randomUUID(),
  type: 'message.received',
  version: 1,
  time: new Date().toISOString(),
  data: { n },
});

const tempDir = () => mkdtempSync(join(tmpdir(), 'clawmesh-spool-'));
const linesOf = (path: string) =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
    : [];

/** A broker that refuses every event while `up` is false. */
function switchableBroker() {
  const sent: BusEvent[] = [];
  const state = { up: false };
  const bus: Bus = {
    kind: 'fake',
    async publish(e) {
      if (!state.up) throw new ClawmeshError('UNAVAILABLE', 'broker down');
      sent.push(e);
    },
    subscribe: async () => ({ close: async () => undefined }),
    drain: async () => undefined,
    close: async () => undefined,
  };
  return { bus, sent, state };
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('openEventSpool', () => {
  it('keeps appended events across a close, and a second holder in the same directory gets its own file', () => {
    const dir = tempDir();
    const first = openEventSpool(dir, 'clawmesh-conversation', silentLogger());
    expect(first?.path).toBe(join(dir, 'clawmesh-conversation.jsonl'));
    expect(first?.recovered).toEqual([]);
    const second = openEventSpool(dir, 'clawmesh-conversation', silentLogger());
    expect(second?.path).toBe(join(dir, 'clawmesh-conversation-2.jsonl'));
    const events = [event(1), event(2)];
    expect(first?.append(events)).toBe(true);
    first?.close(true);
    second?.close(false);
    expect(existsSync(join(dir, 'clawmesh-conversation-2.jsonl'))).toBe(false);

    const again = openEventSpool(dir, 'clawmesh-conversation', silentLogger());
    expect(again?.path).toBe(join(dir, 'clawmesh-conversation.jsonl'));
    expect(again?.recovered).toEqual(events);
    again?.clear();
    again?.close(true);
    expect(linesOf(join(dir, 'clawmesh-conversation.jsonl'))).toEqual([]);
  });

  it("takes over a dead process's file, leaves a live process's alone, and skips a line cut by a crash", () => {
    const dir = tempDir();
    const kept = event(7);
    writeFileSync(join(dir, 'roles.jsonl'), `${JSON.stringify(kept)}\n{"id":"cut mid-wri`);
    writeFileSync(join(dir, 'roles.jsonl.lock'), `${hostname()} 999999999\n`); // no such process
    writeFileSync(join(dir, 'roles-2.jsonl.lock'), `${hostname()} ${process.ppid}\n`); // alive: the parent
    // Another host's lock, recently touched: held; untouched for a minute: its holder is gone.
    writeFileSync(join(dir, 'roles-3.jsonl.lock'), 'elsewhere 1\n');
    writeFileSync(join(dir, 'roles-4.jsonl.lock'), 'elsewhere 1\n');
    const minuteAgo = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'roles-4.jsonl.lock'), minuteAgo, minuteAgo);
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: 'warn',
      destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
    });
    const spool = openEventSpool(dir, 'roles', logger);
    expect(spool?.path).toBe(join(dir, 'roles.jsonl'));
    expect(spool?.recovered).toEqual([kept]);
    expect(lines.some((l) => l.msg === 'skipped spool lines that are not events' && l.skipped === 1)).toBe(
      true,
    );
    expect(readFileSync(join(dir, 'roles.jsonl.lock'), 'utf8').trim()).toBe(`${hostname()} ${process.pid}`);
    const other = openEventSpool(dir, 'roles', silentLogger());
    expect(other?.path).toBe(join(dir, 'roles-4.jsonl'));
    spool?.close(false);
    other?.close(false);
    expect(existsSync(join(dir, 'roles.jsonl.lock'))).toBe(false);
  });

  it('falls back to memory with a warning when the directory cannot be made', () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'not a directory');
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: 'warn',
      destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
    });
    expect(openEventSpool(join(file, 'spool'), 'x', logger)).toBeUndefined();
    expect(String(lines[0]?.msg)).toContain('kept in memory only (set bus.spoolDir)');
  });
});

describe('withPublishBuffer with a spool', () => {
  it('writes nothing while the broker takes every event', async () => {
    const dir = tempDir();
    const broker = switchableBroker();
    broker.state.up = true;
    const spool = openEventSpool(dir, 'up', silentLogger());
    const bus = withPublishBuffer(broker.bus, { logger: silentLogger(), spool });
    for (let n = 0; n < 10; n++) await bus.publish(event(n));
    await bus.drain();
    expect(broker.sent).toHaveLength(10);
    expect(linesOf(join(dir, 'up.jsonl'))).toEqual([]);
    await bus.close();
    expect(existsSync(join(dir, 'up.jsonl'))).toBe(false);
  });

  it('keeps the events of a broker outage through a restart, sends them first, then empties the spool', async () => {
    const dir = tempDir();
    const down = switchableBroker();
    const before = Array.from({ length: 20 }, (_, n) => event(n));
    const first = withPublishBuffer(down.bus, {
      logger: silentLogger(),
      retryMs: 5,
      maxRetryMs: 20,
      drainTimeoutMs: 50,
      spool: openEventSpool(dir, 'clawmesh', silentLogger()),
    });
    for (const e of before.slice(0, 10)) await first.publish(e);
    await waitFor(() => linesOf(join(dir, 'clawmesh.jsonl')).length === 10, 2000, 'the spill');
    for (const e of before.slice(10)) await first.publish(e); // while spooling: written at once
    expect(linesOf(join(dir, 'clawmesh.jsonl'))).toHaveLength(20);
    await first.close();
    expect(first.dropped).toBe(0);

    const up = switchableBroker();
    up.state.up = true;
    const after = [event(100), event(101)];
    const second = withPublishBuffer(up.bus, {
      logger: silentLogger(),
      spool: openEventSpool(dir, 'clawmesh', silentLogger()),
    });
    for (const e of after) await second.publish(e);
    await second.drain();
    expect(up.sent.map((e) => e.id)).toEqual([...before, ...after].map((e) => e.id));
    expect(linesOf(join(dir, 'clawmesh.jsonl'))).toEqual([]);
    await second.close();
    expect(existsSync(join(dir, 'clawmesh.jsonl'))).toBe(false);
  });

  it('keeps the file bounded through a long outage: it holds what the buffer holds, and the newest go first after a restart', async () => {
    const dir = tempDir();
    const down = switchableBroker();
    const bus = withPublishBuffer(down.bus, {
      logger: silentLogger(),
      maxBuffered: 10,
      retryMs: 5,
      maxRetryMs: 20,
      drainTimeoutMs: 50,
      spool: openEventSpool(dir, 'long', silentLogger()),
    });
    const sent = Array.from({ length: 100 }, (_, n) => event(n));
    await bus.publish(sent[0]!);
    await waitFor(() => linesOf(join(dir, 'long.jsonl')).length === 1, 2000, 'the first spill');
    let largest = 0;
    for (const e of sent.slice(1)) {
      await bus.publish(e);
      largest = Math.max(largest, linesOf(join(dir, 'long.jsonl')).length);
    }
    expect(largest).toBeLessThanOrEqual(21);
    await bus.close();
    expect(bus.dropped).toBe(90);

    const up = switchableBroker();
    up.state.up = true;
    const next = withPublishBuffer(up.bus, {
      logger: silentLogger(),
      maxBuffered: 10,
      spool: openEventSpool(dir, 'long', silentLogger()),
    });
    await next.drain();
    expect(up.sent.map((e) => e.id)).toEqual(sent.slice(90).map((e) => e.id));
    await next.close();
  });

  it('keeps at close the events still waiting for their first try', async () => {
    const dir = tempDir();
    const stuck: Bus = {
      kind: 'stuck',
      publish: () => new Promise<void>(() => undefined),
      subscribe: async () => ({ close: async () => undefined }),
      drain: async () => undefined,
      close: async () => undefined,
    };
    const bus = withPublishBuffer(stuck, {
      logger: silentLogger(),
      sendTimeoutMs: 60_000,
      drainTimeoutMs: 50,
      spool: openEventSpool(dir, 'stuck', silentLogger()),
    });
    const sent = [event(1), event(2), event(3)];
    for (const e of sent) await bus.publish(e);
    await bus.close();
    expect(linesOf(join(dir, 'stuck.jsonl')).map((line) => JSON.parse(line).id)).toEqual(
      sent.map((e) => e.id),
    );
  });
});

describe('the spool over Redis Streams, with the publishing process killed', () => {
  const built = new URL('../../dist/src/bus/', import.meta.url).href;
  const target = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');

  it('delivers after a restart the events a process published while Redis was unreachable, then was killed with SIGKILL', async () => {
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 6379));
    cleanups.push(() => proxy.close());
    const dir = tempDir();
    const prefix = `clawmesh-test:${randomUUID()}:`;
    // The first process: connects through the proxy (open for its first connection), then the
    // proxy is cut and it publishes 25 events, says so, and waits to be killed.
    const script = `
      import { createClient } from 'redis';
      const { createRedisStreamsBus } = await import(${JSON.stringify(`${built}redis-streams.js`)});
      const { withPublishBuffer } = await import(${JSON.stringify(`${built}outbox.js`)});
      const { openEventSpool } = await import(${JSON.stringify(`${built}spool.js`)});
      const { silentLogger } = await import(${JSON.stringify(new URL('../../dist/src/observability/logger.js', import.meta.url).href)});
      const client = createClient({ url: 'redis://${proxy.address}', socket: { reconnectStrategy: () => 20 } });
      client.on('error', () => undefined);
      await client.connect();
      const inner = await createRedisStreamsBus({ client, prefix: ${JSON.stringify(prefix)}, logger: silentLogger() });
      const bus = withPublishBuffer(inner, { logger: silentLogger(), retryMs: 10, maxRetryMs: 50, sendTimeoutMs: 1000, spool: openEventSpool(${JSON.stringify(dir)}, 'clawmesh-conversation', silentLogger()) });
      process.stdout.write('connected\\n');
      process.stdin.once('data', async () => {
        for (let n = 0; n < 25; n++) await bus.publish({ id: 'e' + n, type: 'message.received', version: 1, time: new Date().toISOString(), data: { n } });
        process.stdout.write('published\\n');
      });
    `;
    const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    cleanups.push(() => void child.kill('SIGKILL'));
    let out = '';
    child.stdout?.on('data', (chunk) => {
      out += String(chunk);
    });
    await waitFor(() => out.includes('connected'), 10_000, 'the first process to connect');
    proxy.cut();
    child.stdin?.write('go\n');
    await waitFor(() => out.includes('published'), 10_000, 'the first process to publish');
    const spoolFile = join(dir, 'clawmesh-conversation.jsonl');
    await waitFor(() => linesOf(spoolFile).length === 25, 10_000, 'the events in the spool');
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));

    // The next process of the same roles, with Redis reachable: it sends what the first kept.
    const client = createClient({ url: target.toString() }) as RedisClientType;
    await client.connect();
    cleanups.push(async () => {
      const keys: string[] = [];
      for await (const batch of client.scanIterator({ MATCH: `${prefix}*` })) keys.push(...batch);
      if (keys.length > 0) await client.del(keys);
      await client.close();
    });
    const inner = await createRedisStreamsBus({ client, prefix, blockMs: 200, logger: silentLogger() });
    const seen: number[] = [];
    await inner.subscribe('message.received', 'audit', (e) => {
      seen.push((e.data as { n: number }).n);
    });
    const bus = withPublishBuffer(inner, {
      logger: silentLogger(),
      spool: openEventSpool(dir, 'clawmesh-conversation', silentLogger()),
    });
    cleanups.push(() => bus.close());
    await waitFor(() => seen.length >= 25, 10_000, 'the kept events');
    expect(seen).toEqual(Array.from({ length: 25 }, (_, n) => n));
    await waitFor(() => linesOf(spoolFile).length === 0, 5000, 'the spool to be emptied');
  });
});
