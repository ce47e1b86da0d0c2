import { afterEach, describe, expect, it, vi } from 'vitest';
import { stringifyRemembering } from './json-memo.ts';

/** A context window as the conversation sends it: the same message objects, call after call. */
function history(turns: number): Record<string, unknown>[] {
  const messages: Record<string, unknown>[] = [{ role: 'system', content: 'You help.' }];
  for (let i = 0; i < turns; i++) {
    messages.push(
      { role: 'user', content: `question ${i}` },
      {
        role: 'assistant',
        content: '',
        toolCalls: [{ id: `call_${i}`, name: 'inventory__lookupStock', arguments: '{"item":"shirt"}' }],
      },
      { role: 'tool', content: '{"units":42}', toolCallId: `call_${i}`, name: 'inventory__lookupStock' },
      { role: 'assistant', content: `answer ${i} ✓ "quoted"\n` },
    );
  }
  return messages;
}

const tools = [{ name: 'inventory__lookupStock', description: 'stock', parameters: { type: 'object' } }];

describe('stringifyRemembering', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('writes what JSON.stringify writes, for values with and without long arrays', () => {
    const messages = history(5);
    const values: unknown[] = [
      undefined,
      null,
      'text',
      42,
      [1, 2, 3],
      { messages: messages.slice(0, 3) },
      { model: 'local', messages, tools, temperature: undefined, fn: () => 1 },
      { messages: [...messages, undefined, () => 1, Symbol('s'), Number.NaN, new Date(0), [1], null] },
      { ['quo"te']: messages, nested: { deep: messages } },
      Object.assign(Object.create(null) as object, { messages }),
      { messages, toJSON: () => 'own' },
      { messages: Object.assign([...messages], { extra: 1 }) },
    ];
    for (const value of values) {
      expect(stringifyRemembering(value)).toBe(JSON.stringify(value));
      expect(stringifyRemembering(value)).toBe(JSON.stringify(value));
    }
  });

  it('encodes each message once across calls that send it again', () => {
    const messages = history(10);
    stringifyRemembering({ messages, tools });
    const stringify = vi.spyOn(JSON, 'stringify');
    const added = { role: 'user', content: 'one more' };
    const request = { messages: [...messages, added], tools };
    const text = stringifyRemembering(request);
    const encoded = stringify.mock.calls.map(([value]) => value);
    stringify.mockRestore();
    expect(text).toBe(JSON.stringify(request));
    // The new message and the tools were encoded; neither the request whole nor the 41 messages seen before.
    expect(encoded).toContain(added);
    expect(encoded.filter((value) => value === request || messages.includes(value as never))).toEqual([]);
  });

  it('encodes afresh a message changed in place since it was encoded', () => {
    const messages = history(3);
    const first = stringifyRemembering({ messages });
    expect(first).toBe(JSON.stringify({ messages }));
    const assistant = messages[2] as { content: string; toolCalls: Record<string, unknown>[] };
    const changes: Array<() => void> = [
      () => {
        assistant.content = 'rewritten by a plugin';
      },
      () => {
        (assistant.toolCalls[0] as { arguments: string }).arguments = '{"item":"hat"}';
      },
      () => {
        assistant.toolCalls.push({ id: 'call_x', name: 'support__faq', arguments: '{}' });
      },
      () => {
        assistant.toolCalls = [{ id: 'call_y', name: 'support__faq', arguments: '{}' }];
      },
      () => {
        (messages[1] as Record<string, unknown>).name = 'added';
      },
      () => {
        delete (messages[3] as Record<string, unknown>).name;
      },
      () => {
        (messages[4] as Record<string, unknown>).content = Number.NaN;
      },
      () => {
        (messages[4] as Record<string, unknown>).content = { nested: true };
      },
      () => {
        (messages[5] as Record<string, unknown>).toJSON = () => 'replaced';
      },
      () => {
        Object.setPrototypeOf(messages[6] as object, { toJSON: () => 'inherited' });
      },
    ];
    for (const change of changes) {
      change();
      expect(stringifyRemembering({ messages })).toBe(JSON.stringify({ messages }));
    }
  });

  it('throws where JSON.stringify throws', () => {
    const messages: unknown[] = history(3);
    const cyclic = { messages };
    messages.push(cyclic);
    expect(() => stringifyRemembering(cyclic)).toThrow(TypeError);
    expect(() => stringifyRemembering({ messages: [...history(3), { n: 1n }] })).toThrow(TypeError);
  });
});
