import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type CallContext, createCallContext, runWithDeadline } from '../src/core/context.ts';
import { ClawmeshError } from '../src/core/errors.ts';
import type { ChatMessage, ToolSpec } from '../src/core/messages.ts';
import { createOpenAIProvider } from '../src/models/providers/openai/provider.ts';
import type { ModelProvider, ProviderRequest } from '../src/models/types.ts';
import { type FakeOpenAI, startFakeOpenAI } from './support/fake-openai.ts';
import { failure } from './support/scripted-provider.ts';

const stockTool: ToolSpec = {
  name: 'inventory__lookupStock',
  description: 'How many units of an item are in stock',
  parameters: { type: 'object', properties: { item: { type: 'string' } }, required: ['item'] },
};

let fake: FakeOpenAI;
let provider: ModelProvider;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  provider = createOpenAIProvider({ apiKey: 'sk-test', baseURL: fake.url, model: 'gpt-test' });
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => {
  fake.requests.length = 0;
});

function request(messages: ChatMessage[], tools?: ToolSpec[]): ProviderRequest {
  return { model: 'gpt-test', messages, ...(tools ? { tools } : {}) };
}

const hello = (ctx: CallContext = createCallContext()) =>
  provider.complete(request([{ role: 'user', content: 'hello' }]), ctx);

