import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type CallContext, createCallContext } from '../src/core/context.ts';
import type { ChatMessage, ToolSpec } from '../src/core/messages.ts';
import { createAnthropicProvider } from '../src/models/providers/anthropic/provider.ts';
import type { ModelProvider, ProviderRequest } from '../src/models/types.ts';
import { type FakeAnthropic, startFakeAnthropic } from './support/fake-anthropic.ts';
import { failure } from './support/scripted-provider.ts';

const KEY = 'sk-ant-test';
const stockTool: ToolSpec = {
  name: 'inventory__lookupStock',
  description: 'How many units of an item are in stock',
  parameters: { type: 'object', properties: { item: { type: 'string' } }, required: ['item'] },
};

let fake: FakeAnthropic;
let provider: ModelProvider;

beforeAll(async () => {
  fake = await startFakeAnthropic({ apiKey: KEY });
  provider = createAnthropicProvider({ apiKey: KEY, baseURL: fake.url, model: 'claude-test' });
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => {
  fake.requests.length = 0;
});

function request(messages: ChatMessage[], tools?: ToolSpec[]): ProviderRequest {
  return { model: 'claude-test', messages, ...(tools ? { tools } : {}) };
}

const hello = (ctx: CallContext = createCallContext(), on: ModelProvider = provider) =>
  on.complete(request([{ role: 'user', content: 'hello' }]), ctx);

function sentBody(i = 0): Record<string, unknown> {
  return fake.requests[i]?.body as Record<string, unknown>;
}

describe('anthropic provider against a fake Messages API', () => {
  it('is named anthropic with the configured default model', () => {
    expect(provider.name).toBe('anthropic');
    expect(provider.defaultModel).toBe('claude-test');
  });

  it('sends the system prompt apart and maps a text reply with its usage', async () => {
    fake.enqueue({ type: 'text', content: 'Hi there', usage: { input_tokens: 21, output_tokens: 4 } });
    const response = await provider.complete(
      request([
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hello' },
      ]),
      createCallContext(),
    );
    expect(response).toEqual({
      content: 'Hi there',
      toolCalls: [],
      finishReason: 'stop',
      usage: { inputTokens: 21, outputTokens: 4 },
    });
    const sent = fake.requests[0];
    expect(sent?.path).toBe('/v1/messages');
    expect(sent?.headers['anthropic-version']).toBeTruthy();
    expect(sentBody()).toEqual({
      model: 'claude-test',
      max_tokens: 4096,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'hello' }],
    });
  });

  it('passes the request maxTokens and never a temperature (API 2026-10-21 refuses sampling parameters)', async () => {
    await provider.complete(
      { ...request([{ role: 'user', content: 'hi' }]), maxTokens: 77, temperature: 0.3 },
      createCallContext(),
    );
    expect(sentBody().max_tokens).toBe(77);
    expect(sentBody()).not.toHaveProperty('temperature');
  });

  it('round-trips tool calls: tools as input_schema, tool_use mapped, tool_result blocks sent back in one turn', async () => {
    fake.enqueue({
      type: 'toolCalls',
      content: 'Let me check.',
      calls: [
        { id: 'toolu_1', name: stockTool.name, input: { item: 'hats' } },
        { id: 'toolu_2', name: stockTool.name, input: { item: 'caps' } },
      ],
    });
    const first = await provider.complete(
      request([{ role: 'user', content: 'hats and caps?' }], [stockTool]),
      createCallContext(),
    );
    expect(first.finishReason).toBe('tool_calls');
    expect(first.content).toBe('Let me check.');
    expect(first.toolCalls).toEqual([
      { id: 'toolu_1', name: stockTool.name, arguments: '{"item":"hats"}' },
      { id: 'toolu_2', name: stockTool.name, arguments: '{"item":"caps"}' },
    ]);
    expect(sentBody().tools).toEqual([
      { name: stockTool.name, description: stockTool.description, input_schema: stockTool.parameters },
    ]);

    fake.enqueue({ type: 'text', content: '42 hats, 7 caps.' });
    const second = await provider.complete(
      request(
        [
          { role: 'user', content: 'hats and caps?' },
          { role: 'assistant', content: 'Let me check.', toolCalls: first.toolCalls },
          { role: 'tool', toolCallId: 'toolu_1', name: stockTool.name, content: '{"units":42}' },
          { role: 'tool', toolCallId: 'toolu_2', name: stockTool.name, content: '{"units":7}' },
        ],
        [stockTool],
      ),
      createCallContext(),
    );
    expect(second.content).toBe('42 hats, 7 caps.');
    expect(sentBody(1).messages).toEqual([
      { role: 'user', content: 'hats and caps?' },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Let me check.' },
          { type: 'tool_use', id: 'toolu_1', name: stockTool.name, input: { item: 'hats' } },
          { type: 'tool_use', id: 'toolu_2', name: stockTool.name, input: { item: 'caps' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: '{"units":42}' },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: '{"units":7}' },
        ],
      },
    ]);
  });

  it('maps max_tokens to finish reason length', async () => {
    fake.enqueue({ type: 'text', content: 'Cut sh', stopReason: 'max_tokens' });
    expect((await hello()).finishReason).toBe('length');
  });

  it('maps a 500 and a 529 (overloaded) to retryable UNAVAILABLE, with the SDK retrying nothing', async () => {
    fake.enqueue({ type: 'status', status: 500 }, { type: 'status', status: 529 });
    const server = await failure(hello());
    expect([server.code, server.retryable, server.details?.status]).toEqual(['UNAVAILABLE', true, 500]);
    const overloaded = await failure(hello());
    expect([overloaded.code, overloaded.retryable]).toEqual(['UNAVAILABLE', true]);
    expect(fake.requests).toHaveLength(2);
  });

  it('maps a 429 with retry-after to RATE_LIMITED with retryAfterMs', async () => {
    fake.enqueue({ type: 'status', status: 429, headers: { 'retry-after': '3' } });
    const err = await failure(hello());
    expect(err.code).toBe('RATE_LIMITED');
    expect(err.retryable).toBe(true);
    expect(err.details?.retryAfterMs).toBe(3000);
  });

  it('maps a refused key (401) and a 403 to non-retryable UNAVAILABLE naming the key', async () => {
    const wrongKey = createAnthropicProvider({
      apiKey: 'sk-ant-wrong',
      baseURL: fake.url,
      model: 'claude-test',
    });
    const refused = await failure(hello(createCallContext(), wrongKey));
    expect([refused.code, refused.retryable]).toEqual(['UNAVAILABLE', false]);
    expect(refused.message).toMatch(/API key/);
    expect(refused.details).toMatchObject({ status: 401, upstreamCode: 'UNAUTHENTICATED' });

    fake.enqueue({ type: 'status', status: 403 });
    const forbidden = await failure(hello());
    expect([forbidden.code, forbidden.retryable]).toEqual(['UNAVAILABLE', false]);
    expect(forbidden.details).toMatchObject({ status: 403, upstreamCode: 'PERMISSION_DENIED' });
  });

  it('answers a request of system messages alone, sending them as the one user turn', async () => {
    fake.enqueue({ type: 'text', content: 'Ahoy!' });
    const response = await provider.complete(
      request([
        { role: 'system', content: 'Talk like a pirate.' },
        { role: 'system', content: 'Greet the user.' },
      ]),
      createCallContext(),
    );
    expect(response.content).toBe('Ahoy!');
    expect(sentBody()).toMatchObject({
      messages: [{ role: 'user', content: 'Talk like a pirate.\n\nGreet the user.' }],
    });
    expect(sentBody()).not.toHaveProperty('system');
  });

  it("answers a history that starts with the assistant's turn, which the Messages API refuses as such", async () => {
    // A history trimmed to fit the context window often starts there; OpenAI's API takes it.
    fake.enqueue({ type: 'text', content: 'Three hats.' });
    const response = await provider.complete(
      request([
        { role: 'system', content: 'Be brief.' },
        { role: 'assistant', content: 'Hi! What can I look up?' },
        { role: 'user', content: 'hats?' },
      ]),
      createCallContext(),
    );
    expect(response.content).toBe('Three hats.');
    expect(sentBody()).toMatchObject({
      system: 'Be brief.',
      messages: [
        { role: 'user', content: '(conversation continued)' },
        { role: 'assistant', content: 'Hi! What can I look up?' },
        { role: 'user', content: 'hats?' },
      ],
    });
  });

  it("refuses a request whose every message is empty as the caller's, without calling", async () => {
    const err = await failure(
      provider.complete(
        request([
          { role: 'system', content: '' },
          { role: 'user', content: '' },
        ]),
        createCallContext(),
      ),
    );
    expect([err.code, err.retryable]).toEqual(['INVALID_ARGUMENT', false]);
    expect(err.message).toMatch(/every message of the request is empty/);
    expect(fake.requests).toHaveLength(0);
  });

  it('maps other 4xx to non-retryable INVALID_ARGUMENT', async () => {
    fake.enqueue({ type: 'status', status: 400 }, { type: 'status', status: 404 });
    for (const status of [400, 404]) {
      const err = await failure(hello());
      expect([err.code, err.retryable, err.details?.status]).toEqual(['INVALID_ARGUMENT', false, status]);
    }
  });

  it('never quotes its own API key when the server echoes it in an error', async () => {
    fake.enqueue({
      type: 'status',
      status: 400,
      body: {
        type: 'error',
        error: { type: 'invalid_request_error', message: `bad header x-api-key: ${KEY}` },
      },
    });
    const err = await failure(hello());
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('bad header x-api-key: [redacted]');
    expect(err.message).not.toContain(KEY);
  });

  it('maps a malformed JSON body to retryable UNAVAILABLE', async () => {
    fake.enqueue({ type: 'malformed' });
    const err = await failure(hello());
    expect([err.code, err.retryable]).toEqual(['UNAVAILABLE', true]);
  });

  it('gives up on a hung server at the deadline with DEADLINE_EXCEEDED', async () => {
    fake.enqueue({ type: 'hang' });
    const started = Date.now();
    const err = await failure(hello(createCallContext({ timeoutMs: 150 })));
    expect(err.code).toBe('DEADLINE_EXCEEDED');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('gives up on a hung server: a plain call at its own timeout, a stream at the connect timeout', async () => {
    // A plain call's headers come with the whole answer, so the connect timeout is not its limit.
    fake.enqueue({ type: 'hang' });
    const patient = createAnthropicProvider({ apiKey: KEY, baseURL: fake.url, timeoutMs: 150 });
    let started = Date.now();
    const plain = await failure(
      patient.complete(request([{ role: 'user', content: 'x' }]), createCallContext(), undefined, {
        connectTimeoutMs: 50,
      }),
    );
    expect([plain.code, plain.retryable, plain.details?.timeout]).toEqual(['UNAVAILABLE', true, 'call']);
    expect(plain.message).toBe('anthropic: no complete answer within 150 ms');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(Date.now() - started).toBeLessThan(2000);

    fake.enqueue({ type: 'hang' });
    started = Date.now();
    const stream = provider.stream?.(
      request([{ role: 'user', content: 'x' }]),
      createCallContext(),
      undefined,
      {
        connectTimeoutMs: 100,
      },
    );
    const err = await failure(
      (async () => {
        for await (const _event of stream ?? []) {
          // no event comes before the headers
        }
      })(),
    );
    expect([err.code, err.retryable, err.details?.timeout]).toEqual(['UNAVAILABLE', true, 'connect']);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('maps an unreachable server to a retryable UNAVAILABLE', async () => {
    const closed = await startFakeAnthropic();
    await closed.close();
    const offline = createAnthropicProvider({ apiKey: KEY, baseURL: closed.url });
    const err = await failure(hello(createCallContext(), offline));
    expect([err.code, err.retryable]).toEqual(['UNAVAILABLE', true]);
  });

  it('refuses to start without an api key', () => {
    expect(() => createAnthropicProvider({ apiKey: '' })).toThrow(/ANTHROPIC_API_KEY/);
  });
});

describe('anthropic provider: the base URL', () => {
  it('calls /v1/messages whether the base URL is given with its /v1 or without', async () => {
    // The SDK appends /v1/messages: "…/v1" (as OpenAI-compatible URLs are written) called /v1/v1/messages, a 404.
    for (const baseURL of [fake.url, `${fake.url}/`, `${fake.url}/v1`, `${fake.url}/v1/`]) {
      fake.requests.length = 0;
      const withV1 = createAnthropicProvider({ apiKey: KEY, baseURL, model: 'claude-test' });
      const response = await hello(createCallContext(), withV1);
      expect(response.finishReason, baseURL).toBe('stop');
      expect(fake.requests[0]?.path).toBe('/v1/messages');
    }
  });
});
