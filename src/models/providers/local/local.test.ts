import { describe, expect, it } from 'vitest';
import { createCallContext } from '../../../core/context.ts';
import type { ChatMessage, ToolSpec } from '../../../core/messages.ts';
import type { ProviderResponse } from '../../types.ts';
import { createLocalProvider } from './provider.ts';

function tool(name: string, description: string, properties: object, required: string[]): ToolSpec {
  return { name, description, parameters: { type: 'object', properties, required } };
}

const tools: ToolSpec[] = [
  tool('inventory__lookupStock', 'How many units of an item are in stock', { item: { type: 'string' } }, [
    'item',
  ]),
  tool('support__searchFaq', 'Search the support FAQ for an answer', { query: { type: 'string' } }, [
    'query',
  ]),
  tool(
    'support__openTicket',
    'Open a support ticket for a problem that the FAQ does not solve',
    { subject: { type: 'string' }, description: { type: 'string' } },
    ['subject'],
  ),
];

const orderTool = tool(
  'shop__placeOrder',
  'Order a quantity of a product',
  {
    product: { type: 'string' },
    quantity: { type: 'integer' },
    size: { type: 'string', enum: ['small', 'medium', 'large'] },
    express: { type: 'boolean' },
    note: { type: 'string' },
  },
  ['product', 'quantity'],
);

const provider = createLocalProvider();
const ctx = createCallContext();

function ask(text: string, toolList: ToolSpec[] = tools): Promise<ProviderResponse> {
  return provider.complete(
    { model: 'default', messages: [{ role: 'user', content: text }], tools: toolList },
    ctx,
  );
}

async function callOf(text: string, toolList: ToolSpec[] = tools): Promise<{ name: string; args: unknown }> {
  const response = await ask(text, toolList);
  expect(response.finishReason).toBe('tool_calls');
  expect(response.content).toBe('');
  expect(response.toolCalls).toHaveLength(1);
  const call = response.toolCalls[0]!;
  return { name: call.name, args: JSON.parse(call.arguments) };
}

