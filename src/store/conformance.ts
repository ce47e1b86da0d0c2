import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChatMessage } from '../core/messages.ts';
import type { ConversationStore, DedupeStore } from './types.ts';

/*
 * The conformance suites every store adapter runs unchanged. Ids and keys are unique per test,
 * so adapters whose tests share one server (Redis, PostgreSQL) can run them as they are.
 */

type Make<T> = () => Promise<T> | T;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves to what `promise` rejected with; fails the test if it resolved. */
async function rejection(
  promise: Promise<unknown>,
): Promise<{ code?: unknown; retryable?: unknown; details?: Record<string, unknown> }> {
  try {
    await promise;
  } catch (err) {
    return err as { code?: unknown; details?: Record<string, unknown> };
  }
  throw new Error('expected the call to reject');
}

const TURN: ChatMessage[] = [
  { role: 'user', content: 'What is the weather in Oslo?' },
  {
    role: 'assistant',
    content: '',
    toolCalls: [{ id: 'call_1', name: 'weather__current', arguments: '{"city":"Oslo"}' }],
  },
  { role: 'tool', content: '{"tempC":4}', toolCallId: 'call_1', name: 'weather__current' },
  { role: 'assistant', content: 'It is 4 °C in Oslo.' },
];

/**
 * Registers the conversation store conformance suite. `make` is called before each test and
 * the store it returns is closed after it.
 *
 * @example
 * describeConversationStore('memory', () => createMemoryConversationStore());
 */
