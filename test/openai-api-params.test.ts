import OpenAI, { BadRequestError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';
import { useOpenAIApiHarness } from './support/openai-api-harness.ts';

const stockTool = {
  type: 'function' as const,
  function: {
    name: 'lookupStock',
    description: 'How many units of an item are in stock',
    parameters: { type: 'object', properties: { item: { type: 'string' } }, required: ['item'] },
  },
};

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

const personSchema = {
  type: 'object',
  properties: { name: { type: 'string' } },
  required: ['name'],
  additionalProperties: false,
};

/**
 * Request parameters that change what the model must answer (`tool_choice`,
 * `parallel_tool_calls`, `stop`, `response_format`): sent through the official client, they
 * reach an OpenAI-compatible upstream as they are and the Messages API mapped.
 */
describe('the OpenAI-compatible API: parameters that shape the answer', () => {
  const h = useOpenAIApiHarness({
    models: { cache: { enabled: true }, resilience: { retries: { max: 0 } } },
  });

  const lastOpenAI = () => h.lastOpenAI<Record<string, unknown>>();
  const lastAnthropic = () => h.lastAnthropic<Record<string, unknown>>();

  it('passes tool_choice, parallel_tool_calls, stop, response_format, top_p, seed and the penalties to an OpenAI-compatible upstream', async () => {
    await h.client.chat.completions.create({
      model: 'openai/gpt-test',
      messages: [{ role: 'user', content: 'stock of hats?' }],
      tools: [stockTool, weatherTool],
      tool_choice: { type: 'function', function: { name: 'lookupStock' } },
      parallel_tool_calls: false,
      stop: 'END',
      response_format: { type: 'json_object' },
      top_p: 0.3,
      seed: 42,
      frequency_penalty: 0.4,
      presence_penalty: -0.6,
    });
    expect(lastOpenAI()).toMatchObject({
      top_p: 0.3,
      seed: 42,
      frequency_penalty: 0.4,
      presence_penalty: -0.6,
      tool_choice: { type: 'function', function: { name: 'lookupStock' } },
      parallel_tool_calls: false,
      stop: ['END'],
      response_format: { type: 'json_object' },
    });

    await h.client.chat.completions.create({
      model: 'openai/gpt-test',
      messages: [{ role: 'user', content: 'who?' }],
      tools: [stockTool],
      tool_choice: 'required',
      stop: ['a', 'b'],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'person', schema: personSchema, strict: true },
      },
    });
    expect(lastOpenAI()).toMatchObject({
      tool_choice: 'required',
      stop: ['a', 'b'],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'person', schema: personSchema, strict: true },
      },
    });
    expect(lastOpenAI()).not.toHaveProperty('parallel_tool_calls');
  });

  it('keeps the tools with tool_choice none, which a history of tool calls needs on Anthropic', async () => {
    const history: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'user', content: 'stock of hats?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'lookupStock', arguments: '{"item":"hats"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '{"units":3}' },
    ];
    await h.client.chat.completions.create({
      model: 'openai/gpt-test',
      messages: history,
      tools: [stockTool],
      tool_choice: 'none',
    });
    expect(lastOpenAI()).toMatchObject({
      tools: [{ function: { name: 'lookupStock' } }],
      tool_choice: 'none',
    });

    await h.client.chat.completions.create({
      model: 'anthropic/claude-test',
      messages: history,
      tools: [stockTool],
      tool_choice: 'none',
    });
    expect(lastAnthropic()).toMatchObject({
      tools: [{ name: 'lookupStock' }],
      tool_choice: { type: 'none' },
    });

    const local = await h.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'how many hats are in stock?' }],
      tools: [stockTool],
      tool_choice: 'none',
    });
    expect(local.choices[0]!.message.tool_calls).toBeUndefined();
  });

  it('maps them onto the Messages API for anthropic', async () => {
    await h.client.chat.completions.create({
      model: 'anthropic/claude-test',
      messages: [{ role: 'user', content: 'hats?' }],
      tools: [stockTool, weatherTool],
      tool_choice: 'required',
      parallel_tool_calls: false,
      stop: ['END', 'STOP'],
    });
    expect(lastAnthropic()).toMatchObject({
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      stop_sequences: ['END', 'STOP'],
    });

    await h.client.chat.completions.create({
      model: 'anthropic/claude-test',
      messages: [{ role: 'user', content: 'hats?' }],
      tools: [stockTool, weatherTool],
      tool_choice: { type: 'function', function: { name: 'weather' } },
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema: personSchema } },
    });
    expect(lastAnthropic()).toMatchObject({
      tool_choice: { type: 'tool', name: 'weather' },
      output_config: { format: { type: 'json_schema', schema: personSchema } },
    });
    expect(lastAnthropic()).not.toHaveProperty('stop_sequences');

    await h.client.chat.completions.create({
      model: 'anthropic/claude-test',
      messages: [{ role: 'user', content: 'hats?' }],
      tools: [stockTool],
      parallel_tool_calls: false,
    });
    expect(lastAnthropic()).toMatchObject({ tool_choice: { type: 'auto', disable_parallel_tool_use: true } });
  });

  it('refuses response_format json_object for anthropic with a 400 naming it, calling nobody', async () => {
    const err = await h.client.chat.completions
      .create({
        model: 'anthropic/claude-test',
        messages: [{ role: 'user', content: 'a person, as JSON' }],
        response_format: { type: 'json_object' },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as BadRequestError).message).toMatch(/json_object is not supported/);
    expect((err as BadRequestError).param).toBe('response_format');
    expect(h.anthropic.requests).toHaveLength(0);
  });

  it('refuses a tool_choice naming a function that is not in tools, or any tool call without tools', async () => {
    for (const body of [
      { tools: [stockTool], tool_choice: { type: 'function', function: { name: 'nope' } } },
      { tool_choice: 'required' },
    ]) {
      const err = await h.client.chat.completions
        .create({
          model: 'openai/gpt-test',
          messages: [{ role: 'user', content: 'hi' }],
          ...body,
        } as OpenAI.ChatCompletionCreateParamsNonStreaming)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as BadRequestError).param).toBe('tool_choice');
    }
    expect(h.openai.requests).toHaveLength(0);
  });

  it('never answers a request from the cache of one that differs only in these parameters', async () => {
    const ask = (extra: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming>) =>
      h.client.chat.completions.create({
        model: 'openai/gpt-test',
        messages: [{ role: 'user', content: 'the same question' }],
        tools: [stockTool, weatherTool],
        ...extra,
      });
    await ask({});
    await ask({});
    expect(h.openai.requests).toHaveLength(1);
    await ask({ stop: ['x'] });
    await ask({ response_format: { type: 'json_object' } });
    await ask({ tool_choice: 'required' });
    await ask({ tool_choice: { type: 'function', function: { name: 'weather' } } });
    await ask({ parallel_tool_calls: false });
    await ask({ top_p: 0.5 });
    await ask({ seed: 1 });
    await ask({ frequency_penalty: 1 });
    await ask({ presence_penalty: 1 });
    expect(h.openai.requests).toHaveLength(10);
  });
});

