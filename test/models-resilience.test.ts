import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCallContext } from '../src/core/context.ts';
import { createAnthropicProvider } from '../src/models/providers/anthropic/provider.ts';
import { createOpenAIProvider } from '../src/models/providers/openai/provider.ts';
import {
  type Attempt,
  type ChainOptions,
  type ChainResult,
  createDeploymentChain,
  type DeploymentChain,
} from '../src/models/resilience/chain.ts';
import type { Deployment } from '../src/models/types.ts';
import { type FakeAnthropic, startFakeAnthropic } from './support/fake-anthropic.ts';
import { type FakeOpenAI, startFakeOpenAI } from './support/fake-openai.ts';
import { failure } from './support/scripted-provider.ts';

/**
 * The resilience rules end to end: real SDK clients over real HTTP to loopback fakes of the
 * OpenAI and Anthropic wire formats, told to fail per request.
 */

const ANSWER = 'The blue kettle is back in stock at the Lyon shop.';
const ask = { messages: [{ role: 'user' as const, content: 'is the blue kettle in stock?' }] };

let east: FakeOpenAI;
let west: FakeOpenAI;
let claude: FakeAnthropic;
let deployments: Deployment[];

beforeAll(async () => {
  [east, west, claude] = await Promise.all([
    startFakeOpenAI(),
    startFakeOpenAI(),
    startFakeAnthropic({ apiKey: 'sk-ant' }),
  ]);
  // Two deployments of one model on two OpenAI-compatible servers with their own keys, then Anthropic.
  deployments = [
    {
      id: 'openai-east',
      provider: createOpenAIProvider({ apiKey: 'sk-east', baseURL: east.url }),
      model: 'gpt-test',
    },
    {
      id: 'openai-west',
      provider: createOpenAIProvider({ apiKey: 'sk-west', baseURL: west.url }),
      model: 'gpt-test',
    },
    {
      id: 'claude',
      provider: createAnthropicProvider({ apiKey: 'sk-ant', baseURL: claude.url }),
      model: 'claude-test',
    },
  ];
});

afterAll(async () => {
  await Promise.all([east.close(), west.close(), claude.close()]);
});

beforeEach(() => {
  east.reset();
  west.reset();
  claude.reset();
});

const BASE: ChainOptions = {
  connectTimeoutMs: 2_000,
  retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 },
  breaker: { failureThreshold: 5, cooldownMs: 60_000 },
};

function chain(options: ChainOptions = {}, ids = ['openai-east', 'openai-west', 'claude']): DeploymentChain {
  return createDeploymentChain(
    ids.map((id) => deployments.find((d) => d.id === id) as Deployment),
    { ...BASE, ...options },
  );
}

const summary = (attempts: Attempt[]) =>
  attempts.map((a) => `${a.deployment}:${a.ok ? 'ok' : (a.skipped ?? a.code)}`);

