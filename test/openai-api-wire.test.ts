import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const OpenAIClient = (url: string) => new OpenAI({ apiKey: 'sk-test', baseURL: `${url}/v1`, maxRetries: 0 });

import { startTestApp, type TestApp } from './support/app.ts';
import { type FakeOpenAI, startFakeOpenAI } from './support/fake-openai.ts';

/**
 * Request bodies other OpenAI clients send to `POST /v1/chat/completions`, beyond what the
 * official JS client writes: what OpenAI's own API accepts must be accepted here too.
 */
describe('the OpenAI-compatible API: request shapes of other clients', () => {
  let fake: FakeOpenAI;
  let t: TestApp;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    t = await startTestApp(
      { models: { resilience: { retries: { max: 0 } } } },
      {},
      { OPENAI_API_KEY: 'sk-upstream-1', OPENAI_BASE_URL: fake.url, OPENAI_MODEL: 'gpt-test' },
    );
  });
  afterAll(async () => {
    await t.stop();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('takes null for optional fields, as OpenAI does (an assistant message echoed back with tool_calls: null)', async () => {
    // The Python client's model_dump(), LiteLLM and many proxies write absent fields as null.
    const res = await t.post('/v1/chat/completions', {
      model: 'openai/gpt-test',
      user: null,
      tools: null,
      tool_choice: null,
      messages: [
        { role: 'system', content: 'Be brief.', name: null },
        { role: 'user', content: 'hi', name: null },
        {
          role: 'assistant',
          content: 'Hello.',
          name: null,
          tool_calls: null,
          function_call: null,
          refusal: null,
          audio: null,
        },
        { role: 'user', content: 'again' },
      ],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.choices[0].message.content).toBe('Hello from the fake OpenAI server.');
    const sent = fake.requests.at(-1)!.body as { messages: unknown[]; tools?: unknown };
    expect(sent.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: 'again' },
    ]);
    expect(sent).not.toHaveProperty('tools');
  });

  it('takes null in a tool definition and a tool call', async () => {
    const res = await t.post('/v1/chat/completions', {
      model: 'openai/gpt-test',
      tools: [
        {
          type: 'function',
          function: { name: 'lookupStock', description: null, parameters: null, strict: null },
        },
      ],
      messages: [
        { role: 'user', content: 'hats?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'lookupStock', arguments: '{}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '42', name: null },
      ],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const sent = fake.requests.at(-1)!.body as { tools: { function: unknown }[] };
    expect(sent.tools[0]?.function).toEqual({
      name: 'lookupStock',
      description: '',
      parameters: { type: 'object', properties: {} },
    });
  });

  it('routes a long message of newlines by difficulty in milliseconds, not minutes', async () => {
    // The difficulty estimate backtracked quadratically on such text: 96 KB held the event loop
    // (every other request of the process) for 14 s, the API's 4 MiB for hours.
    const started = performance.now();
    const res = await t.post('/v1/chat/completions', {
      model: 'auto',
      messages: [{ role: 'user', content: `${'\n'.repeat(150_000)}${'first '.repeat(20_000)}` }],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.clawmesh.route.by).toBe('difficulty');
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('has the local model read tool arguments from a long run of spaces in milliseconds', async () => {
    // Cutting the payload's trailing punctuation backtracked quadratically: 64 KB took 6 s.
    const started = performance.now();
    const res = await t.post('/v1/chat/completions', {
      model: 'local',
      tools: [
        {
          type: 'function',
          function: {
            name: 'openTicket',
            description: 'Open a support ticket',
            parameters: {
              type: 'object',
              properties: { subject: { type: 'string' } },
              required: ['subject'],
            },
          },
        },
      ],
      messages: [{ role: 'user', content: `open a ticket: ${' '.repeat(150_000)}x` }],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.choices[0].message.tool_calls[0].function.name).toBe('openTicket');
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it("takes an assistant message's refusal part, as OpenAI's answers carry them", async () => {
    const res = await t.post('/v1/chat/completions', {
      model: 'openai/gpt-test',
      messages: [
        { role: 'user', content: 'do something bad' },
        { role: 'assistant', content: [{ type: 'refusal', refusal: 'I cannot help with that.' }] },
        { role: 'user', content: 'ok, then say hi' },
      ],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const sent = fake.requests.at(-1)!.body as { messages: unknown[] };
    expect(sent.messages[1]).toEqual({ role: 'assistant', content: 'I cannot help with that.' });
  });

  it('names what is wrong with a text part that has no text', async () => {
    const res = await t.post('/v1/chat/completions', {
      model: 'openai/gpt-test',
      messages: [{ role: 'user', content: [{ type: 'text', value: 'hi' }] }],
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({
      message: 'messages.0.content.0.text: Invalid input: expected string, received undefined',
      param: 'messages.0.content.0.text',
    });
  });

  it("answers OpenAI's paths it does not serve in OpenAI's error shape, as OpenAI does", async () => {
    const openai = OpenAIClient(t.url);
    for (const [method, path] of [
      ['GET', '/v1/chat/completions'],
      ['POST', '/v1/embeddings'],
      ['GET', '/v1/completions?x=1'],
    ] as const) {
      const res = await fetch(`${t.url}${path}`, { method });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({
        error: {
          message: `Invalid URL (${method} ${path.split('?')[0]})`,
          type: 'invalid_request_error',
          param: null,
          code: null,
        },
      });
    }
    // The official client reads it as a NotFoundError with that message.
    await expect(openai.embeddings.create({ model: 'x', input: 'hi' })).rejects.toMatchObject({
      status: 404,
      message: expect.stringContaining('Invalid URL (POST /v1/embeddings)'),
    });
    // Clawmesh's own API keeps its shape.
    const own = await fetch(`${t.url}/v1/nothing`);
    expect(((await own.json()) as { error: unknown }).error).toEqual({
      code: 'NOT_FOUND',
      message: 'no route GET /v1/nothing',
    });
  });

  it("answers a path it cannot decode with a typed 400, not Fastify's own body", async () => {
    for (const path of ['/v1/models/%', '/v1/messages/%zz']) {
      const res = await fetch(`${t.url}${path}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: unknown }).error).toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.any(String),
      });
    }
  });
});
