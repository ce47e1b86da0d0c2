import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../../core/messages.ts';
import { createMemoryConversationStore } from '../../../store/memory.ts';
import type { ConversationStore } from '../../../store/types.ts';
import { createMemoryTranscript, createStoreTranscript, entriesOf } from './transcript.ts';

const turn = (question: string, answer: string, failing = false): ChatMessage[] => [
  { role: 'user', content: question },
  {
    role: 'assistant',
    content: '',
    toolCalls: [{ id: 'call_1', name: 'inventory__lookupStock', arguments: '{"item":"hats"}' }],
  },
  {
    role: 'tool',
    toolCallId: 'call_1',
    name: 'inventory__lookupStock',
    content: failing
      ? JSON.stringify({ error: { code: 'UNAVAILABLE', message: 'down', retryable: true } })
      : '{"item":"hats","units":3}',
  },
  { role: 'assistant', content: answer },
];

async function storeWith(id: string, turns: ChatMessage[][]): Promise<ConversationStore> {
  const store = createMemoryConversationStore();
  await store.ensure({ id, agentId: 'default', channel: 'webchat', peer: 'web-1' });
  for (const messages of turns) await store.append(id, messages);
  return store;
}

describe('web chat transcript', () => {
  it('turns stored messages into user messages and final replies with their tool calls', async () => {
    const store = await storeWith('c1', [turn('hats?', '3 hats'), turn('caps?', 'no idea', true)]);
    expect(entriesOf(await store.messages('c1'))).toEqual([
      { seq: 1, role: 'user', text: 'hats?', toolCalls: [] },
      {
        seq: 4,
        role: 'assistant',
        text: '3 hats',
        toolCalls: [{ skill: 'inventory', tool: 'lookupStock', arguments: { item: 'hats' }, ok: true }],
      },
      { seq: 5, role: 'user', text: 'caps?', toolCalls: [] },
      {
        seq: 8,
        role: 'assistant',
        text: 'no idea',
        toolCalls: [{ skill: 'inventory', tool: 'lookupStock', arguments: { item: 'hats' }, ok: false }],
      },
    ]);
  });

  it('replays a reply with what the model said before calling tools, as the turn streamed it', async () => {
    const messages = turn('hats?', 'There are 3 hats.');
    messages[1]!.content = 'Let me check the stock.';
    const store = await storeWith('c3', [messages]);
    expect(entriesOf(await store.messages('c3'))[1]).toMatchObject({
      role: 'assistant',
      text: 'Let me check the stock.\n\nThere are 3 hats.',
    });
  });

  it('reads what came after a seq, and says when the limit cut older messages', async () => {
    const transcript = createStoreTranscript(
      await storeWith('c2', [turn('a', 'A'), turn('b', 'B'), turn('c', 'C')]),
    );
    const after = await transcript.since('c2', 4, 500);
    expect(after.entries.map((e) => e.seq)).toEqual([5, 8, 9, 12]);
    expect(after).toMatchObject({ latestSeq: 12, truncated: false });
    const cut = await transcript.since('c2', 0, 4);
    expect(cut.entries.map((e) => e.text)).toEqual(['c', 'C']);
    expect(cut.truncated).toBe(true);
    expect(await transcript.since('c2', 12, 500)).toEqual({ entries: [], latestSeq: 12, truncated: false });
  });

  it('leaves no gap when a turn is stored between reading the count and the messages', async () => {
    const inner = await storeWith('c3', [turn('a', 'A')]);
    let raced = false;
    const racing: ConversationStore = {
      ...inner,
      get: (id) => inner.get(id),
      async messages(id, limit) {
        if (!raced) {
          raced = true;
          await inner.append(id, turn('b', 'B'));
        }
        return inner.messages(id, limit);
      },
    };
    const page = await createStoreTranscript(racing).since('c3', 0, 500);
    expect(page.entries.map((e) => [e.seq, e.text])).toEqual([
      [1, 'a'],
      [4, 'A'],
      [5, 'b'],
      [8, 'B'],
    ]);
    expect(page.latestSeq).toBe(8);
  });

  it('settles a turn at the seqs the store gave its user message and reply', async () => {
    const store = await storeWith('c4', [turn('a', 'A')]);
    const transcript = createStoreTranscript(store);
    const mark = await transcript.mark('c4');
    await store.append('c4', turn('b', 'B'));
    const reply = { conversationId: 'c4', text: 'B', toolCalls: [] };
    expect(await transcript.settle('c4', mark, { text: 'b', reply })).toEqual({ userSeq: 5, seq: 8 });
    expect(await transcript.settle('c4', 8, { text: 'b', reply })).toBeUndefined();
  });

  it('keeps a bounded memory transcript with its own seqs', async () => {
    const transcript = createMemoryTranscript({ perConversation: 4, conversations: 2 });
    const reply = (text: string) => ({ conversationId: 'm', text, toolCalls: [] });
    for (const n of [1, 2, 3]) {
      expect(await transcript.settle('m', 0, { text: `q${n}`, reply: reply(`a${n}`) })).toEqual({
        userSeq: 2 * n - 1,
        seq: 2 * n,
      });
    }
    const all = await transcript.since('m', 0, 100);
    expect(all.entries.map((e) => e.seq)).toEqual([3, 4, 5, 6]);
    expect(all).toMatchObject({ latestSeq: 6, truncated: true });
    expect((await transcript.since('m', 2, 100)).truncated).toBe(false);
    expect(
      await transcript.settle('m', 0, { text: 'x', reply: { ...reply(''), dropped: true } }),
    ).toBeUndefined();
    for (const other of ['o1', 'o2', 'o3'])
      await transcript.settle(other, 0, { text: 'q', reply: reply('a') });
    expect(await transcript.mark('m')).toBe(0);
  });
});