describe('deployment chain against fake upstreams', () => {
  it('retries a 500 on the same deployment, with the SDK retrying nothing itself', async () => {
    east.enqueue({ type: 'status', status: 500 }, { type: 'text', content: ANSWER });
    const result = await chain().complete(ask, createCallContext());
    expect(result.response.content).toBe(ANSWER);
    expect(result.deployment.id).toBe('openai-east');
    expect(east.requests).toHaveLength(2);
    expect(summary(result.attempts)).toEqual(['openai-east:UNAVAILABLE', 'openai-east:ok']);
  });

  it('retries malformed JSON', async () => {
    east.enqueue({ type: 'malformed' }, { type: 'text', content: ANSWER });
    const result = await chain().complete(ask, createCallContext());
    expect(result.response.content).toBe(ANSWER);
    expect(east.requests).toHaveLength(2);
  });

  it('moves on at once from a 429 and leaves that deployment alone until its Retry-After', async () => {
    const c = chain({ retry: { maxAttempts: 3, baseDelayMs: 2_000, maxDelayMs: 2_000 } });
    east.enqueue({ type: 'status', status: 429, headers: { 'retry-after': '30' } });
    west.enqueue({ type: 'text', content: ANSWER });
    const started = Date.now();
    const first = await c.complete(ask, createCallContext());
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(first.deployment.id).toBe('openai-west');
    expect(first.fallbackUsed).toBe(true);
    expect(summary(first.attempts)).toEqual(['openai-east:RATE_LIMITED', 'openai-west:ok']);

    const second = await c.complete(ask, createCallContext());
    expect(summary(second.attempts)).toEqual(['openai-east:rate-limited', 'openai-west:ok']);
    expect(east.requests).toHaveLength(1);
    const limited = c.state().find((s) => s.deployment === 'openai-east');
    expect(limited?.rateLimitedUntil).toBeGreaterThan(Date.now() + 25_000);
  });

  it('never retries another 4xx', async () => {
    east.enqueue({ type: 'status', status: 400 });
    const result = await chain().complete(ask, createCallContext());
    expect(east.requests).toHaveLength(1);
    expect(summary(result.attempts)).toEqual(['openai-east:INVALID_ARGUMENT', 'openai-west:ok']);
  });

  it('times out a server that hangs before the first byte, retries, then falls back across providers', async () => {
    east.enqueue({ type: 'hang' }, { type: 'hang' });
    claude.enqueue({ type: 'text', content: ANSWER });
    const started = Date.now();
    const result = await chain({ callTimeoutMs: 150 }, ['openai-east', 'claude']).complete(
      ask,
      createCallContext(),
    );
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(result.response.content).toBe(ANSWER);
    expect(result.deployment.id).toBe('claude');
    expect(east.requests).toHaveLength(2);
    expect(summary(result.attempts)).toEqual([
      'openai-east:UNAVAILABLE',
      'openai-east:UNAVAILABLE',
      'claude:ok',
    ]);
    expect(result.attempts[0]?.message).toMatch(/no complete answer within 150 ms/);
  });

  it('times out a stream whose headers do not come within the connect timeout, then falls back', async () => {
    east.enqueue({ type: 'hang' }, { type: 'hang' });
    claude.enqueue({ type: 'text', content: ANSWER });
    const started = Date.now();
    let text = '';
    let result: ChainResult | undefined;
    for await (const event of chain({ connectTimeoutMs: 150 }, ['openai-east', 'claude']).stream(
      ask,
      createCallContext(),
    )) {
      if (event.type === 'text') text += event.text;
      else result = event.result;
    }
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(text).toBe(ANSWER);
    expect(result?.deployment.id).toBe('claude');
    expect(summary(result?.attempts ?? [])).toEqual([
      'openai-east:UNAVAILABLE',
      'openai-east:UNAVAILABLE',
      'claude:ok',
    ]);
    expect(result?.attempts[0]?.message).toMatch(/connect timeout/);
  });

  it('waits past the connect timeout for a plain answer: its headers come with the whole answer', async () => {
    // A non-streamed completion's response headers arrive when the model has finished: the
    // connect timeout must not cut it (nor retry it, paying for the tokens twice).
    east.enqueue({ type: 'text', content: ANSWER, delayMs: 400 });
    claude.enqueue({ type: 'text', content: ANSWER, delayMs: 400 });
    for (const id of ['openai-east', 'claude']) {
      const result = await chain({ connectTimeoutMs: 100 }, [id]).complete(ask, createCallContext());
      expect(result.response.content).toBe(ANSWER);
      expect(summary(result.attempts)).toEqual([`${id}:ok`]);
    }
    expect(east.requests).toHaveLength(1);
    expect(claude.requests).toHaveLength(1);
  });

  it('stops at the deadline while a server hangs, listing the attempts', async () => {
    east.enqueue({ type: 'hang' });
    const started = Date.now();
    const err = await failure(chain().complete(ask, createCallContext({ timeoutMs: 300 })));
    expect(err.code).toBe('DEADLINE_EXCEEDED');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(summary(err.details?.attempts as Attempt[])).toEqual(['openai-east:DEADLINE_EXCEEDED']);
    expect(west.requests).toHaveLength(0);
  });

  it('fails UNAVAILABLE with every attempt listed when every option fails', async () => {
    east.setDefault({ type: 'status', status: 503 });
    west.setDefault({ type: 'status', status: 500 });
    claude.enqueue({ type: 'status', status: 401 });
    const err = await failure(chain().complete(ask, createCallContext()));
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.retryable).toBe(true);
    expect(summary(err.details?.attempts as Attempt[])).toEqual([
      'openai-east:UNAVAILABLE',
      'openai-east:UNAVAILABLE',
      'openai-west:UNAVAILABLE',
      'openai-west:UNAVAILABLE',
      'claude:UNAVAILABLE',
    ]);
    expect(err.message).toMatch(/openai-east UNAVAILABLE: openai: 503/);
    expect(err.message).toMatch(/claude UNAVAILABLE: anthropic refused the API key/);
  });

  it('opens the circuit of a failing deployment, then stops calling it', async () => {
    east.setDefault({ type: 'status', status: 500 });
    const c = chain({
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      breaker: { failureThreshold: 3, cooldownMs: 60_000 },
    });
    for (let i = 0; i < 3; i++) await c.complete(ask, createCallContext());
    expect(east.requests).toHaveLength(3);
    expect(c.state()[0]?.circuit).toBe('open');
    const next = await c.complete(ask, createCallContext());
    expect(summary(next.attempts)).toEqual(['openai-east:circuit-open', 'openai-west:ok']);
    expect(east.requests).toHaveLength(3);
  });
});

