import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCallContext } from '../src/core/context.ts';
import { ClawmeshError } from '../src/core/errors.ts';
import type { ToolSpec } from '../src/core/messages.ts';
import { createAnthropicProvider } from '../src/models/providers/anthropic/provider.ts';
import { createLocalProvider, wordChunks } from '../src/models/providers/local/provider.ts';
import { createOpenAIProvider } from '../src/models/providers/openai/provider.ts';
import { collectStream, streamOf } from '../src/models/providers/stream.ts';
import type {
  ModelProvider,
  ProviderRequest,
  ProviderResponse,
  ProviderStreamEvent,
} from '../src/models/types.ts';
import { type FakeAnthropic, startFakeAnthropic } from './support/fake-anthropic.ts';
import { type FakeOpenAI, startFakeOpenAI } from './support/fake-openai.ts';

const stockTool: ToolSpec = {
  name: 'inventory__lookupStock',
  description: 'How many units of an item are in stock',
  parameters: { type: 'object', properties: { item: { type: 'string' } }, required: ['item'] },
};

const ANSWER = 'We have forty two red shirts in stock right now.';

function ask(text = 'hello', tools?: ToolSpec[]): ProviderRequest {
  return { model: 'm', messages: [{ role: 'user', content: text }], ...(tools ? { tools } : {}) };
}

/** Every event of a stream, and the error that ended it, if any. */
async function drain(
  events: AsyncIterable<ProviderStreamEvent>,
): Promise<{ texts: string[]; done?: ProviderResponse; error?: ClawmeshError }> {
  const texts: string[] = [];
  try {
    for await (const event of events) {
      if (event.type === 'text') texts.push(event.text);
      else return { texts, done: event.response };
    }
    return { texts };
  } catch (err) {
    expect(err).toBeInstanceOf(ClawmeshError);
    return { texts, error: err as ClawmeshError };
  }
}

let openaiFake: FakeOpenAI;
let anthropicFake: FakeAnthropic;
let openai: ModelProvider;
let anthropic: ModelProvider;

beforeAll(async () => {
  openaiFake = await startFakeOpenAI();
  anthropicFake = await startFakeAnthropic();
  openai = createOpenAIProvider({ apiKey: 'sk-test', baseURL: openaiFake.url });
  anthropic = createAnthropicProvider({ apiKey: 'sk-ant-test', baseURL: anthropicFake.url });
});

afterAll(async () => {
  await openaiFake.close();
  await anthropicFake.close();
});

beforeEach(() => {
  openaiFake.requests.length = 0;
  anthropicFake.requests.length = 0;
});

interface Upstream {
  name: string;
  provider: () => ModelProvider;
  text: (content: string, usage: { input: number; output: number }) => void;
  tools: () => void;
  fail: (reply: 'cut' | 'cutEarly' | 'destroy' | 'malformed' | 'stall') => void;
  lastBody: () => Record<string, unknown>;
}

const upstreams: Upstream[] = [
  {
    name: 'openai',
    provider: () => openai,
    text: (content, usage) =>
      openaiFake.enqueue({
        type: 'text',
        content,
        usage: { prompt_tokens: usage.input, completion_tokens: usage.output },
      }),
    tools: () =>
      openaiFake.enqueue({
        type: 'toolCalls',
        calls: [
          { id: 'call_1', name: stockTool.name, arguments: { item: 'red shirts' } },
          { id: 'call_2', name: stockTool.name, arguments: { item: 'blue hats' } },
        ],
      }),
    fail: (reply) =>
      openaiFake.enqueue(
        reply === 'malformed'
          ? { type: 'malformed' }
          : reply === 'stall'
            ? { type: 'stall', content: ANSWER, after: 2 }
            : {
                type: 'cut',
                content: ANSWER,
                after: reply === 'cutEarly' ? 0 : 3,
                destroy: reply === 'destroy',
              },
      ),
    lastBody: () => openaiFake.requests.at(-1)?.body as Record<string, unknown>,
  },
  {
    name: 'anthropic',
    provider: () => anthropic,
    text: (content, usage) =>
      anthropicFake.enqueue({
        type: 'text',
        content,
        usage: { input_tokens: usage.input, output_tokens: usage.output },
      }),
    tools: () =>
      anthropicFake.enqueue({
        type: 'toolCalls',
        calls: [
          { id: 'call_1', name: stockTool.name, input: { item: 'red shirts' } },
          { id: 'call_2', name: stockTool.name, input: { item: 'blue hats' } },
        ],
      }),
    fail: (reply) =>
      anthropicFake.enqueue(
        reply === 'malformed'
          ? { type: 'malformed' }
          : reply === 'stall'
            ? { type: 'stall', content: ANSWER, after: 2 }
            : {
                type: 'cut',
                content: ANSWER,
                after: reply === 'cutEarly' ? 0 : 3,
                destroy: reply === 'destroy',
              },
      ),
    lastBody: () => anthropicFake.requests.at(-1)?.body as Record<string, unknown>,
  },
];

