import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';

const KEY = 'rate-limit-key-1';
const OTHER_KEY = 'rate-limit-key-2';

/** `models.apiRateLimit` on the OpenAI-compatible API, in the monolith and in a models-only process. */
describe.each([
  ['clawmesh start', {}],
  ['clawmesh start models', { roles: ['models'] }],
])('the OpenAI-compatible API under models.apiRateLimit (%s)', (_name, roles) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({
      ...roles,
      gateway: { port: 0, apiKeys: [KEY, OTHER_KEY] },
      models: { apiRateLimit: { points: 2, durationSeconds: 60 } },
    });
  });
  afterAll(() => t.stop());

  const complete = (body: Record<string, unknown>, key = KEY) =>
    t.post(
      '/v1/chat/completions',
      { model: 'local', messages: [{ role: 'user', content: 'hi' }], ...body },
      { authorization: `Bearer ${key}` },
    );

  it('refuses a user past the limit with 429 in the OpenAI error shape and Retry-After', async () => {
    expect((await complete({ user: 'alice' })).status).toBe(200);
    expect((await complete({ user: 'alice', stream: true })).status).toBe(200);
    const refused = await complete({ user: 'alice' });
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({
      error: {
        message: 'rate limit reached: 2 requests per 60s',
        type: 'rate_limit_error',
        param: null,
        code: 'rate_limit_exceeded',
      },
    });
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // A stream past the limit is refused before any event, with the same status and body.
    const stream = await complete({ user: 'alice', stream: true });
    expect(stream.status).toBe(429);
    expect(stream.headers.get('content-type')).toMatch(/application\/json/);
    expect(stream.body.error.code).toBe('rate_limit_exceeded');
  });

  it("counts each key, and each of a key's users, apart", async () => {
    expect((await complete({ user: 'bob' })).status).toBe(200);
    expect((await complete({})).status).toBe(200);
    expect((await complete({}, OTHER_KEY)).status).toBe(200);
    expect((await complete({ user: 'alice' }, OTHER_KEY)).status).toBe(200);
  });

  it('does not count requests refused for their key or their body', async () => {
    const noKey = await t.post('/v1/chat/completions', { model: 'local', messages: [] });
    expect(noKey.status).toBe(401);
    for (let i = 0; i < 3; i++) expect((await complete({ user: 'carol', messages: [] })).status).toBe(400);
    expect((await complete({ user: 'carol' })).status).toBe(200);
  });
});

describe('the OpenAI-compatible API without models.apiRateLimit', () => {
  let t: TestApp;
  beforeAll(async () => {
    // The limit of POST /v1/messages is not the API's: a low one here refuses nothing there.
    t = await startTestApp({ gateway: { port: 0, rateLimit: { points: 2, durationSeconds: 60 } } });
  });
  afterAll(() => t.stop());

  it('takes every request, however many one client sends', async () => {
    for (let i = 0; i < 8; i++) {
      const res = await t.post('/v1/chat/completions', {
        model: 'local',
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(res.status).toBe(200);
    }
  });
});
