import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventTopics } from '../src/bus/events.ts';
import { runAgentLoop } from '../src/conversation/agent-loop.ts';
import { createCallContext } from '../src/core/context.ts';
import type { Client } from '../src/core/contract.ts';
import type { modelsContract } from '../src/core/contracts/models.ts';
import type { skillsContract } from '../src/core/contracts/skills.ts';
import { ClawmeshError } from '../src/core/errors.ts';
import { createBudgets } from '../src/models/accounting/budgets.ts';
import { createMemoryUsageStore } from '../src/models/accounting/usage-store.ts';
import { createOpenAIProvider } from '../src/models/providers/openai/provider.ts';
import { createModelsService } from '../src/models/service.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { createHookRunner } from '../src/plugins/hooks.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import { type FakeOpenAI, startFakeOpenAI } from './support/fake-openai.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function audited(t: TestApp, type: string) {
  return readFileSync(join(t.dir, 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
    .filter((event) => event.type === type);
}

/**
 * Streams `body` and reads its SSE lines until the text is `expected`, then hangs up: the client
 * has the whole answer and leaves before the finishing chunks (and the upstream's usage).
 */
async function readTextThenLeave(url: string, body: unknown, expected: string): Promise<string> {
  const abort = new AbortController();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: abort.signal,
  });
  expect(res.status).toBe(200);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let text = '';
  while (text !== expected) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!line.startsWith('data: {')) continue;
      const chunk = JSON.parse(line.slice('data: '.length));
      text += chunk.choices?.[0]?.delta?.content ?? '';
    }
  }
  abort.abort();
  return text;
}

describe('streams the client leaves before their usage chunk', () => {
  let fake: FakeOpenAI;
  let t: TestApp;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    t = await startTestApp(
      {
        models: {
          budgets: { perUserDaily: { tokens: 100 } },
          prices: { 'openai/gpt-test': { input: 1, output: 2 } },
        },
      },
      {},
      { OPENAI_API_KEY: 'sk-upstream', OPENAI_BASE_URL: fake.url, OPENAI_MODEL: 'gpt-test' },
    );
  });
  afterAll(async () => {
    await t.stop();
    await fake.close();
  });

  it('charges an estimate to the budgets, the metrics and model.completed', async () => {
    const answer = 'one two three four';
    // About 150 tokens of prompt: one abandoned stream spends the user's 100.
    const prompt = 'word '.repeat(120);
    fake.enqueue({
      type: 'text',
      content: answer,
      chunkDelayMs: 60,
      usage: { prompt_tokens: 5000, completion_tokens: 5000 },
    });
    const body = {
      model: 'openai/gpt-test',
      stream: true,
      user: 'leaver',
      messages: [{ role: 'user', content: prompt }],
    };
    expect(await readTextThenLeave(t.url, body, answer)).toBe(answer);
    await sleep(200);

    const next = await t.post('/v1/chat/completions', {
      model: 'openai/gpt-test',
      user: 'leaver',
      messages: [{ role: 'user', content: 'again' }],
    });
    expect(next.status).toBe(429);
    expect(next.body.error.code).toBe('budget_exceeded');
    // Another user is not charged for it.
    const other = await t.post('/v1/chat/completions', {
      model: 'openai/gpt-test',
      user: 'someone-else',
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(other.status).toBe(200);

    const event = audited(t, 'model.completed').find((e) => e.data.userId === 'open:leaver');
    expect(event?.data).toMatchObject({
      model: 'openai/gpt-test',
      deployment: 'openai/gpt-test',
      source: 'api',
      estimated: true,
      outputTokens: Math.ceil(answer.length / 4),
    });
    expect(event.data.inputTokens).toBeGreaterThanOrEqual(prompt.length / 4);
    expect(event.data.inputTokens).toBeLessThan(prompt.length / 4 + 20);
    expect(event.data.costUsd).toBeGreaterThan(0);

    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    const input = metrics.match(
      /clawmesh_model_tokens_total\{model="openai\/gpt-test",direction="input"\} (\d+)/,
    );
    expect(Number(input?.[1])).toBeGreaterThanOrEqual(event.data.inputTokens);
  });
});

describe("the agent loop's streamed model calls", () => {
  let fake: FakeOpenAI;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(() => fake.close());

  it('charges an answer cut by the turn deadline mid-stream, and publishes it as estimated', async () => {
    const budgets = createBudgets({
      limits: { perUserDaily: { tokens: 1_000_000 } },
      store: createMemoryUsageStore(),
    });
    const models = createModelsService({
      providers: [createOpenAIProvider({ apiKey: 'sk-test', baseURL: fake.url, model: 'gpt-test' })],
      defaultModel: 'openai/gpt-test',
      prices: { 'gpt-test': { input: 1, output: 1 } },
      budgets,
    });
    // Four words 120 ms apart: the 300 ms turn ends after some of them, before the usage.
    fake.enqueue({ type: 'text', content: 'alpha beta gamma delta', chunkDelayMs: 120 });
    const emitted: EventTopics['model.completed'][] = [];
    const streamed: string[] = [];
    const ctx = createCallContext({
      timeoutMs: 300,
      userId: 'walker',
      conversationId: 'c-1',
      onDelta: (text) => streamed.push(text),
    });
    const deps = {
      models: models as unknown as Client<typeof modelsContract>,
      skills: {} as Client<typeof skillsContract>,
      events: {
        emit: (type: string, data: unknown) => {
          if (type === 'model.completed') emitted.push(data as EventTopics['model.completed']);
        },
      },
      hooks: createHookRunner({ plugins: [], logger: silentLogger() }),
    };
    const scope = {
      requestId: 'r',
      traceId: 't',
      conversationId: 'c-1',
      agentId: 'a',
      channel: 'test',
      userId: 'walker',
    };
    const prompt = 'tell me the greek letters '.repeat(8);
    const err = await runAgentLoop(
      { messages: [{ role: 'user', content: prompt }], tools: [], maxSteps: 2 },
      deps,
      ctx,
      scope,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClawmeshError);
    expect((err as ClawmeshError).details?.partial).toBe(true);
    expect(streamed.length).toBeGreaterThan(0);
    const chars = streamed.join('').length;

    const expected = { inputTokens: Math.ceil(prompt.length / 4) + 4, outputTokens: Math.ceil(chars / 4) };
    expect(emitted).toHaveLength(1);
    expect(emitted[0]).toMatchObject({
      model: 'openai/gpt-test',
      source: 'conversation',
      conversationId: 'c-1',
      userId: 'walker',
      estimated: true,
      ...expected,
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const usage = await models.usage(ctx);
    expect(usage.userToday?.tokens).toBe(expected.inputTokens + expected.outputTokens);
  });
});