export function describeConversationStore(name: string, make: Make<ConversationStore>): void {
  describe(`ConversationStore conformance: ${name}`, () => {
    let store: ConversationStore;
    beforeEach(async () => {
      store = await make();
    });
    afterEach(async () => {
      await store.close();
    });

    const create = (id = randomUUID()) =>
      store.ensure({ id, agentId: 'agent-a', channel: 'telegram', peer: 'u1' });
    const strip = ({ seq: _seq, at: _at, ...message }: { seq: number; at: number } & ChatMessage) => message;

    it('creates a conversation once and keeps the first record', async () => {
      const before = Date.now();
      const first = await create();
      expect(first).toMatchObject({ agentId: 'agent-a', channel: 'telegram', peer: 'u1', messageCount: 0 });
      expect(first.createdAt).toBeGreaterThanOrEqual(before);
      expect(first.updatedAt).toBe(first.createdAt);
      await sleep(5);
      const again = await store.ensure({ id: first.id, agentId: 'agent-b', channel: 'discord', peer: 'u2' });
      expect(again).toEqual(first);
      expect(await store.get(first.id)).toEqual(first);
    });

    it('returns undefined for an unknown conversation', async () => {
      expect(await store.get(randomUUID())).toBeUndefined();
      expect(await store.messages(randomUUID())).toEqual([]);
    });

    it('appends with increasing seq across calls, keeping order and every field', async () => {
      const { id } = await create();
      const before = Date.now();
      const first = await store.append(id, TURN.slice(0, 2));
      const second = await store.append(id, TURN.slice(2));
      expect([...first, ...second].map((m) => m.seq)).toEqual([1, 2, 3, 4]);
      for (const m of [...first, ...second]) expect(m.at).toBeGreaterThanOrEqual(before);
      expect([...first, ...second].map(strip)).toStrictEqual(TURN);
      const stored = await store.messages(id);
      expect(stored).toStrictEqual([...first, ...second]);
      expect(stored.map(strip)).toStrictEqual(TURN);
      const record = await store.get(id);
      expect(record?.messageCount).toBe(4);
      expect(record?.updatedAt).toBeGreaterThanOrEqual(before);
    });

    it('returns the newest messages oldest first when given a limit', async () => {
      const { id } = await create();
      await store.append(
        id,
        [1, 2, 3, 4, 5].map((n) => ({ role: 'user' as const, content: `m${n}` })),
      );
      expect((await store.messages(id, 2)).map((m) => [m.seq, m.content])).toEqual([
        [4, 'm4'],
        [5, 'm5'],
      ]);
      expect(await store.messages(id, 10)).toHaveLength(5);
      expect(await store.messages(id, 0)).toEqual([]);
    });

    it('rejects an append to an unknown conversation with NOT_FOUND', async () => {
      const err = await rejection(store.append(randomUUID(), [{ role: 'user', content: 'hi' }]));
      expect(err.code).toBe('NOT_FOUND');
    });

    it('rejects a write with a lower fence with CONFLICT and writes nothing', async () => {
      const { id } = await create();
      await store.append(id, [{ role: 'user', content: 'a' }], { fence: 5 });
      const err = await rejection(store.append(id, [{ role: 'user', content: 'stale' }], { fence: 4 }));
      expect(err.code).toBe('CONFLICT');
      expect((await store.messages(id)).map((m) => m.content)).toEqual(['a']);
      expect((await store.get(id))?.messageCount).toBe(1);
      await store.append(id, [{ role: 'user', content: 'b' }], { fence: 5 });
      await store.append(id, [{ role: 'user', content: 'c' }], { fence: 7 });
      expect((await rejection(store.append(id, [{ role: 'user', content: 'x' }], { fence: 6 }))).code).toBe(
        'CONFLICT',
      );
      await store.append(id, [{ role: 'user', content: 'd' }]);
      expect((await store.messages(id)).map((m) => [m.seq, m.content])).toEqual([
        [1, 'a'],
        [2, 'b'],
        [3, 'c'],
        [4, 'd'],
      ]);
    });

    it('lands 20 concurrent appends with distinct seqs 1..20', async () => {
      const { id } = await create();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.append(id, [{ role: 'user', content: `m${i}` }])),
      );
      const seqs = results.map((r) => r[0]!.seq).sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      const stored = await store.messages(id);
      expect(stored.map((m) => m.seq)).toEqual(seqs);
      for (const [m] of results) expect(stored[m!.seq - 1]?.content).toBe(m!.content);
      expect((await store.get(id))?.messageCount).toBe(20);
    });

    it('lists recent conversations by latest write, newest first', async () => {
      const [a, b, c] = [await create(), await create(), await create()];
      for (const { id } of [b, c, a]) {
        await sleep(5);
        await store.append(id, [{ role: 'user', content: 'hi' }]);
      }
      const top = await store.recent(2);
      expect(top).toHaveLength(2);
      expect(top[0]!.updatedAt).toBeGreaterThanOrEqual(top[1]!.updatedAt);
      const ours = new Set([a.id, b.id, c.id]);
      const order = (await store.recent(1000)).filter((r) => ours.has(r.id)).map((r) => r.id);
      expect(order).toEqual([a.id, c.id, b.id]);
    });

    it('answers ping while open', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    it('stores a turn once: a repeat of its turnId writes nothing and rejects with the first messages', async () => {
      const { id } = await create();
      await store.append(id, [{ role: 'user', content: 'before' }]);
      const first = await store.append(id, TURN, { turnId: 'turn-1', fence: 2 });
      await store.append(id, [{ role: 'user', content: 'after' }]);
      const err = await rejection(
        store.append(id, [{ role: 'user', content: 'again' }], { turnId: 'turn-1', fence: 2 }),
      );
      expect(err.code).toBe('CONFLICT');
      expect(err.retryable).toBe(false);
      expect(err.details).toMatchObject({
        reason: 'TURN_ALREADY_STORED',
        conversationId: id,
        turnId: 'turn-1',
      });
      expect(err.details?.messages).toStrictEqual(first);
      expect(first.map((m) => m.seq)).toEqual([2, 3, 4, 5]);
      const stored = await store.messages(id);
      expect(stored.map((m) => m.content)).toEqual(['before', ...TURN.map((m) => m.content), 'after']);
      expect(stored.slice(1, 5)).toStrictEqual(first);
      expect((await store.get(id))?.messageCount).toBe(6);
    });

    it('stores appends with different turnIds, and one turnId in different conversations', async () => {
      const [a, b] = [await create(), await create()];
      const one = await store.append(a.id, [{ role: 'user', content: 'one' }], { turnId: 'm1' });
      const two = await store.append(a.id, [{ role: 'user', content: 'two' }], { turnId: 'm2' });
      const other = await store.append(b.id, [{ role: 'user', content: 'elsewhere' }], { turnId: 'm1' });
      expect([one[0]!.seq, two[0]!.seq, other[0]!.seq]).toEqual([1, 2, 1]);
      expect((await store.messages(a.id)).map((m) => m.content)).toEqual(['one', 'two']);
      expect((await store.messages(b.id)).map((m) => m.content)).toEqual(['elsewhere']);
      const err = await rejection(store.append(b.id, [{ role: 'user', content: 'x' }], { turnId: 'm1' }));
      expect(err.details?.messages).toStrictEqual(other);
    });

    it('stores a turn once when appends of its turnId race', async () => {
      const { id } = await create();
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          store.append(
            id,
            [
              { role: 'user', content: `q${i}` },
              { role: 'assistant', content: `a${i}` },
            ],
            { turnId: 'raced' },
          ),
        ),
      );
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      expect(won).toHaveLength(1);
      expect(won[0]!.map((m) => m.seq)).toEqual([1, 2]);
      for (const r of results) {
        if (r.status === 'fulfilled') continue;
        expect(r.reason).toMatchObject({ code: 'CONFLICT', details: { reason: 'TURN_ALREADY_STORED' } });
        expect(r.reason.details.messages).toStrictEqual(won[0]);
      }
      expect(await store.messages(id)).toStrictEqual(won[0]);
      expect((await store.get(id))?.messageCount).toBe(2);
    });

    it('reports a stored turn before a stale fence, and remembers no turn it refused', async () => {
      const { id } = await create();
      const first = await store.append(id, [{ role: 'user', content: 'a' }], { fence: 5, turnId: 't1' });
      const duplicate = await rejection(
        store.append(id, [{ role: 'user', content: 'x' }], { fence: 3, turnId: 't1' }),
      );
      expect(duplicate.code).toBe('CONFLICT');
      expect(duplicate.details).toMatchObject({ reason: 'TURN_ALREADY_STORED', messages: first });
      const stale = await rejection(
        store.append(id, [{ role: 'user', content: 'y' }], { fence: 3, turnId: 't2' }),
      );
      expect(stale.code).toBe('CONFLICT');
      expect(stale.details).toMatchObject({ reason: 'STALE_FENCE', fence: 3, storedFence: 5 });
      const second = await store.append(id, [{ role: 'user', content: 'b' }], { fence: 5, turnId: 't2' });
      expect(second[0]!.seq).toBe(2);
      expect((await store.messages(id)).map((m) => m.content)).toEqual(['a', 'b']);
    });

    it('records no turn for an append without messages, and checks turnIds', async () => {
      const { id } = await create();
      expect(await store.append(id, [], { turnId: 'empty' })).toEqual([]);
      const stored = await store.append(id, [{ role: 'user', content: 'late' }], { turnId: 'empty' });
      expect(stored.map((m) => [m.seq, m.content])).toEqual([[1, 'late']]);
      const repeat = await rejection(store.append(id, [], { turnId: 'empty' }));
      expect(repeat.details).toMatchObject({ reason: 'TURN_ALREADY_STORED', messages: stored });
      const unknown = await rejection(
        store.append(randomUUID(), [{ role: 'user', content: 'x' }], { turnId: 'z' }),
      );
      expect(unknown.code).toBe('NOT_FOUND');
      for (const turnId of ['', 'x'.repeat(513), 42 as unknown as string]) {
        const err = await rejection(store.append(id, [{ role: 'user', content: 'bad' }], { turnId }));
        expect(err.code).toBe('INVALID_ARGUMENT');
      }
      expect((await store.messages(id)).map((m) => m.content)).toEqual(['late']);
    });
  });
}

