import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCallContext } from '../src/core/context.ts';
import { ClawmeshError } from '../src/core/errors.ts';
import { createAnthropicProvider } from '../src/models/providers/anthropic/provider.ts';
import { createOpenAIProvider } from '../src/models/providers/openai/provider.ts';
import {
  createOutboundHttp,
  type OutboundHttp,
  outboundBodyFailure,
} from '../src/models/providers/outbound.ts';
import type {
  ModelProvider,
  ProviderRequest,
  ProviderResponse,
  ProviderStreamEvent,
} from '../src/models/types.ts';
import { type FakeAnthropic, startFakeAnthropic } from './support/fake-anthropic.ts';
import { type FakeOpenAI, startFakeOpenAI } from './support/fake-openai.ts';
import { failure } from './support/scripted-provider.ts';

// The SDK providers over the gateway's outbound HTTP client (node-fetch on keep-alive agents)
// instead of Node's global fetch: the same wire behaviour and the same typed failures.

const ANSWER = 'We have forty two red shirts in stock right now.';
const ask = (text = 'hello'): ProviderRequest => ({
  model: 'm',
  messages: [{ role: 'user', content: text }],
});

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

let outbound: OutboundHttp;
let openaiFake: FakeOpenAI;
let anthropicFake: FakeAnthropic;
let openai: ModelProvider;
let anthropic: ModelProvider;

beforeAll(async () => {
  const made = await createOutboundHttp();
  if (!made) throw new Error('node-fetch is not installed');
  outbound = made;
  openaiFake = await startFakeOpenAI();
  anthropicFake = await startFakeAnthropic();
  openai = createOpenAIProvider({ apiKey: 'sk-test', baseURL: openaiFake.url, http: outbound });
  anthropic = createAnthropicProvider({ apiKey: 'sk-ant-test', baseURL: anthropicFake.url, http: outbound });
});

afterAll(async () => {
  await openaiFake.close();
  await anthropicFake.close();
});

beforeEach(() => {
  openaiFake.reset();
  anthropicFake.reset();
});

interface Case {
  name: string;
  provider: () => ModelProvider;
  text: (content: string) => void;
  status: (status: number, headers?: Record<string, string>) => void;
  other: (
    reply: { type: 'malformed' } | { type: 'hang' } | { type: 'stall'; content: string; after: number },
  ) => void;
  cut: (after: number, destroy?: boolean) => void;
  requests: () => number;
}

const cases: Case[] = [
  {
    name: 'openai',
    provider: () => openai,
    text: (content) =>
      openaiFake.enqueue({ type: 'text', content, usage: { prompt_tokens: 12, completion_tokens: 3 } }),
    status: (status, headers) =>
      openaiFake.enqueue({ type: 'status', status, ...(headers ? { headers } : {}) }),
    other: (reply) => openaiFake.enqueue(reply),
    cut: (after, destroy) =>
      openaiFake.enqueue({ type: 'cut', content: ANSWER, after, destroy: destroy ?? false }),
    requests: () => openaiFake.requests.length,
  },
  {
    name: 'anthropic',
    provider: () => anthropic,
    text: (content) =>
      anthropicFake.enqueue({ type: 'text', content, usage: { input_tokens: 12, output_tokens: 3 } }),
    status: (status, headers) =>
      anthropicFake.enqueue({ type: 'status', status, ...(headers ? { headers } : {}) }),
    other: (reply) => anthropicFake.enqueue(reply),
    cut: (after, destroy) =>
      anthropicFake.enqueue({ type: 'cut', content: ANSWER, after, destroy: destroy ?? false }),
    requests: () => anthropicFake.requests.length,
  },
];

