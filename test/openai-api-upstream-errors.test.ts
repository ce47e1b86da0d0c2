import OpenAI, { APIError, BadRequestError } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';
import { type FakeOpenAI, startFakeOpenAI } from './support/fake-openai.ts';

/** OpenAI's answer to a reasoning model asked for a temperature other than 1. */
const TEMPERATURE_REFUSED = {
  error: {
    message:
      "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is supported.",
    type: 'invalid_request_error',
    param: 'temperature',
    code: 'unsupported_value',
  },
};

/**
 * How an upstream's refusal reaches a caller of the OpenAI-compatible API: a request the
 * upstream found invalid is the caller's 400 with the upstream's message; the gateway's own key
 * or configuration refused stays the operator's 503.
 */
describe('the OpenAI-compatible API: upstream refusals', () => {
  let fake: FakeOpenAI;
  let t: TestApp;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    t = await startTestApp(
      {
        models: {
          deployments: {
            first: { provider: 'openai', apiKey: 'sk-first', baseUrl: fake.url, model: 'o3' },
            second: { provider: 'openai', apiKey: 'sk-second', baseUrl: fake.url, model: 'gpt-test' },
          },
          tiers: { pair: ['first', 'second'] },
          resilience: { retries: { max: 0 } },
        },
      },
      {},
      { OPENAI_API_KEY: 'sk-upstream-secret', OPENAI_BASE_URL: fake.url, OPENAI_MODEL: 'o3' },
    );
    client = new OpenAI({ apiKey: 'unused', baseURL: `${t.url}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await t.stop();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  const ask = (model: string, stream = false) =>
    client.chat.completions
      .create({ model, messages: [{ role: 'user', content: 'hi' }], temperature: 0.2, stream })
      .then(async (answer) => {
        if (stream) for await (const _ of answer as AsyncIterable<unknown>);
        return answer;
      })
      .catch((e: unknown) => e);

  it("answers 400 with the upstream's message and param when the upstream refuses the request as invalid", async () => {
    for (const stream of [false, true]) {
      fake.enqueue({ type: 'status', status: 400, body: TEMPERATURE_REFUSED });
      const err = await ask('openai/o3', stream);
      expect(err).toBeInstanceOf(BadRequestError);
      const bad = err as BadRequestError;
      expect(bad.message).toContain("Unsupported value: 'temperature' does not support 0.2");
      expect(bad.message).not.toContain('sk-upstream-secret');
      expect(bad.param).toBe('temperature');
      expect(bad.type).toBe('invalid_request_error');
    }
  });

  it('still moves on to the next deployment after a 400, answering when one can', async () => {
    fake.enqueue({ type: 'status', status: 400, body: TEMPERATURE_REFUSED });
    const answer = await ask('pair');
    expect(answer).toMatchObject({ model: 'openai/gpt-test' });
    expect(fake.requests.map((r) => (r.body as { model: string }).model)).toEqual(['o3', 'gpt-test']);
  });

  it('answers 400 when every deployment of a tier refused the request as invalid', async () => {
    fake.enqueue(
      { type: 'status', status: 400, body: TEMPERATURE_REFUSED },
      {
        type: 'status',
        status: 422,
        body: { error: { message: 'unprocessable', type: 'invalid_request_error' } },
      },
    );
    const err = await ask('pair');
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as BadRequestError).message).toContain('unprocessable');
  });

  it("keeps the gateway's own key or model refused (401, 403, 404) an operator's 503", async () => {
    for (const status of [401, 403, 404]) {
      fake.enqueue({ type: 'status', status });
      const err = await ask('openai/o3');
      expect(err).toBeInstanceOf(APIError);
      expect((err as APIError).status).toBe(503);
      expect((err as APIError).message).toMatch(/refused the request/);
    }
  });

  it('answers 503, not 400, when one deployment refused the request and another was down', async () => {
    fake.enqueue({ type: 'status', status: 400, body: TEMPERATURE_REFUSED }, { type: 'status', status: 500 });
    const err = await ask('pair');
    expect((err as APIError).status).toBe(503);
  });
});