describe('local provider', () => {
  it('calls lookupStock with the item for a stock question', async () => {
    expect(await callOf('how many red shirts are in stock?')).toEqual({
      name: 'inventory__lookupStock',
      args: { item: 'red shirts' },
    });
  });

  it('calls searchFaq with the query left after the matched words', async () => {
    expect(await callOf('search the faq for refund policy')).toEqual({
      name: 'support__searchFaq',
      args: { query: 'refund policy' },
    });
  });

  it('takes the text after a colon as the subject of a ticket', async () => {
    expect(await callOf('open a ticket: my order never arrived')).toEqual({
      name: 'support__openTicket',
      args: { subject: 'my order never arrived' },
    });
  });

  it('prefers quoted text for a string argument', async () => {
    const { args } = await callOf('Search the FAQ for "how do I return an item?"');
    expect(args).toEqual({ query: 'how do I return an item?' });
  });

  it('keeps the original casing and punctuation inside the extracted words', async () => {
    expect((await callOf('do we have any Blue T-Shirts in stock')).args).toEqual({ item: 'Blue T-Shirts' });
  });

  it('cuts trailing spaces and punctuation off a payload', async () => {
    expect((await callOf('open a ticket: my order never arrived ?!. ')).args).toEqual({
      subject: 'my order never arrived',
    });
  });

  it('reads arguments in linear time from text made to make a regular expression backtrack', async () => {
    // A run of spaces or punctuation inside a payload, or “ after “ with no ”: 64 KB took 6 s.
    for (const text of [
      `open a ticket: ${' '.repeat(200_000)}x`,
      `open a ticket: ${'. '.repeat(100_000)}x`,
      `search the faq ${'“a'.repeat(100_000)}`,
    ]) {
      const started = performance.now();
      await ask(text);
      expect(performance.now() - started, JSON.stringify(text.slice(0, 20))).toBeLessThan(500);
    }
  });

  it('fills numbers, enums and flags from the schema, and optional ones only when found', async () => {
    const call = await callOf('order 3 large Widget Pro express', [orderTool]);
    expect(call).toEqual({
      name: 'shop__placeOrder',
      args: { product: 'Widget Pro', quantity: 3, size: 'large', express: true },
    });
    const plain = await callOf('order 12 of the garden hoses', [orderTool]);
    expect(plain.args).toEqual({ product: 'garden hoses', quantity: 12 });
  });

  it('numbers its tool calls after the calls already in the conversation', async () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'how many hats are in stock?' },
      {
        role: 'assistant',
        content: '',
        toolCalls: [{ id: 'call_1', name: 'inventory__lookupStock', arguments: '{}' }],
      },
      { role: 'tool', content: '{"units":1}', toolCallId: 'call_1' },
      { role: 'assistant', content: 'There is 1.' },
      { role: 'user', content: 'and how many scarves are in stock?' },
    ];
    const response = await provider.complete({ model: 'default', messages, tools }, ctx);
    expect(response.toolCalls[0]?.id).toBe('call_2');
  });

  it('answers the same request the same way every time', async () => {
    const first = await ask('search the faq for refund policy');
    for (let i = 0; i < 5; i++) expect(await ask('search the faq for refund policy')).toEqual(first);
    const fresh = createLocalProvider();
    expect(
      await fresh.complete({ model: 'default', messages: [{ role: 'user', content: 'hmm, what now' }] }, ctx),
    ).toEqual(await ask('hmm, what now', []));
  });

  it('says how to configure a real model when no tool matches', async () => {
    const response = await ask('tell me a joke');
    expect(response.finishReason).toBe('stop');
    expect(response.toolCalls).toEqual([]);
    expect(response.content).toContain('OPENAI_API_KEY');
    expect(response.content).toContain('clawmesh.config.yaml');
    expect(response.content).toContain('tell me a joke');
  });

  it('is named local and greets back', async () => {
    expect([provider.name, provider.defaultModel]).toEqual(['local', 'default']);
    const response = await ask('hello!', []);
    expect(response.content).toMatch(/^Hello!/);
    expect(response.finishReason).toBe('stop');
  });

  it('summarizes tool results: summary, key-value pairs and failures', async () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'stock of hats and the refund faq' },
      {
        role: 'assistant',
        content: '',
        toolCalls: [
          { id: 'call_1', name: 'inventory__lookupStock', arguments: '{"item":"hats"}' },
          { id: 'call_2', name: 'support__searchFaq', arguments: '{"query":"refund"}' },
          { id: 'call_3', name: 'support__openTicket', arguments: '{}' },
        ],
      },
      { role: 'tool', toolCallId: 'call_1', content: '{"item":"hats","units":42,"colors":["red","blue"]}' },
      { role: 'tool', toolCallId: 'call_2', content: '{"summary":"Refunds take 5 days."}' },
      {
        role: 'tool',
        toolCallId: 'call_3',
        name: 'support__openTicket',
        content: '{"error":{"code":"INVALID_ARGUMENT","message":"subject is required"}}',
      },
    ];
    const response = await provider.complete({ model: 'default', messages, tools }, ctx);
    expect(response.finishReason).toBe('stop');
    expect(response.toolCalls).toEqual([]);
    expect(response.content).toBe(
      [
        '- lookupStock: item: hats, units: 42, colors: red, blue',
        '- Refunds take 5 days.',
        '- The tool openTicket failed: subject is required',
      ].join('\n'),
    );
  });

  it('uses a single result message as the whole answer', async () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'how many hats are in stock?' },
      {
        role: 'assistant',
        content: '',
        toolCalls: [{ id: 'call_1', name: 'inventory__lookupStock', arguments: '{}' }],
      },
      { role: 'tool', toolCallId: 'call_1', content: '{"message":"42 hats in stock"}' },
    ];
    expect((await provider.complete({ model: 'default', messages }, ctx)).content).toBe('42 hats in stock');
  });

  it('estimates usage as a token per four characters', async () => {
    const response = await ask('hi', []);
    expect(response.usage).toEqual({ inputTokens: 1, outputTokens: Math.ceil(response.content.length / 4) });
  });

  it('stops at maxTokens with finishReason length', async () => {
    const response = await provider.complete(
      { model: 'default', messages: [{ role: 'user', content: 'tell me a joke' }], maxTokens: 5 },
      ctx,
    );
    expect(response.finishReason).toBe('length');
    expect(response.content).toHaveLength(20);
  });

  it('stops before the first stop sequence', async () => {
    const plain = await provider.complete(
      { model: 'default', messages: [{ role: 'user', content: 'tell me a joke' }] },
      ctx,
    );
    const word = plain.content.split(' ')[2]!;
    const stopped = await provider.complete(
      { model: 'default', messages: [{ role: 'user', content: 'tell me a joke' }], stop: [word, 'zzz'] },
      ctx,
    );
    expect(stopped.content).toBe(plain.content.slice(0, plain.content.indexOf(word)));
    expect(stopped.finishReason).toBe('stop');
  });

  it('calls the tool a tool choice names, and some tool when one is required', async () => {
    const hello: ChatMessage[] = [{ role: 'user', content: 'hello there' }];
    const named = await provider.complete(
      { model: 'default', messages: hello, tools, toolChoice: { name: 'support__openTicket' } },
      ctx,
    );
    expect(named.toolCalls.map((call) => call.name)).toEqual(['support__openTicket']);
    const required = await provider.complete(
      { model: 'default', messages: hello, tools, toolChoice: 'required' },
      ctx,
    );
    expect(required.finishReason).toBe('tool_calls');
    expect(required.toolCalls).toHaveLength(1);
    const auto = await provider.complete(
      { model: 'default', messages: hello, tools, toolChoice: 'auto' },
      ctx,
    );
    expect(auto.toolCalls).toEqual([]);
  });

  it("refuses a response format it cannot honour, as the caller's invalid argument", async () => {
    for (const responseFormat of [
      { type: 'json_object' as const },
      { type: 'json_schema' as const, name: 'x', schema: { type: 'object' } },
    ]) {
      const err = await provider
        .complete({ model: 'default', messages: [{ role: 'user', content: 'hi' }], responseFormat }, ctx)
        .catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'INVALID_ARGUMENT',
        retryable: false,
        message: expect.stringContaining(responseFormat.type),
      });
    }
  });
});