describe.each(cases)('$name provider over the outbound HTTP client (node-fetch, keep-alive)', (c) => {
  it('answers with the text and the usage', async () => {
    c.text('Hi there');
    const response = await c.provider().complete(ask(), createCallContext());
    expect(response).toMatchObject({ content: 'Hi there', usage: { inputTokens: 12, outputTokens: 3 } });
  });

  it('maps a 500 to a retryable UNAVAILABLE and a 429 to RATE_LIMITED with its Retry-After', async () => {
    c.status(500);
    const unavailable = await failure(c.provider().complete(ask(), createCallContext()));
    expect([unavailable.code, unavailable.retryable]).toEqual(['UNAVAILABLE', true]);
    c.status(429, { 'retry-after': '3' });
    const limited = await failure(c.provider().complete(ask(), createCallContext()));
    expect([limited.code, limited.details?.retryAfterMs]).toEqual(['RATE_LIMITED', 3000]);
  });

  it('maps a malformed JSON body to a retryable UNAVAILABLE', async () => {
    c.other({ type: 'malformed' });
    const err = await failure(c.provider().complete(ask(), createCallContext()));
    expect([err.code, err.retryable]).toEqual(['UNAVAILABLE', true]);
    expect(err.message).toMatch(/malformed/);
  });

  it('gives up on a server that never answers at the deadline', async () => {
    c.other({ type: 'hang' });
    const started = Date.now();
    const err = await failure(c.provider().complete(ask(), createCallContext({ timeoutMs: 150 })));
    expect(err.code).toBe('DEADLINE_EXCEEDED');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('streams the answer in deltas, then done with the usage', async () => {
    c.text(ANSWER);
    const { texts, done } = await drain(c.provider().stream!(ask(), createCallContext()));
    expect(texts.length).toBeGreaterThan(1);
    expect(texts.join('')).toBe(ANSWER);
    expect(done?.content).toBe(ANSWER);
    expect(done?.usage.outputTokens).toBeGreaterThan(0);
  });

  it('raises a retryable UNAVAILABLE for a stream cut or torn down mid-answer, never done', async () => {
    c.cut(3);
    const cut = await drain(c.provider().stream!(ask(), createCallContext()));
    expect(cut.texts.length).toBeGreaterThan(0);
    expect(cut.done).toBeUndefined();
    expect([cut.error?.code, cut.error?.retryable]).toEqual(['UNAVAILABLE', true]);
    c.cut(3, true);
    const torn = await drain(c.provider().stream!(ask(), createCallContext()));
    expect(torn.done).toBeUndefined();
    expect([torn.error?.code, torn.error?.retryable]).toEqual(['UNAVAILABLE', true]);
  });

  it('ends a stalled stream with the abort reason when the signal aborts', async () => {
    c.other({ type: 'stall', content: ANSWER, after: 2 });
    const controller = new AbortController();
    const reason = new ClawmeshError('UNAVAILABLE', 'no next token in time');
    setTimeout(() => controller.abort(reason), 100);
    const { texts, done, error } = await drain(
      c.provider().stream!(ask(), createCallContext(), controller.signal),
    );
    expect(texts.length).toBe(2);
    expect(done).toBeUndefined();
    expect(error).toBe(reason);
  });
});

describe('the outbound HTTP client', () => {
  it('keeps connections alive: sequential calls share one socket, through node-fetch', async () => {
    let connections = 0;
    const encodings: (string | undefined)[] = [];
    const completion = JSON.stringify({
      id: 'c',
      object: 'chat.completion',
      created: 1,
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1, completion_tokens: 1 },
    });
    const server = http.createServer((req, res) => {
      encodings.push(req.headers['accept-encoding']);
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(completion);
      });
    });
    server.on('connection', () => {
      connections += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const provider = createOpenAIProvider({
      apiKey: 'k',
      baseURL: `http://127.0.0.1:${port}/v1`,
      http: outbound,
    });
    try {
      for (let i = 0; i < 5; i += 1) {
        expect((await provider.complete(ask(), createCallContext())).content).toBe('ok');
      }
      expect(connections).toBe(1);
      // node-fetch 2 asks for gzip and deflate; Node's fetch (undici) also asks for br.
      expect(new Set(encodings)).toEqual(new Set(['gzip,deflate']));
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('tells node-fetch body failures apart from other errors', () => {
    const invalid = Object.assign(new Error('invalid json response body'), {
      name: 'FetchError',
      type: 'invalid-json',
    });
    const cut = Object.assign(new Error('Premature close'), { name: 'FetchError', type: 'system' });
    expect(outboundBodyFailure(invalid)).toBe('invalid-json');
    expect(outboundBodyFailure(cut)).toBe('failed');
    expect(outboundBodyFailure(new SyntaxError('x'))).toBeUndefined();
    expect(outboundBodyFailure('not an error')).toBeUndefined();
  });
});