describe.each(upstreams)('$name streaming through the real SDK', (upstream) => {
  it('yields the answer as several text deltas, then done with the whole content and usage', async () => {
    upstream.text(ANSWER, { input: 17, output: 11 });
    const { texts, done, error } = await drain(upstream.provider().stream!(ask(), createCallContext()));
    expect(error).toBeUndefined();
    expect(texts.length).toBeGreaterThan(3);
    expect(texts.join('')).toBe(ANSWER);
    expect(done).toEqual({
      content: ANSWER,
      toolCalls: [],
      finishReason: 'stop',
      usage: { inputTokens: 17, outputTokens: 11 },
    });
    expect(upstream.lastBody().stream).toBe(true);
  });

  it('assembles tool calls from their streamed pieces', async () => {
    upstream.tools();
    const { texts, done } = await drain(
      upstream.provider().stream!(ask('stock?', [stockTool]), createCallContext()),
    );
    expect(texts).toEqual([]);
    expect(done?.finishReason).toBe('tool_calls');
    expect(done?.toolCalls).toEqual([
      { id: 'call_1', name: stockTool.name, arguments: '{"item":"red shirts"}' },
      { id: 'call_2', name: stockTool.name, arguments: '{"item":"blue hats"}' },
    ]);
  });

  it('raises a retryable UNAVAILABLE for a stream cut mid-answer, never done', async () => {
    upstream.fail('cut');
    const { texts, done, error } = await drain(upstream.provider().stream!(ask(), createCallContext()));
    expect(texts.length).toBeGreaterThan(0);
    expect(texts.join('')).not.toBe(ANSWER);
    expect(done).toBeUndefined();
    expect([error?.code, error?.retryable, error?.details?.streamCut]).toEqual(['UNAVAILABLE', true, true]);
  });

  it('raises a retryable UNAVAILABLE for a stream cut before its first delta', async () => {
    upstream.fail('cutEarly');
    const { texts, done, error } = await drain(upstream.provider().stream!(ask(), createCallContext()));
    expect(texts).toEqual([]);
    expect(done).toBeUndefined();
    expect([error?.code, error?.retryable]).toEqual(['UNAVAILABLE', true]);
  });

  it('raises a retryable UNAVAILABLE when the connection is torn down mid-stream', async () => {
    upstream.fail('destroy');
    const { done, error } = await drain(upstream.provider().stream!(ask(), createCallContext()));
    expect(done).toBeUndefined();
    expect([error?.code, error?.retryable]).toEqual(['UNAVAILABLE', true]);
  });

  it('raises a retryable UNAVAILABLE for malformed JSON in the stream', async () => {
    upstream.fail('malformed');
    const { done, error } = await drain(upstream.provider().stream!(ask(), createCallContext()));
    expect(done).toBeUndefined();
    expect([error?.code, error?.retryable]).toEqual(['UNAVAILABLE', true]);
  });

  it('ends a stalled stream with the abort reason when the signal aborts, never done', async () => {
    upstream.fail('stall');
    const controller = new AbortController();
    const reason = new ClawmeshError('UNAVAILABLE', 'no first token in time', {
      details: { timeout: 'test' },
    });
    setTimeout(() => controller.abort(reason), 100);
    const { texts, done, error } = await drain(
      upstream.provider().stream!(ask(), createCallContext(), controller.signal),
    );
    expect(texts.length).toBe(2);
    expect(done).toBeUndefined();
    expect(error).toBe(reason);
  });
});