describe('openai provider against a fake chat-completions server', () => {
  it('is named openai with the configured default model', () => {
    expect(provider.name).toBe('openai');
    expect(provider.defaultModel).toBe('gpt-test');
  });

  it('returns a text reply with usage mapped', async () => {
    fake.enqueue({ type: 'text', content: 'Hi there', usage: { prompt_tokens: 12, completion_tokens: 3 } });
    const response = await hello();
    expect(response).toEqual({
      content: 'Hi there',
      toolCalls: [],
      finishReason: 'stop',
      usage: { inputTokens: 12, outputTokens: 3 },
    });
    const sent = fake.requests[0];
    expect(sent?.path).toBe('/v1/chat/completions');
    expect(sent?.headers.authorization).toBe('Bearer sk-test');
    expect(sent?.body).toMatchObject({ model: 'gpt-test', messages: [{ role: 'user', content: 'hello' }] });
    expect(sent?.body).not.toHaveProperty('tools');
  });

  it('round-trips a tool call: tools sent, tool_calls mapped, tool_call_id sent back', async () => {
    fake.enqueue({
      type: 'toolCalls',
      calls: [{ id: 'call_abc', name: stockTool.name, arguments: { item: 'hats' } }],
    });
    const ctx = createCallContext();
    const first = await provider.complete(
      request([{ role: 'user', content: 'hats in stock?' }], [stockTool]),
      ctx,
    );
    expect(first.finishReason).toBe('tool_calls');
    expect(first.content).toBe('');
    expect(first.toolCalls).toEqual([{ id: 'call_abc', name: stockTool.name, arguments: '{"item":"hats"}' }]);
    expect(fake.requests[0]?.body).toMatchObject({
      tools: [
        {
          type: 'function',
          function: {
            name: stockTool.name,
            description: stockTool.description,
            parameters: stockTool.parameters,
          },
        },
      ],
    });

    fake.enqueue({ type: 'text', content: 'There are 42 hats.' });
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hats in stock?' },
      { role: 'assistant', content: '', toolCalls: first.toolCalls },
      { role: 'tool', toolCallId: 'call_abc', name: stockTool.name, content: '{"units":42}' },
    ];
    const second = await provider.complete(request(messages, [stockTool]), ctx);
    expect(second.content).toBe('There are 42 hats.');
    expect((fake.requests[1]!.body as { messages: unknown }).messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hats in stock?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: 'call_abc',
            type: 'function',
            function: { name: stockTool.name, arguments: '{"item":"hats"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'call_abc', content: '{"units":42}' },
    ]);
  });

  it('maps a 500 to a retryable UNAVAILABLE and keeps the cause', async () => {
    fake.enqueue({ type: 'status', status: 500 });
    const err = await failure(hello());
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.retryable).toBe(true);
    expect(err.cause).toBeInstanceOf(Error);
    expect(fake.requests).toHaveLength(1);
  });

  it('maps a 429 with retry-after to RATE_LIMITED with retryAfterMs', async () => {
    fake.enqueue({ type: 'status', status: 429, headers: { 'retry-after': '2' } });
    const err = await failure(hello());
    expect(err.code).toBe('RATE_LIMITED');
    expect(err.retryable).toBe(true);
    expect(err.details?.retryAfterMs).toBe(2000);
  });

  it('maps a 401 to UNAUTHENTICATED, a 403 to PERMISSION_DENIED and a 400 to INVALID_ARGUMENT', async () => {
    fake.enqueue(
      { type: 'status', status: 401 },
      { type: 'status', status: 403 },
      { type: 'status', status: 400 },
    );
    const unauthenticated = await failure(hello());
    expect([unauthenticated.code, unauthenticated.retryable]).toEqual(['UNAUTHENTICATED', false]);
    expect((await failure(hello())).code).toBe('PERMISSION_DENIED');
    const invalid = await failure(hello());
    expect([invalid.code, invalid.retryable]).toEqual(['INVALID_ARGUMENT', false]);
  });

  it('never quotes its own API key when the server echoes it in an error', async () => {
    const key = 'sk-operator-0123456789abcdef';
    const keyed = createOpenAIProvider({ apiKey: key, baseURL: fake.url, model: 'gpt-test' });
    const echo = { error: { message: `Incorrect API key provided: ${key}`, type: 'invalid_request_error' } };
    fake.enqueue({ type: 'status', status: 401, body: echo });
    const plain = await failure(
      keyed.complete(request([{ role: 'user', content: 'hello' }]), createCallContext()),
    );
    expect(plain.code).toBe('UNAUTHENTICATED');
    expect(plain.message).toContain('Incorrect API key provided: [redacted]');
    expect(plain.message).not.toContain(key);
    fake.enqueue({ type: 'status', status: 401, body: echo });
    const streamed = await failure(
      (async () => {
        for await (const _ of keyed.stream!(
          request([{ role: 'user', content: 'hello' }]),
          createCallContext(),
        )) {
        }
      })(),
    );
    expect(streamed.message).not.toContain(key);
  });

  it('hides the masked key OpenAI quotes (its start and its last characters)', async () => {
    // OpenAI's own 401: "Incorrect API key provided: sk-proj-********…cdef. You can find …".
    const key = 'sk-proj-operator-0123456789abcdef';
    const keyed = createOpenAIProvider({ apiKey: key, baseURL: fake.url, model: 'gpt-test' });
    const masked = `${key.slice(0, 8)}${'*'.repeat(20)}${key.slice(-4)}`;
    fake.enqueue({
      type: 'status',
      status: 401,
      body: {
        error: {
          message: `Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`,
          type: 'invalid_request_error',
        },
      },
    });
    const err = await failure(
      keyed.complete(request([{ role: 'user', content: 'hello' }]), createCallContext()),
    );
    expect(err.message).toContain('Incorrect API key provided: [redacted].');
    expect(err.message).not.toContain('cdef');
    expect(err.message).toContain('You can find your API key');
  });

  it('maps a malformed JSON body to UNAVAILABLE', async () => {
    fake.enqueue({ type: 'malformed' });
    const err = await failure(hello());
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.retryable).toBe(true);
  });

  it('gives up promptly on a hung server when the deadline is short', async () => {
    fake.enqueue({ type: 'hang' });
    const started = Date.now();
    const err = await failure(hello(createCallContext({ timeoutMs: 150 })));
    expect(err.code).toBe('DEADLINE_EXCEEDED');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('stops when the caller signal aborts under runWithDeadline', async () => {
    fake.enqueue({ type: 'hang' });
    const ctx = createCallContext({ timeoutMs: 100 });
    const err = await failure(
      runWithDeadline(ctx, 'completion', (signal) =>
        provider.complete(request([{ role: 'user', content: 'x' }]), ctx, signal),
      ),
    );
    expect(err.code).toBe('DEADLINE_EXCEEDED');
  });

  it('maps an unreachable server to a retryable UNAVAILABLE', async () => {
    const closed = await startFakeOpenAI();
    await closed.close();
    const offline = createOpenAIProvider({ apiKey: 'sk-test', baseURL: closed.url });
    const err = await failure(
      offline.complete(request([{ role: 'user', content: 'hi' }]), createCallContext()),
    );
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.retryable).toBe(true);
  });

  it('refuses to start without an api key', () => {
    expect(() => createOpenAIProvider({ apiKey: '' })).toThrow(ClawmeshError);
  });
});

