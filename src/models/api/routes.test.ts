import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventTopics } from '../../bus/events.ts';
import { createMemoryCache } from '../cache/memory.ts';
import { createLocalProvider } from '../providers/local/provider.ts';
import { createModelsService } from '../service.ts';
import { registerOpenAIRoutes } from './routes.ts';

describe('registerOpenAIRoutes on a bare Fastify app (a standalone models role)', () => {
  const app = Fastify();
  const emitted: EventTopics['model.completed'][] = [];
  registerOpenAIRoutes(app, {
    models: createModelsService({ providers: [createLocalProvider()], defaultModel: 'local' }),
    events: {
      emit: (type, data) => {
        if (type === 'model.completed') emitted.push(data as EventTopics['model.completed']);
      },
    },
  });
  afterAll(() => app.close());

  const post = (body: unknown) =>
    app.inject({ method: 'POST', url: '/v1/chat/completions', payload: body as Record<string, unknown> });

  it('is open without API keys and answers in the chat.completion shape', async () => {
    const res = await post({
      model: 'auto',
      messages: [
        { role: 'developer', content: 'be nice' },
        { role: 'user', content: 'hello' },
      ],
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      object: 'chat.completion',
      model: 'local/default',
      choices: [{ index: 0, message: { role: 'assistant' }, finish_reason: 'stop' }],
      clawmesh: { cached: false, tier: 'fast', route: { by: 'difficulty' } },
    });
    expect(body.id).toMatch(/^chatcmpl-/);
    expect(emitted.at(-1)).toMatchObject({ model: 'local/default', source: 'api', tier: 'fast' });
  });

  it('refuses an image for the local model, which has no vision, naming the part', async () => {
    const res = await post({
      model: 'local',
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/y.png' } }] }],
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toEqual({
      message:
        'model local rejected the request: local: the model local/default does not accept images (messages.0.content.0): send images to a vision model (openai or anthropic)',
      type: 'invalid_request_error',
      param: 'messages.0.content.0',
      code: null,
    });
  });

  it('refuses an image for the local model before a stream starts, with a 400 body', async () => {
    const res = await post({
      model: 'local',
      stream: true,
      messages: [
        { role: 'user', content: 'first' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'and this?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          ],
        },
      ],
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json().error).toMatchObject({ type: 'invalid_request_error', param: 'messages.1.content.1' });
  });

  it('refuses n > 1 and an unknown role with 400', async () => {
    expect(
      (await post({ model: 'local', n: 2, messages: [{ role: 'user', content: 'x' }] })).json().error.param,
    ).toBe('n');
    const badRole = await post({ model: 'local', messages: [{ role: 'wizard', content: 'x' }] });
    expect(badRole.statusCode).toBe(400);
    expect(badRole.json().error.type).toBe('invalid_request_error');
  });

  it('refuses a model name longer than 256 characters with a short 400, not an echo of it', async () => {
    const res = await post({ model: 'm'.repeat(20_000), messages: [{ role: 'user', content: 'x' }] });
    expect(res.statusCode).toBe(400);
    const { error } = res.json();
    expect(error).toMatchObject({ type: 'invalid_request_error', param: 'model' });
    expect(error.message.length).toBeLessThan(300);
  });

  it('lists the router, tiers and models', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/models' });
    expect(res.json()).toMatchObject({ object: 'list' });
    expect(res.json().data.map((m: { id: string }) => m.id)).toEqual([
      'auto',
      'fast',
      'capable',
      'local/default',
    ]);
    const one = await app.inject({ method: 'GET', url: '/v1/models/local/default' });
    expect(one.json()).toMatchObject({ id: 'local/default', owned_by: 'local' });
    const missing = await app.inject({ method: 'GET', url: '/v1/models/nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('model_not_found');
  });

  it('streams SSE lines ending in [DONE]', async () => {
    const res = await post({
      model: 'local',
      stream: true,
      messages: [{ role: 'user', content: 'hello there friend' }],
    });
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    const lines = res.body.split('\n\n').filter(Boolean);
    expect(lines.at(-1)).toBe('data: [DONE]');
    const chunks = lines.slice(0, -1).map((line) => JSON.parse(line.slice('data: '.length)));
    expect(chunks.every((chunk) => chunk.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.some((chunk) => 'usage' in chunk)).toBe(false);
    expect(chunks.at(-1).choices[0].finish_reason).toBe('stop');
  });
});

describe('registerOpenAIRoutes with the answer cache on', () => {
  const app = Fastify();
  registerOpenAIRoutes(app, {
    models: createModelsService({
      providers: [createLocalProvider()],
      defaultModel: 'local',
      cache: createMemoryCache({ maxEntries: 10, maxBytes: 1 << 20, ttlMs: 60_000 }),
    }),
  });
  afterAll(() => app.close());

  it('refuses a tool schema nested thousands of levels deep with 400, not a 500', async () => {
    // Written as text: the client's own JSON.stringify would run out of stack first.
    const parameters = `${'{"properties":{"a":'.repeat(5000)}{}${'}}'.repeat(5000)}`;
    const res = await app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { 'content-type': 'application/json' },
      payload: `{"model":"local","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"deep","parameters":${parameters}}}]}`,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({
      type: 'invalid_request_error',
      param: 'tools.0.function.parameters',
    });
    expect(res.json().error.message).toMatch(/nested more than 64 levels deep/);
  });
});
