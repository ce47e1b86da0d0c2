import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI, { AuthenticationError, BadRequestError, NotFoundError, RateLimitError } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';
import { type FakeOpenAI, startFakeOpenAI } from './support/fake-openai.ts';

const KEY = 'test-gateway-key-1';

const stockTool = {
  type: 'function' as const,
  function: {
    name: 'lookupStock',
    description: 'How many units of an item are in stock',
    parameters: { type: 'object', properties: { item: { type: 'string' } }, required: ['item'] },
  },
};

describe('the OpenAI-compatible API, through the official openai client', () => {
  let fake: FakeOpenAI;
  let t: TestApp;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    t = await startTestApp(
      {
        gateway: { port: 0, apiKeys: [KEY] },
        models: {
          tiers: { fast: ['local'], capable: ['openai/gpt-test'] },
          cache: { enabled: true },
          budgets: { perUserDaily: { tokens: 5000 } },
          resilience: { retries: { max: 0 } },
        },
      },
      {},
      { OPENAI_API_KEY: 'sk-upstream-1', OPENAI_BASE_URL: fake.url, OPENAI_MODEL: 'gpt-test' },
    );
    client = new OpenAI({ apiKey: KEY, baseURL: `${t.url}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await t.stop();
    await fake.close();
  });

  it('answers a completion with usage, routed to the upstream', async () => {
    fake.enqueue({ type: 'text', content: 'Paris.', usage: { prompt_tokens: 12, completion_tokens: 2 } });
    const completion = await client.chat.completions.create({
      model: 'openai/gpt-test',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'Capital of France?' }] },
      ],
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe('openai/gpt-test');
    expect(completion.choices[0]?.message).toMatchObject({ role: 'assistant', content: 'Paris.' });
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    expect(completion.usage).toEqual({ prompt_tokens: 12, completion_tokens: 2, total_tokens: 14 });
    const upstream = fake.requests.at(-1)!;
    expect(upstream.headers.authorization).toBe('Bearer sk-upstream-1');
    expect((upstream.body as { model: string }).model).toBe('gpt-test');
  });

  it('streams chunks, then a usage chunk, then [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'tell me something about the weather today please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    const contentChunks = chunks.filter((c) => c.choices[0]?.delta.content);
    expect(contentChunks.length).toBeGreaterThan(2);
    expect(text.length).toBeGreaterThan(10);
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    const finish = chunks.find((c) => c.choices[0]?.finish_reason);
    expect(finish?.choices[0]?.finish_reason).toBe('stop');
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage?.completion_tokens).toBeGreaterThan(0);
    expect(last.usage?.total_tokens).toBe(
      (last.usage?.prompt_tokens ?? 0) + (last.usage?.completion_tokens ?? 0),
    );

    // The same answer, not streamed, is the streamed text joined.
    const whole = await client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'tell me something about the weather today please' }],
      temperature: 0.5,
    });
    expect(whole.choices[0]?.message.content).toBe(text);
  });

  it('streams from the upstream provider through the gateway', async () => {
    fake.enqueue({
      type: 'text',
      content: 'one two three four five six',
      usage: { prompt_tokens: 5, completion_tokens: 6 },
    });
    const stream = await client.chat.completions.create({
      model: 'capable',
      messages: [{ role: 'user', content: 'count to six' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: ChatCompletionChunk['usage'];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('one two three four five six');
    expect(usage).toEqual({ prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 });
    expect((fake.requests.at(-1)!.body as { stream?: boolean }).stream).toBe(true);
  });

  it('names the model that answers in every chunk of a stream, from the first one', async () => {
    const modelsOf = async (model: string, content: string) => {
      const stream = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const models: string[] = [];
      for await (const chunk of stream) models.push(chunk.model);
      return models;
    };
    // A tier served upstream, a tier served by the local model, and a cache hit of the first.
    fake.enqueue({ type: 'text', content: 'one two three' });
    for (const [model, answered] of [
      ['capable', 'openai/gpt-test'],
      ['fast', 'local/default'],
      ['capable', 'openai/gpt-test'],
    ] as const) {
      const models = await modelsOf(model, 'which model are you, in every chunk?');
      expect(models.length).toBeGreaterThan(3);
      expect(new Set(models)).toEqual(new Set([answered]));
    }
  });

  it('ends a stream cut upstream mid-answer with an error event, never as if complete', async () => {
    fake.enqueue({ type: 'cut', content: 'alpha beta gamma delta epsilon zeta', after: 3 });
    const stream = await client.chat.completions.create({
      model: 'capable',
      messages: [{ role: 'user', content: 'greek letters, cut please' }],
      stream: true,
    });
    let text = '';
    let finish: string | null | undefined;
    const err = await (async () => {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        finish ??= chunk.choices[0]?.finish_reason;
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toMatch(/cut/);
    expect(text.length).toBeGreaterThan(0);
    expect('alpha beta gamma delta epsilon zeta'.startsWith(text)).toBe(true);
    expect(text).not.toBe('alpha beta gamma delta epsilon zeta');
    expect(finish ?? null).toBeNull();
  });

  it('passes tools in and tool calls out, and answers from the tool result', async () => {
    const first = await client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'how many red shirts are in stock?' }],
      tools: [stockTool],
    });
    const choice = first.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    const call = choice.message.tool_calls?.[0];
    expect(call?.type).toBe('function');
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(call.function.name).toBe('lookupStock');
    expect(JSON.parse(call.function.arguments)).toMatchObject({ item: expect.stringContaining('red shirt') });

    const second = await client.chat.completions.create({
      model: 'local',
      messages: [
        { role: 'user', content: 'how many red shirts are in stock?' },
        { role: 'assistant', content: null, tool_calls: [call] },
        {
          role: 'tool',
          tool_call_id: call.id,
          content: JSON.stringify({ summary: 'red shirt: 42 units in stock' }),
        },
      ],
      tools: [stockTool],
    });
    expect(second.choices[0]?.message.content).toContain('42');
    expect(second.choices[0]?.finish_reason).toBe('stop');
  });

  it('maps upstream tool calls, streamed, so the client assembles them', async () => {
    fake.enqueue({
      type: 'toolCalls',
      calls: [{ id: 'call_up_1', name: 'lookupStock', arguments: { item: 'blue socks' } }],
    });
    const runner = client.chat.completions.stream({
      model: 'openai/gpt-test',
      messages: [{ role: 'user', content: 'blue socks?' }],
      tools: [stockTool],
    });
    const final = await runner.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(call).toMatchObject({ id: 'call_up_1', type: 'function', function: { name: 'lookupStock' } });
    if (call?.type === 'function')
      expect(JSON.parse(call.function.arguments)).toEqual({ item: 'blue socks' });
    const sentTools = (fake.requests.at(-1)!.body as { tools: { function: { name: string } }[] }).tools;
    expect(sentTools.map((tool) => tool.function.name)).toEqual(['lookupStock']);
  });

  it('answers a repeat from the cache, marked as such', async () => {
    const before = fake.requests.length;
    fake.enqueue({ type: 'text', content: 'cached answer' });
    const request = { model: 'capable', messages: [{ role: 'user' as const, content: 'cache me' }] };
    const first = await client.chat.completions.create(request).withResponse();
    const second = await client.chat.completions.create(request).withResponse();
    expect(fake.requests.length).toBe(before + 1);
    expect(first.response.headers.get('x-clawmesh-cache')).toBe('miss');
    expect(second.response.headers.get('x-clawmesh-cache')).toBe('hit');
    expect(second.data.choices[0]?.message.content).toBe('cached answer');
    expect(
      (second.data as unknown as { clawmesh: { cached: boolean; tier: string } }).clawmesh,
    ).toMatchObject({
      cached: true,
      tier: 'capable',
    });
  });

  it('lists tiers and models in the OpenAI list shape', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(
      expect.arrayContaining(['auto', 'fast', 'capable', 'local/default', 'openai/gpt-test']),
    );
    const fast = await client.models.retrieve('fast');
    expect(fast).toMatchObject({ id: 'fast', object: 'model', owned_by: 'clawmesh-tier' });
  });

  it('refuses a bad key with 401 in OpenAI error shape', async () => {
    const bad = new OpenAI({ apiKey: 'wrong-key-123', baseURL: `${t.url}/v1`, maxRetries: 0 });
    const err = await bad.chat.completions
      .create({ model: 'local', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as AuthenticationError).status).toBe(401);
    expect((err as AuthenticationError).code).toBe('invalid_api_key');
    const raw = await fetch(`${t.url}/v1/models`);
    expect(raw.status).toBe(401);
    expect(await raw.json()).toEqual({
      error: {
        message: 'missing API key: send "Authorization: Bearer <key>"',
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_api_key',
      },
    });
  });

  it('answers an unknown model with 404 model_not_found', async () => {
    const err = await client.chat.completions
      .create({ model: 'gpt-9-ultra', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).code).toBe('model_not_found');
    expect((err as NotFoundError).param).toBe('model');
    expect((err as NotFoundError).message).toContain('gpt-9-ultra');
    const other = await client.chat.completions
      .create({ model: 'nowhere/x', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect((other as NotFoundError).status).toBe(404);
    // Names from callers do not become metric labels: every unknown name counts as `unknown`.
    const metrics = await (
      await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })
    ).text();
    expect(metrics).not.toContain('gpt-9-ultra');
    expect(metrics).not.toContain('nowhere/x');
    expect(metrics).toMatch(/clawmesh_model_errors_total\{target="unknown",code="NOT_FOUND"\} [1-9]/);
  });

  it('answers a malformed request with 400 naming the parameter', async () => {
    const err = await client.chat.completions
      .create({ model: 'local', messages: [] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as BadRequestError).param).toBe('messages');
    const raw = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: '{"model": ',
    });
    expect(raw.status).toBe(400);
    const body = (await raw.json()) as { error: { type: string } };
    expect(body.error.type).toBe('invalid_request_error');
  });

  it('refuses a user over the daily budget with 429 naming the budget', async () => {
    const spender = new OpenAI({ apiKey: KEY, baseURL: `${t.url}/v1`, maxRetries: 0 });
    fake.enqueue({
      type: 'text',
      content: 'expensive',
      usage: { prompt_tokens: 4900, completion_tokens: 200 },
    });
    await spender.chat.completions.create({
      model: 'openai/gpt-test',
      messages: [{ role: 'user', content: 'spend' }],
      user: 'big-spender',
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const err = await spender.chat.completions
      .create({
        model: 'openai/gpt-test',
        messages: [{ role: 'user', content: 'more' }],
        user: 'big-spender',
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitError);
    expect((err as RateLimitError).code).toBe('budget_exceeded');
    expect((err as RateLimitError).message).toMatch(
      /daily token budget of user .*big-spender is spent \(5100 tokens of 5000/,
    );
    expect(Number((err as RateLimitError).headers?.get('retry-after'))).toBeGreaterThan(0);
  });

  it('counts streamed completions in clawmesh_http_requests_total, as plain ones are', async () => {
    const count = async () => {
      const text = await (await fetch(`${t.url}/metrics`)).text();
      const line = text
        .split('\n')
        .find((l) => l.startsWith('clawmesh_http_requests_total{route="/v1/chat/completions",status="200"}'));
      return Number(line?.split(' ')[1] ?? 0);
    };
    const before = await count();
    await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'plain' }] });
    const stream = await client.chat.completions.create({
      model: 'fast',
      stream: true,
      messages: [{ role: 'user', content: 'streamed' }],
    });
    for await (const _ of stream) {
    }
    expect((await count()) - before).toBe(2);
  });

  it('publishes model.completed with the route and source for API calls', async () => {
    await client.chat.completions.create({
      model: 'fast',
      messages: [{ role: 'user', content: 'event please' }],
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const events = readFileSync(join(t.dir, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
      .filter((event) => event.type === 'model.completed' && event.data.source === 'api');
    const last = events.at(-1);
    expect(last.data).toMatchObject({
      model: 'local/default',
      tier: 'fast',
      route: { by: 'tier', reason: 'tier fast requested' },
      cached: false,
      fallbackUsed: false,
      attempts: 1,
      costUsd: 0,
      source: 'api',
    });
  });
});
