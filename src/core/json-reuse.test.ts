import { describe, expect, it } from 'vitest';
import { extendsArray, jsonText, rememberArray, reusableJson } from './json-reuse.ts';

const window = () => [
  { role: 'system', content: 'You are helpful.' },
  { role: 'user', content: 'how many "red" shirts?\n', parts: undefined },
];

describe('jsonText', () => {
  it('gives JSON.stringify’s text for values that are not marked', () => {
    for (const value of [undefined, null, 1, 'a\u2028b', [1, undefined], { a: 1, b: undefined, c: [2] }]) {
      expect(jsonText(value)).toBe(JSON.stringify(value));
    }
  });

  it('gives JSON.stringify’s text for a marked input and for the inputs that extend it', () => {
    const first = rememberArray(window());
    const tools = [{ name: 't', description: 'd', parameters: { type: 'object' } }];
    const input = reusableJson({ messages: first, model: undefined, tools });
    expect(jsonText(input)).toBe(JSON.stringify(input));
    const second = extendsArray(
      [...first, { role: 'assistant', content: '' }, { role: 'tool', content: 'x' }],
      first,
    );
    const next = reusableJson({ messages: second, tools });
    expect(jsonText(next)).toBe(JSON.stringify(next));
    const third = extendsArray([...second, { role: 'assistant', content: 'done' }], second);
    expect(jsonText(reusableJson({ messages: third }))).toBe(JSON.stringify({ messages: third }));
  });

  it('appends to the text of the array extended rather than encoding it again', () => {
    const first = rememberArray(window());
    jsonText(reusableJson({ messages: first }));
    // Changed in place after it was sent: the marked extension reuses the text sent.
    first[1]!.content = 'changed';
    const second = extendsArray([...first, { role: 'assistant', content: 'a' }], first);
    const text = jsonText(reusableJson({ messages: second }));
    expect(JSON.parse(text ?? '').messages[1].content).toBe('how many "red" shirts?\n');
    expect(JSON.parse(text ?? '').messages).toHaveLength(3);
  });

  it('encodes an array whole when it does not begin with its base', () => {
    const first = rememberArray(window());
    jsonText(reusableJson({ messages: first }));
    const other = extendsArray([{ role: 'user', content: 'other' }, ...first.slice(1)], first);
    expect(jsonText(reusableJson({ messages: other }))).toBe(JSON.stringify({ messages: other }));
  });

  it('extends an empty array', () => {
    const first = rememberArray<unknown>([]);
    jsonText(reusableJson({ messages: first }));
    const second = extendsArray([1, undefined], first);
    expect(jsonText(reusableJson({ messages: second }))).toBe('{"messages":[1,null]}');
  });
});