describe('the OpenAI-compatible API: what it cannot answer', () => {
  let t: TestApp;
  let client: OpenAI;
  beforeAll(async () => {
    t = await startTestApp({}, {}, {});
    client = new OpenAI({ apiKey: 'unused', baseURL: `${t.url}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await t.stop();
  });

  it('refuses logprobs with a 400 rather than answering logprobs: null', async () => {
    for (const [extra, param] of [
      [{ logprobs: true }, 'logprobs'],
      [{ logprobs: true, top_logprobs: 3 }, 'logprobs'],
      [{ top_logprobs: 2 }, 'top_logprobs'],
    ] as const) {
      const err = await client.chat.completions
        .create({ model: 'local', messages: [{ role: 'user', content: 'hi' }], ...extra })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as BadRequestError).param).toBe(param);
    }
    // Asking for none is fine, as clients that always send the field do.
    const answer = await client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'hi' }],
      logprobs: false,
      top_logprobs: 0,
    });
    expect(answer.choices[0]!.logprobs).toBeNull();
  });

  it('refuses stream_options without stream, as OpenAI does, and takes it with a stream', async () => {
    const err = await client.chat.completions
      .create({
        model: 'local',
        messages: [{ role: 'user', content: 'hi' }],
        stream_options: { include_usage: true },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as BadRequestError).param).toBe('stream_options');
    expect((err as BadRequestError).message).toContain("only allowed when 'stream' is enabled");
    const stream = await client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: unknown;
    for await (const chunk of stream) usage ??= chunk.usage ?? undefined;
    expect(usage).toMatchObject({ total_tokens: expect.any(Number) });
  });
});

describe('the OpenAI-compatible API: tool results', () => {
  let t: TestApp;
  let client: OpenAI;
  beforeAll(async () => {
    t = await startTestApp({}, {}, {});
    client = new OpenAI({ apiKey: 'unused', baseURL: `${t.url}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await t.stop();
  });

  it('refuses a tool message that answers no earlier tool call, as OpenAI does', async () => {
    const err = await client.chat.completions
      .create({
        model: 'local',
        messages: [
          { role: 'user', content: 'hats?' },
          { role: 'tool', tool_call_id: 'call_unknown', content: '{"units":3}' },
        ],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as BadRequestError).param).toBe('messages.1.tool_call_id');
    expect((err as BadRequestError).message).toContain('call_unknown');

    const answer = await client.chat.completions.create({
      model: 'local',
      messages: [
        { role: 'user', content: 'hats?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'lookupStock', arguments: '{}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '{"units":3}' },
      ],
    });
    expect(answer.choices[0]!.finish_reason).toBe('stop');
  });

  it('refuses an assistant tool call left without its result, as OpenAI does', async () => {
    const call = (id: string) => ({
      id,
      type: 'function' as const,
      function: { name: 'lookupStock', arguments: '{}' },
    });
    for (const messages of [
      // The conversation goes on without the result of call_2.
      [
        { role: 'user' as const, content: 'hats and caps?' },
        { role: 'assistant' as const, content: null, tool_calls: [call('call_1'), call('call_2')] },
        { role: 'tool' as const, tool_call_id: 'call_1', content: '{"units":3}' },
        { role: 'user' as const, content: 'and?' },
      ],
      // The history ends on the call itself.
      [
        { role: 'user' as const, content: 'hats?' },
        { role: 'assistant' as const, content: null, tool_calls: [call('call_2')] },
      ],
    ]) {
      const err = await client.chat.completions.create({ model: 'local', messages }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as BadRequestError).param).toBe('messages.1.tool_calls');
      expect((err as BadRequestError).message).toContain('none for "call_2"');
    }
  });
});
