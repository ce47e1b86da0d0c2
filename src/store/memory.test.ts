import { describe, expect, it } from 'vitest';
import { describeConversationStore, describeDedupeStore } from './conformance.ts';
import { createStores } from './index.ts';
import { createMemoryConversationStore, createMemoryDedupeStore } from './memory.ts';

describeConversationStore('memory', () => createMemoryConversationStore());
describeDedupeStore('memory', () => createMemoryDedupeStore());

describe('memory dedupe store', () => {
  it('evicts the oldest keys past maxEntries', async () => {
    const dedupe = createMemoryDedupeStore({ maxEntries: 3 });
    for (const key of ['a', 'b', 'c', 'd'])
      expect(await dedupe.claim(key, 60_000)).toEqual({ state: 'claimed' });
    expect(await dedupe.claim('d', 60_000)).toEqual({ state: 'pending' });
    expect(await dedupe.claim('b', 60_000)).toEqual({ state: 'pending' });
    expect(await dedupe.claim('a', 60_000)).toEqual({ state: 'claimed' });
  });

  it('rejects a TTL that is not a positive number with INVALID_ARGUMENT', async () => {
    const dedupe = createMemoryDedupeStore();
    await expect(dedupe.claim('k', 0)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(dedupe.complete('k', 1, Number.NaN)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('memory conversation store', () => {
  it('returns copies that callers cannot use to change stored messages', async () => {
    const store = createMemoryConversationStore();
    await store.ensure({ id: 'c', agentId: 'a', channel: 'web', peer: 'p' });
    const [written] = await store.append('c', [{ role: 'user', content: 'original' }]);
    written!.content = 'changed';
    expect((await store.messages('c'))[0]?.content).toBe('original');
  });

  it('rejects calls after close with UNAVAILABLE', async () => {
    const store = createMemoryConversationStore();
    await store.close();
    await expect(store.ping()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});

describe('createStores (memory)', () => {
  it('creates both memory stores', async () => {
    const stores = createStores({ kind: 'memory' });
    expect([stores.conversations.kind, stores.dedupe.kind]).toEqual(['memory', 'memory']);
    await stores.close();
  });
});