describe('openai provider: a server that reports no usage', () => {
  // Some OpenAI-compatible servers omit `usage`, or ignore `stream_options.include_usage`.
  let server: import('node:http').Server;
  let baseURL: string;
  beforeAll(async () => {
    const { createServer } = await import('node:http');
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { stream?: boolean };
        const base = { id: 'c1', created: 1, model: 'm' };
        if (!body.stream) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              ...base,
              object: 'chat.completion',
              choices: [
                {
                  index: 0,
                  message: { role: 'assistant', content: 'forty-two red shirts' },
                  finish_reason: 'stop',
                },
              ],
            }),
          );
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const delta of [{ content: 'forty-two ' }, { content: 'red shirts' }]) {
          const chunk = {
            ...base,
            object: 'chat.completion.chunk',
            choices: [{ index: 0, delta, finish_reason: null }],
          };
          res.write(`data: ${JSON.stringify(chunk)}\n\n`);
        }
        const last = {
          ...base,
          object: 'chat.completion.chunk',
          choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
        };
        res.end(`data: ${JSON.stringify(last)}\n\ndata: [DONE]\n\n`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseURL = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/v1`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const ask = request([{ role: 'user', content: 'how many red shirts are in stock? '.repeat(10) }]);

  it('estimates the usage of a plain answer instead of counting it free', async () => {
    const provider = createOpenAIProvider({ apiKey: 'k', baseURL, model: 'm' });
    const answer = await provider.complete(ask, createCallContext());
    expect(answer.content).toBe('forty-two red shirts');
    // 340 characters of prompt at 4 a token, plus 4 for the message; 20 characters of answer.
    expect(answer.usage).toEqual({ inputTokens: 89, outputTokens: 5 });
  });

  it('estimates the usage of a stream that sent no usage chunk', async () => {
    const provider = createOpenAIProvider({ apiKey: 'k', baseURL, model: 'm' });
    let done: Awaited<ReturnType<ModelProvider['complete']>> | undefined;
    for await (const event of provider.stream!(ask, createCallContext()))
      if (event.type === 'done') done = event.response;
    expect(done?.content).toBe('forty-two red shirts');
    expect(done?.usage).toEqual({ inputTokens: 89, outputTokens: 5 });
  });
});

describe('openai provider: streamed tool calls from servers that repeat the function name', () => {
  // Some OpenAI-compatible servers (proxies, vLLM parsers) send the whole name again in every
  // delta of a call. The official SDK's stream helper takes each non-empty name as the name.
  let upstream: import('./support/fake-upstream.ts').Upstream;
  beforeAll(async () => {
    const { startUpstream, startSse, writeSse } = await import('./support/fake-upstream.ts');
    upstream = await startUpstream((_request, _raw, res) => {
      startSse(res);
      const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
        id: 'c1',
        object: 'chat.completion.chunk',
        created: 1,
        model: 'm',
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
      const call = (index: number, id: string | undefined, args: string) => ({
        index,
        ...(id ? { id, type: 'function' } : {}),
        function: { name: 'inventory__lookupStock', arguments: args },
      });
      writeSse(res, chunk({ role: 'assistant', content: null }));
      writeSse(res, chunk({ tool_calls: [call(0, 'call_1', '')] }));
      writeSse(res, chunk({ tool_calls: [call(0, undefined, '{"item":')] }));
      writeSse(res, chunk({ tool_calls: [call(0, undefined, '"hats"}')] }));
      writeSse(res, chunk({ tool_calls: [call(1, 'call_2', '{"item":"socks"}')] }));
      writeSse(res, chunk({}, 'tool_calls'));
      writeSse(res, {
        id: 'c1',
        object: 'chat.completion.chunk',
        created: 1,
        model: 'm',
        choices: [],
        usage: { prompt_tokens: 9, completion_tokens: 4 },
      });
      writeSse(res, '[DONE]');
      res.end();
    });
  });
  afterAll(() => upstream.close());

  it('keeps the name once instead of joining its repeats', async () => {
    const streaming = createOpenAIProvider({
      apiKey: 'k',
      baseURL: `http://127.0.0.1:${upstream.port}/v1`,
      model: 'm',
    });
    let done: Awaited<ReturnType<ModelProvider['complete']>> | undefined;
    const ask = request([{ role: 'user', content: 'hats and socks?' }], [stockTool]);
    for await (const event of streaming.stream!(ask, createCallContext()))
      if (event.type === 'done') done = event.response;
    expect(done?.toolCalls).toEqual([
      { id: 'call_1', name: 'inventory__lookupStock', arguments: '{"item":"hats"}' },
      { id: 'call_2', name: 'inventory__lookupStock', arguments: '{"item":"socks"}' },
    ]);
  });
});

describe("openai provider: the token limit on OpenAI's own API and elsewhere", () => {
  // OpenAI refuses max_tokens on its reasoning models (o1, o3, gpt-5) and takes
  // max_completion_tokens on every chat model; other compatible servers all know max_tokens.
  const limited = request([{ role: 'user', content: 'hello' }]);
  limited.maxTokens = 64;

  it('sends max_completion_tokens to api.openai.com', async () => {
    // The SDK's documented `fetch` option carries the calls for api.openai.com to the fake.
    const toFake: typeof fetch = (input, init) =>
      fetch(String(input).replace('https://api.openai.com/v1', fake.url), init);
    const own = createOpenAIProvider({
      apiKey: 'sk-test',
      baseURL: 'https://api.openai.com/v1',
      model: 'o3-mini',
      http: { fetch: toFake as never, fetchOptions: { agent: () => undefined as never } },
    });
    await own.complete(limited, createCallContext());
    for await (const _event of own.stream!(limited, createCallContext()));
    for (const sent of fake.requests) {
      expect(sent.body).toMatchObject({ max_completion_tokens: 64 });
      expect(sent.body).not.toHaveProperty('max_tokens');
    }
    expect(fake.requests).toHaveLength(2);
  });

  it('sends max_tokens to any other OpenAI-compatible server', async () => {
    await provider.complete(limited, createCallContext());
    expect(fake.requests[0]?.body).toMatchObject({ max_tokens: 64 });
    expect(fake.requests[0]?.body).not.toHaveProperty('max_completion_tokens');
  });
});