describe('openai streaming specifics', () => {
  it('asks for usage in the stream (stream_options.include_usage)', async () => {
    await drain(openai.stream!(ask(), createCallContext()));
    expect(openaiFake.requests.at(-1)?.body).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
    });
  });
});

describe('anthropic streaming specifics', () => {
  it('maps an overloaded_error event mid-stream to a retryable UNAVAILABLE', async () => {
    anthropicFake.enqueue({
      type: 'streamError',
      errorType: 'overloaded_error',
      content: 'Partial answer here',
    });
    const { texts, done, error } = await drain(anthropic.stream!(ask(), createCallContext()));
    expect(texts.join('')).toBe('Partial answer here');
    expect(done).toBeUndefined();
    expect([error?.code, error?.retryable]).toEqual(['UNAVAILABLE', true]);
  });
});

describe('local model streaming', () => {
  const local = createLocalProvider();

  it('streams the same answer as complete, in chunks of a few words, deterministically', async () => {
    const request = ask('tell me something about the weather in paris today please');
    const whole = await local.complete(request, createCallContext());
    const first = await drain(local.stream!(request, createCallContext()));
    const second = await drain(local.stream!(request, createCallContext()));
    expect(first.texts.length).toBeGreaterThan(1);
    expect(first.texts.join('')).toBe(whole.content);
    expect(second.texts).toEqual(first.texts);
    expect(first.done).toEqual(whole);
  });

  it('streams a tool call as done alone, with no text', async () => {
    const { texts, done } = await drain(
      local.stream!(ask('how many red shirts are in stock?', [stockTool]), createCallContext()),
    );
    expect(texts).toEqual([]);
    expect(done?.toolCalls[0]).toMatchObject({ name: stockTool.name });
  });

  it('splits text into word chunks that join back to the text', () => {
    expect(wordChunks('one two three four five six seven')).toEqual([
      'one two three ',
      'four five six ',
      'seven',
    ]);
    expect(wordChunks('  lead  and trail  ', 2)).toEqual(['  lead  and ', 'trail  ']);
    expect(wordChunks('')).toEqual([]);
  });

  it('stops with the abort reason when cancelled', async () => {
    const controller = new AbortController();
    const reason = new ClawmeshError('DEADLINE_EXCEEDED', 'too late');
    controller.abort(reason);
    const { error } = await drain(local.stream!(ask(), createCallContext(), controller.signal));
    expect(error).toBe(reason);
  });
});

describe('streamOf', () => {
  it('streams a provider that only completes as one delta and done', async () => {
    const answer: ProviderResponse = {
      content: 'whole answer',
      toolCalls: [],
      finishReason: 'stop',
      usage: { inputTokens: 1, outputTokens: 2 },
    };
    const plain: ModelProvider = { name: 'plain', defaultModel: 'x', complete: async () => answer };
    const { texts, done } = await drain(streamOf(plain, ask(), createCallContext()));
    expect(texts).toEqual(['whole answer']);
    expect(done).toEqual(answer);
  });
});

describe('collectStream', () => {
  it('returns the done response and hands over each delta', async () => {
    openaiFake.enqueue({ type: 'text', content: ANSWER });
    const texts: string[] = [];
    const response = await collectStream(openai.stream!(ask(), createCallContext()), (text) =>
      texts.push(text),
    );
    expect(texts.join('')).toBe(ANSWER);
    expect(response.content).toBe(ANSWER);
  });

  it('refuses a stream that ends without done', async () => {
    async function* truncated(): AsyncGenerator<ProviderStreamEvent> {
      yield { type: 'text', text: 'half an' };
    }
    const err = await collectStream(truncated()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ClawmeshError);
    expect((err as ClawmeshError).details?.streamCut).toBe(true);
  });
});