describe('streams through the chain against fake upstreams', () => {
  it('retries a stream cut before its first delta and delivers the answer once', async () => {
    east.enqueue({ type: 'cut', content: ANSWER, after: 0 }, { type: 'text', content: ANSWER });
    const texts: string[] = [];
    const result = await chain().complete(ask, createCallContext(), (text) => texts.push(text));
    expect(texts.join('')).toBe(ANSWER);
    expect(result.response.content).toBe(ANSWER);
    expect(east.requests).toHaveLength(2);
    expect(result.firstTokenMs).toBeGreaterThanOrEqual(0);
  });

  it('fails a stream cut mid-answer cleanly: typed error, no retry, no duplicated text', async () => {
    east.enqueue({ type: 'cut', content: ANSWER, after: 3 });
    const texts: string[] = [];
    const iterate = async () => {
      for await (const event of chain().stream(ask, createCallContext())) {
        if (event.type === 'text') texts.push(event.text);
        else throw new Error('a cut stream must never end with done');
      }
    };
    const err = await failure(iterate());
    expect(texts).toHaveLength(3);
    expect(ANSWER.startsWith(texts.join(''))).toBe(true);
    expect([err.code, err.retryable, err.details?.partial]).toEqual(['UNAVAILABLE', false, true]);
    expect(east.requests).toHaveLength(1);
    expect(west.requests).toHaveLength(0);
  });

  it('falls back when a stream sends headers but no first token in time', async () => {
    east.enqueue({ type: 'stall', content: ANSWER, after: 0 });
    claude.enqueue({ type: 'text', content: ANSWER });
    const texts: string[] = [];
    let done = false;
    const started = Date.now();
    for await (const event of chain(
      { firstTokenTimeoutMs: 150, retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } },
      ['openai-east', 'claude'],
    ).stream(ask, createCallContext())) {
      if (event.type === 'text') texts.push(event.text);
      else {
        done = true;
        expect(event.result.deployment.id).toBe('claude');
        expect(summary(event.result.attempts)).toEqual(['openai-east:UNAVAILABLE', 'claude:ok']);
        expect(event.result.attempts[0]?.message).toMatch(/no first token within 150 ms/);
      }
    }
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(done).toBe(true);
    expect(texts.join('')).toBe(ANSWER);
  });

  it('streams from anthropic with usage in the final result', async () => {
    claude.enqueue({ type: 'text', content: ANSWER, usage: { input_tokens: 30, output_tokens: 12 } });
    const events = [];
    for await (const event of chain({}, ['claude']).stream(ask, createCallContext())) events.push(event);
    const last = events.at(-1);
    expect(last?.type).toBe('done');
    if (last?.type === 'done')
      expect(last.result.response.usage).toEqual({ inputTokens: 30, outputTokens: 12 });
    expect(events.filter((e) => e.type === 'text').length).toBeGreaterThan(3);
  });
});
