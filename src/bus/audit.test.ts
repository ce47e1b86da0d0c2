import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Logger, silentLogger } from '../observability/logger.ts';
import { startAuditLog } from './audit.ts';
import { createEvent } from './events.ts';
import { createMemoryBus, DEAD_LETTER_SUFFIX } from './memory.ts';
import type { Bus, BusEvent } from './types.ts';

let dir: string;
let bus: Bus;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'clawmesh-audit-'));
  bus = createMemoryBus({ retryDelayMs: 1 });
});

afterEach(async () => {
  await bus.close();
  rmSync(dir, { recursive: true, force: true });
});

const skillEvent = (n: number) =>
  createEvent('skill.invoked', {
    conversationId: 'c1',
    skill: 'inventory',
    tool: `t${n}`,
    ok: true,
    durationMs: n,
  });

const modelEvent = (n: number) =>
  createEvent('model.completed', {
    model: 'local',
    inputTokens: n,
    outputTokens: n,
    latencyMs: 1,
    cached: false,
    fallbackUsed: false,
  });

const lines = (path: string): unknown[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));

describe('startAuditLog', () => {
  it('writes one JSON line per event, in publication order', async () => {
    const path = join(dir, 'audit.jsonl');
    const audit = await startAuditLog(bus, path);
    const sent: BusEvent[] = Array.from({ length: 50 }, (_, n) => (n % 2 ? skillEvent(n) : modelEvent(n)));
    for (const event of sent) await bus.publish(event);
    await bus.drain();
    const text = readFileSync(path, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n')).toHaveLength(51);
    expect(lines(path)).toEqual(sent);
    await audit.close();
  });

  it('creates the directory of the file', async () => {
    const path = join(dir, 'nested', 'deeper', 'audit.jsonl');
    const audit = await startAuditLog(bus, path);
    expect(statSync(join(dir, 'nested', 'deeper')).isDirectory()).toBe(true);
    await bus.publish(skillEvent(1));
    await bus.drain();
    expect(lines(path)).toHaveLength(1);
    await audit.close();
  });

  it('appends to an existing file', async () => {
    const path = join(dir, 'audit.jsonl');
    writeFileSync(path, '{"earlier":true}\n');
    const audit = await startAuditLog(bus, path);
    const sent = [skillEvent(1), skillEvent(2)];
    for (const event of sent) await bus.publish(event);
    await bus.drain();
    await audit.close();
    expect(lines(path)).toEqual([{ earlier: true }, ...sent]);
  });

  it('keeps appending across restarts of the log', async () => {
    const path = join(dir, 'audit.jsonl');
    const first = await startAuditLog(bus, path);
    await bus.publish(skillEvent(1));
    await bus.drain();
    await first.close();
    const second = await startAuditLog(bus, path);
    await bus.publish(skillEvent(2));
    await bus.drain();
    await second.close();
    expect(lines(path).map((event) => (event as BusEvent<{ tool: string }>).data.tool)).toEqual(['t1', 't2']);
  });

  it('leaves every handled event in the file on close() and writes nothing after it', async () => {
    const path = join(dir, 'audit.jsonl');
    const audit = await startAuditLog(bus, path);
    expect(audit.path).toBe(path);
    const sent = Array.from({ length: 10 }, (_, n) => skillEvent(n));
    for (const event of sent) await bus.publish(event);
    await bus.drain();
    await audit.close();
    expect(lines(path)).toEqual(sent);

    await bus.publish(skillEvent(99));
    await bus.drain();
    expect(lines(path)).toEqual(sent);
  });

  it('does not record dead-letter events', async () => {
    const path = join(dir, 'audit.jsonl');
    const audit = await startAuditLog(bus, path);
    await bus.subscribe('skill.invoked', 'failing', () => {
      throw new Error('always');
    });
    const event = skillEvent(1);
    await bus.publish(event);
    await bus.drain();
    await audit.close();
    expect(existsSync(path)).toBe(true);
    expect(lines(path)).toEqual([event]);
    expect(readFileSync(path, 'utf8')).not.toContain(DEAD_LETTER_SUFFIX);
  });
});

describe('startAuditLog on close', () => {
  it('writes the lines still pending when it is closed at once', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'audit-close-')), 'audit.jsonl');
    const bus = createMemoryBus();
    const audit = await startAuditLog(bus, path);
    let closing: Promise<void> | undefined;
    await bus.subscribe('*', 'closer', () => {
      closing ??= audit.close();
    });
    await bus.publish(
      createEvent('skill.invoked', { conversationId: 'c', skill: 's', tool: 't', ok: true, durationMs: 1 }),
    );
    await bus.drain();
    await closing;
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!).type).toBe('skill.invoked');
  });
});

describe('startAuditLog with a file it cannot write', () => {
  it('fails at start naming the file when it cannot be opened, rather than crashing after', async () => {
    // A directory where the file should be: EISDIR, as EACCES would be for a file owned by root.
    const path = join(dir, 'is-a-directory');
    mkdirSync(path);
    await expect(startAuditLog(bus, path)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringContaining(`the audit file ${path} cannot be opened: EISDIR`),
    });
  });

  it('fails the events it cannot write (retried, then dead-lettered) and keeps the process up', async () => {
    if (!existsSync('/dev/full')) return; // Linux: every write fails with ENOSPC, as on a full disk
    const errors: unknown[] = [];
    const logger = { ...silentLogger(), error: (obj: unknown) => errors.push(obj) } as unknown as Logger;
    const audit = await startAuditLog(bus, '/dev/full', logger);
    const dead: BusEvent[] = [];
    await bus.subscribe(`skill.invoked${DEAD_LETTER_SUFFIX}`, 'ops', (event) => {
      dead.push(event);
    });
    const event = skillEvent(1);
    await bus.publish(event);
    await bus.drain();
    await audit.close();
    expect(dead.map((e) => e.id)).toEqual([event.id]);
    expect(errors.length).toBeGreaterThan(0);
  });

  it('writes again once the file can be written, after a failed write (a disk full, then freed)', async () => {
    if (!existsSync('/dev/full')) return;
    // The audit path leads to /dev/full, then to a file whose last line a failed write cut short.
    const path = join(dir, 'audit.jsonl');
    const file = join(dir, 'real.jsonl');
    writeFileSync(file, '{"cut":');
    symlinkSync('/dev/full', path);
    const audit = await startAuditLog(bus, path);
    await bus.publish(skillEvent(1));
    await bus.drain();
    unlinkSync(path);
    symlinkSync(file, path);
    const later = [skillEvent(2), skillEvent(3)];
    for (const event of later) await bus.publish(event);
    await bus.drain();
    await audit.close();
    expect(readFileSync(file, 'utf8').split('\n')).toEqual([
      '{"cut":',
      ...later.map((event) => JSON.stringify(event)),
      '',
    ]);
  });
});
