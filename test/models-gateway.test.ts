import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallContext } from '../src/core/context.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import { type FakeOpenAI, startFakeOpenAI } from './support/fake-openai.ts';

/** The audit log's events of one type, oldest first. */
function audited(t: TestApp, type: string) {
  return readFileSync(join(t.dir, 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
    .filter((event) => event.type === type);
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('the Model Gateway in the monolith, local model', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.stop());

  it('streams the final answer to onDelta before the turn returns, with the tool call still made', async () => {
    let settled = false;
    const deltas: { text: string; settled: boolean }[] = [];
    const reply = await t.app.conversation
      .handle(
        { channel: 'api', userId: 'streamer', text: 'how many red shirts are in stock?' },
        createCallContext({ onDelta: (text) => deltas.push({ text, settled }) }),
      )
      .finally(() => {
        settled = true;
      });
    expect(reply.toolCalls[0]).toMatchObject({ skill: 'inventory', tool: 'lookupStock', ok: true });
    expect(reply.text).toContain('42');
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.every((delta) => !delta.settled)).toBe(true);
    expect(deltas.map((delta) => delta.text).join('')).toBe(reply.text);
  });

  it('puts the route, tier, deployment and cost into model.completed', async () => {
    await t.post('/v1/messages', { userId: 'evented', text: 'hello there' });
    await settle();
    const event = audited(t, 'model.completed').at(-1);
    expect(event.data).toMatchObject({
      model: 'local/default',
      tier: 'fast',
      route: { by: 'difficulty', reason: expect.stringMatching(/^difficulty [\d.]+ < 0\.5.*-> tier fast$/) },
      deployment: 'local/default',
      cached: false,
      fallbackUsed: false,
      attempts: 1,
      costUsd: 0,
      agentId: 'default',
      userId: 'evented',
      source: 'conversation',
    });
    expect(event.data.conversationId).toMatch(/^c_/);
  });

  it('exposes requests by route, latency and tokens on /metrics', async () => {
    const body = await (await fetch(`${t.url}/metrics`)).text();
    expect(body).toMatch(
      /clawmesh_model_requests_total\{model="local\/default",tier="fast",route="difficulty",outcome="ok"\} [1-9]/,
    );
    expect(body).toMatch(
      /clawmesh_model_latency_seconds_count\{model="local\/default",cached="false"\} [1-9]/,
    );
    expect(body).toMatch(/clawmesh_model_tokens_total\{model="local\/default",direction="input"\} [1-9]/);
    expect(body).toMatch(/clawmesh_model_agent_tokens_total\{agent="default",direction="output"\} [1-9]/);
  });
});

describe('the Model Gateway in the monolith, an OpenAI-compatible upstream', () => {
  let fake: FakeOpenAI;
  let t: TestApp;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
    t = await startTestApp(
      {
        models: {
          tiers: { fast: ['openai/gpt-test'], capable: ['openai/gpt-test'] },
          prices: { 'gpt-test': { input: 1, output: 2 } },
          resilience: { timeouts: { totalMs: 400 } },
        },
      },
      {},
      { OPENAI_API_KEY: 'sk-test-1234', OPENAI_BASE_URL: fake.url, OPENAI_MODEL: 'gpt-test' },
    );
  });
  afterAll(async () => {
    await t.stop();
    await fake.close();
  });

  it('streams the upstream answer after a tool step, the tool call still made', async () => {
    fake.enqueue(
      {
        type: 'toolCalls',
        calls: [{ id: 'call_s', name: 'inventory__lookupStock', arguments: { item: 'red shirt' } }],
      },
      { type: 'text', content: 'We have forty-two red shirts in stock right now.' },
    );
    const deltas: string[] = [];
    const reply = await t.app.conversation.handle(
      { channel: 'api', userId: 'up-streamer', text: 'red shirts?' },
      createCallContext({ onDelta: (delta) => deltas.push(delta) }),
    );
    expect(reply.text).toBe('We have forty-two red shirts in stock right now.');
    expect(reply.toolCalls[0]).toMatchObject({ tool: 'lookupStock', ok: true });
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(reply.text);
    const [first, second] = fake.requests.slice(-2) as {
      body: { stream?: boolean; messages: { role: string }[] };
    }[];
    expect(first!.body.stream).toBe(true);
    expect(second!.body.messages.some((m) => m.role === 'tool')).toBe(true);
  });

  it('fails a turn whose stream stalls mid-answer, after streaming the words that came', async () => {
    fake.enqueue({ type: 'stall', content: 'The answer is forty', after: 2 });
    let settled = false;
    const deltas: { text: string; settled: boolean }[] = [];
    const err = await t.app.conversation
      .handle(
        { channel: 'api', userId: 'stalled', text: 'tell me' },
        createCallContext({ onDelta: (text) => deltas.push({ text, settled }) }),
      )
      .finally(() => {
        settled = true;
      })
      .catch((e: unknown) => e as { code: string; details?: Record<string, unknown> });
    expect(deltas.length).toBeGreaterThan(0);
    expect(deltas.every((delta) => !delta.settled)).toBe(true);
    expect('The answer is forty'.startsWith(deltas.map((delta) => delta.text).join(''))).toBe(true);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', details: { partial: true } });
  });

  it('prices the turn and counts it in the event', async () => {
    fake.enqueue({ type: 'text', content: 'priced', usage: { prompt_tokens: 1000, completion_tokens: 100 } });
    await t.post('/v1/messages', { userId: 'payer', text: 'hi' });
    await settle();
    const event = audited(t, 'model.completed').at(-1);
    expect(event.data).toMatchObject({ model: 'openai/gpt-test', inputTokens: 1000, outputTokens: 100 });
    expect(event.data.costUsd).toBeCloseTo((1000 * 1 + 100 * 2) / 1e6);
  });
});
