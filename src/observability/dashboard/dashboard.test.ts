import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BusEvent } from '../../bus/types.ts';
import type { StoredMessage } from '../../store/types.ts';
import { readAuditTail } from './audit-tail.ts';
import { groupTurns } from './conversations.ts';
import { createServicesView } from './services.ts';
import { createUsageCounter } from './usage.ts';

const dir = mkdtempSync(join(tmpdir(), 'clawmesh-dashboard-'));
let files = 0;
const fileWith = (text: string) => {
  const path = join(dir, `audit-${files++}.jsonl`);
  writeFileSync(path, text);
  return path;
};
const line = (n: number, extra: Record<string, unknown> = {}) =>
  `${JSON.stringify({ id: `e${n}`, type: 'skill.invoked', time: new Date(n).toISOString(), data: { n }, ...extra })}\n`;

describe('readAuditTail', () => {
  it('returns the newest events first, reading backwards across chunk boundaries', async () => {
    const text = Array.from({ length: 200 }, (_, n) => line(n, { note: 'é…日本'.repeat(n % 7) })).join('');
    const path = fileWith(text);
    for (const chunkBytes of [7, 64, 1000, 1 << 20]) {
      const tail = await readAuditTail(path, 25, { chunkBytes });
      expect(tail.events.map((e) => e.id)).toEqual(Array.from({ length: 25 }, (_, i) => `e${199 - i}`));
      expect(tail.events[3]!.note).toBe('é…日本'.repeat(196 % 7));
      expect(tail.skipped).toBe(0);
    }
    const all = await readAuditTail(path, 1000, { chunkBytes: 13 });
    expect(all.events).toHaveLength(200);
    expect(all.events.at(-1)!.id).toBe('e0');
  });

  it('skips and counts malformed lines, lines that are not events and a line cut mid-write', async () => {
    const path = fileWith(
      `${line(1)}not json\n${line(2)}[1,2]\n{"id":"x"}\n\n${line(3)}{"id":"e4","type":"skill.inv`,
    );
    const tail = await readAuditTail(path, 10, { chunkBytes: 16 });
    expect(tail.events.map((e) => e.id)).toEqual(['e3', 'e2', 'e1']);
    expect(tail.skipped).toBe(4);
  });

  it('stops at the byte budget instead of reading a whole huge file', async () => {
    const path = fileWith(Array.from({ length: 1000 }, (_, n) => line(n)).join(''));
    const lineBytes = Buffer.byteLength(line(999));
    const tail = await readAuditTail(path, 1000, { chunkBytes: 256, maxBytes: lineBytes * 10 });
    expect(tail.events.length).toBeGreaterThanOrEqual(8);
    expect(tail.events.length).toBeLessThanOrEqual(11);
    expect(tail.events[0]!.id).toBe('e999');
  });

  it('reads a missing file as an empty tail', async () => {
    expect(await readAuditTail(join(dir, 'none.jsonl'), 5)).toEqual({
      events: [],
      skipped: 0,
      exists: false,
    });
  });
});

describe('groupTurns', () => {
  const at = 1_700_000_000_000;
  const stored = (messages: Omit<StoredMessage, 'seq' | 'at'>[]): StoredMessage[] =>
    messages.map((m, i) => ({ ...m, seq: i + 1, at: at + i }));

  it('puts tool calls with their results, failures named, and the reply in the turn of the user message', () => {
    const turns = groupTurns(
      stored([
        { role: 'user', content: 'stock of red shirts and blue hats?' },
        {
          role: 'assistant',
          content: '',
          toolCalls: [
            { id: 'a', name: 'inventory__lookupStock', arguments: '{"item":"red shirts"}' },
            { id: 'b', name: 'inventory__lookupStock', arguments: '{"item":' },
          ],
        },
        { role: 'tool', content: '{"units":42}', toolCallId: 'a', name: 'inventory__lookupStock' },
        {
          role: 'tool',
          content: '{"error":{"code":"INVALID_ARGUMENT","message":"item: required","retryable":false}}',
          toolCallId: 'b',
          name: 'inventory__lookupStock',
        },
        { role: 'assistant', content: '42 red shirts' },
        { role: 'user', content: 'thanks' },
        { role: 'assistant', content: 'you are welcome' },
      ]),
    );
    expect(turns).toHaveLength(2);
    expect(turns[0]).toMatchObject({
      seq: 1,
      at,
      user: 'stock of red shirts and blue hats?',
      steps: 2,
      reply: '42 red shirts',
    });
    expect(turns[0]!.toolCalls).toEqual([
      {
        id: 'a',
        name: 'inventory__lookupStock',
        skill: 'inventory',
        tool: 'lookupStock',
        arguments: { item: 'red shirts' },
        ok: true,
        result: { units: 42 },
      },
      {
        id: 'b',
        name: 'inventory__lookupStock',
        skill: 'inventory',
        tool: 'lookupStock',
        arguments: '{"item":',
        ok: false,
        error: 'INVALID_ARGUMENT: item: required',
      },
    ]);
    expect(turns[1]).toMatchObject({
      seq: 6,
      user: 'thanks',
      steps: 1,
      reply: 'you are welcome',
      toolCalls: [],
    });
  });

  it('starts a turn of its own for messages before the first user message (a cut history)', () => {
    const turns = groupTurns(
      stored([
        { role: 'tool', content: '{}', toolCallId: 'gone', name: 's__t' },
        { role: 'assistant', content: 'done' },
        { role: 'user', content: 'next' },
      ]),
    );
    expect(turns.map((t) => [t.seq, t.user, t.reply])).toEqual([
      [1, undefined, 'done'],
      [3, 'next', undefined],
    ]);
  });
});