/**
 * Registers the dedupe store conformance suite. `make` is called before each test and the
 * store it returns is closed after it.
 *
 * @example
 * describeDedupeStore('memory', () => createMemoryDedupeStore());
 */
export function describeDedupeStore(name: string, make: Make<DedupeStore>): void {
  describe(`DedupeStore conformance: ${name}`, () => {
    let store: DedupeStore;
    beforeEach(async () => {
      store = await make();
    });
    afterEach(async () => {
      await store.close();
    });

    it('claims a key once, then reports it pending, then done with the exact value', async () => {
      const key = randomUUID();
      const value = { reply: 'hello', parts: [1, 'two', { three: null }], ok: true };
      expect(await store.claim(key, 60_000)).toEqual({ state: 'claimed' });
      expect(await store.claim(key, 60_000)).toEqual({ state: 'pending' });
      await store.complete(key, value, 60_000);
      expect(await store.claim(key, 60_000)).toStrictEqual({ state: 'done', value });
      expect(await store.claim(key, 60_000)).toStrictEqual({ state: 'done', value });
    });

    it('makes a released key claimable again but keeps a completed one', async () => {
      const key = randomUUID();
      await store.claim(key, 60_000);
      await store.release(key);
      expect(await store.claim(key, 60_000)).toEqual({ state: 'claimed' });
      await store.complete(key, 'reply', 60_000);
      await store.release(key);
      expect(await store.claim(key, 60_000)).toEqual({ state: 'done', value: 'reply' });
    });

    it('makes a key claimable again once its TTL expires', async () => {
      const [pending, done] = [randomUUID(), randomUUID()];
      expect(await store.claim(pending, 50)).toEqual({ state: 'claimed' });
      expect(await store.claim(done, 50)).toEqual({ state: 'claimed' });
      await store.complete(done, { n: 1 }, 50);
      await sleep(120);
      expect(await store.claim(pending, 60_000)).toEqual({ state: 'claimed' });
      expect(await store.claim(done, 60_000)).toEqual({ state: 'claimed' });
      expect(await store.claim(pending, 60_000)).toEqual({ state: 'pending' });
    });

    it('keeps distinct keys independent', async () => {
      const [a, b] = [randomUUID(), randomUUID()];
      expect(await store.claim(a, 60_000)).toEqual({ state: 'claimed' });
      expect(await store.claim(b, 60_000)).toEqual({ state: 'claimed' });
      await store.complete(a, 1, 60_000);
      expect(await store.claim(b, 60_000)).toEqual({ state: 'pending' });
      await store.release(b);
      expect(await store.claim(a, 60_000)).toEqual({ state: 'done', value: 1 });
    });
  });
}