describe('createUsageCounter', () => {
  let n = 0;
  const completed = (data: Record<string, unknown>, id = `m${n++}`): BusEvent => ({
    id,
    type: 'model.completed',
    version: 1,
    time: new Date(1_700_000_000_000 + n).toISOString(),
    data: { latencyMs: 10, cached: false, fallbackUsed: false, inputTokens: 0, outputTokens: 0, ...data },
  });

  it('sums requests, tokens and cost by model, leaving cached answers out of tokens and cost', () => {
    const usage = createUsageCounter();
    usage.record(
      completed({ model: 'openai/gpt', inputTokens: 100, outputTokens: 20, costUsd: 0.002, latencyMs: 30 }),
    );
    usage.record(
      completed({
        model: 'openai/gpt',
        inputTokens: 50,
        outputTokens: 5,
        costUsd: 0.001,
        fallbackUsed: true,
      }),
    );
    usage.record(
      completed({ model: 'openai/gpt', inputTokens: 50, outputTokens: 5, costUsd: 0.001, cached: true }),
    );
    usage.record(completed({ model: 'local/default', inputTokens: 7, outputTokens: 3 }));
    usage.record({ ...completed({ model: 'x' }), type: 'skill.invoked' });
    const view = usage.view();
    expect(view.models.map((m) => m.model)).toEqual(['openai/gpt', 'local/default']);
    expect(view.models[0]).toMatchObject({
      requests: 3,
      cached: 1,
      fallbacks: 1,
      inputTokens: 150,
      outputTokens: 25,
      priced: true,
    });
    expect(view.models[0]!.costUsd).toBeCloseTo(0.003, 10);
    expect(view.models[0]!.averageLatencyMs).toBeCloseTo(50 / 3, 10);
    expect(view.models[1]).toMatchObject({
      requests: 1,
      inputTokens: 7,
      outputTokens: 3,
      costUsd: 0,
      priced: false,
    });
    expect(view.totals).toMatchObject({ requests: 4, inputTokens: 157, outputTokens: 28 });
  });

  it('counts a redelivered event once and bounds the models it tracks', () => {
    const usage = createUsageCounter({ maxModels: 2 });
    const event = completed({ model: 'a', inputTokens: 5 });
    usage.record(event);
    usage.record(event);
    usage.record(completed({ model: 'b' }));
    usage.record(completed({ model: 'c', inputTokens: 1 }));
    usage.record(completed({ model: 'd', inputTokens: 2 }));
    const view = usage.view();
    expect(view.models.find((m) => m.model === 'a')).toMatchObject({ requests: 1, inputTokens: 5 });
    expect(view.models.find((m) => m.model === '(other models)')).toMatchObject({
      requests: 2,
      inputTokens: 3,
    });
    expect(view.models).toHaveLength(3);
  });
});

describe('createServicesView', () => {
  it('runs the checks each time, naming the one that fails or hangs, and reuses one discovery round', async () => {
    let rounds = 0;
    let storeUp = true;
    const view = createServicesView({
      process: { version: '1.2.3', roles: ['conversation'], transport: 'nats', instance: 'host-1' },
      checks: [
        {
          name: 'store',
          check: async () => (storeUp ? undefined : Promise.reject(new Error('connection refused'))),
        },
        { name: 'bus', check: () => new Promise<void>(() => undefined) },
      ],
      checkTimeoutMs: 50,
      discover: {
        kind: 'nats',
        instances: async () => {
          rounds++;
          return [
            {
              name: 'conversation',
              contract: 'conversation',
              id: 'abc',
              version: '1',
              description: '',
              metadata: { instance: 'vm-1-4f2a9c', hostname: 'vm-1', pid: '4242' },
              endpoints: [
                {
                  name: 'handle',
                  subject: 'p.conversation.handle',
                  requests: 3,
                  errors: 1,
                  lastError: '500:boom',
                  processingMs: 3,
                  averageMs: 1,
                },
                {
                  name: 'history',
                  subject: 'p.conversation.history',
                  requests: 2,
                  errors: 0,
                  processingMs: 2,
                  averageMs: 1,
                },
              ],
            },
          ];
        },
        localIds: () => ['abc'],
      },
    });
    const first = await view();
    expect(first.process).toMatchObject({ instance: 'host-1', status: 'not ready', roles: ['conversation'] });
    expect(first.process.checks.map((c) => [c.name, c.ok, c.error])).toEqual([
      ['store', true, undefined],
      ['bus', false, 'no answer within 50 ms'],
    ]);
    expect(first.discovery).toMatchObject({
      kind: 'nats',
      ok: true,
      instances: [
        {
          name: 'conversation',
          id: 'abc',
          process: 'vm-1-4f2a9c',
          host: 'vm-1:4242',
          local: true,
          requests: 5,
          errors: 1,
          lastError: '500:boom',
        },
      ],
    });
    storeUp = false;
    const second = await view();
    expect(second.process.checks[0]).toMatchObject({ name: 'store', ok: false, error: 'connection refused' });
    expect(rounds).toBe(1);
  });
});
