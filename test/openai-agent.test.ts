import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';
import { type FakeOpenAI, startFakeOpenAI } from './support/fake-openai.ts';

describe('the default agent with OPENAI_API_KEY set', () => {
  let fake: FakeOpenAI;
  let t: TestApp;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
    t = await startTestApp(
      {},
      {},
      { OPENAI_API_KEY: 'sk-test-1234', OPENAI_BASE_URL: fake.url, OPENAI_MODEL: 'gpt-test' },
    );
  });
  afterAll(async () => {
    await t.stop();
    await fake.close();
  });

  it('uses the OpenAI-compatible server for the turn, with the skills as tools', async () => {
    fake.enqueue(
      {
        type: 'toolCalls',
        calls: [{ id: 'call_a', name: 'inventory__lookupStock', arguments: { item: 'red shirt' } }],
      },
      { type: 'text', content: 'We have 42 red shirts.' },
    );
    const res = await t.post('/v1/messages', { userId: 'oa', text: 'do you have red shirts?' });
    expect(res.status).toBe(200);
    expect(res.body.text).toBe('We have 42 red shirts.');
    expect(res.body.toolCalls[0]).toMatchObject({ skill: 'inventory', tool: 'lookupStock', ok: true });

    const [first, second] = fake.requests.slice(-2) as Array<{
      headers: Record<string, string>;
      body: Record<string, unknown>;
    }>;
    expect(first!.headers.authorization).toBe('Bearer sk-test-1234');
    expect(first!.body.model).toBe('gpt-test');
    const tools = first!.body.tools as Array<{ function: { name: string } }>;
    expect(tools.map((tool) => tool.function.name)).toContain('inventory__lookupStock');
    const messages = second!.body.messages as Array<{ role: string; tool_call_id?: string; content: string }>;
    const toolMessage = messages.find((m) => m.role === 'tool');
    expect(toolMessage?.tool_call_id).toBe('call_a');
    expect(JSON.parse(toolMessage!.content)).toMatchObject({ units: 42 });
  });

  it('sends a bad tool argument back to the model as a tool error, never a crash', async () => {
    fake.enqueue(
      {
        type: 'toolCalls',
        calls: [{ id: 'call_b', name: 'inventory__lookupStock', arguments: { item: 7 } }],
      },
      { type: 'text', content: 'Sorry, I could not look that up.' },
    );
    const res = await t.post('/v1/messages', { userId: 'oa2', text: 'stock?' });
    expect(res.status).toBe(200);
    expect(res.body.toolCalls[0]).toMatchObject({ ok: false });
    expect(res.body.toolCalls[0].error).toMatch(/item/);
    const last = fake.requests.at(-1) as { body: { messages: Array<{ role: string; content: string }> } };
    const toolMessage = last.body.messages.find((m) => m.role === 'tool');
    expect(JSON.parse(toolMessage!.content).error.code).toBe('INVALID_ARGUMENT');
  });

  it('answers 503, not 401, when the model server rejects the gateway key', async () => {
    fake.enqueue({ type: 'status', status: 401 });
    const res = await t.post('/v1/messages', { userId: 'oa4', text: 'hello' });
    expect(res.status).toBe(503);
    expect(res.body.error.message).toMatch(/refused the request/);
  });

  it("answers 503, not 400, when the model server refuses the agent's own request as invalid", async () => {
    // The agent built that request (its model, history, tools), not the user who wrote the text.
    fake.enqueue({
      type: 'status',
      status: 400,
      body: { error: { message: 'context_length_exceeded', type: 'invalid_request_error' } },
    });
    const res = await t.post('/v1/messages', { userId: 'oa5', text: 'hello' });
    expect(res.status).toBe(503);
    expect(res.body.error.message).toMatch(/context_length_exceeded/);
  });

  it('answers 503 UNAVAILABLE when the model server keeps failing (after its retries)', async () => {
    fake.reset();
    fake.setDefault({ type: 'status', status: 500 });
    const before = fake.requests.length;
    const res = await t.post('/v1/messages', { userId: 'oa3', text: 'hello' });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('UNAVAILABLE');
    // A 5xx is retried before the call gives up.
    expect(fake.requests.length - before).toBeGreaterThan(1);
    fake.reset();
  });

  // Last: the rate-limited deployment is skipped until its Retry-After.
  it('passes a model rate limit on as 429 with Retry-After', async () => {
    fake.enqueue({ type: 'status', status: 429, headers: { 'retry-after': '7' } });
    const res = await t.post('/v1/messages', { userId: 'oa5', text: 'hello' });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
  });
});

describe('a model server that cannot be reached', () => {
  it('answers 503 without its address, which stays in the operator logs', async () => {
    // A port nothing listens on, with credentials in the URL as a proxy would have them.
    const t = await startTestApp(
      {},
      {},
      { OPENAI_API_KEY: 'sk-test-1234', OPENAI_BASE_URL: 'http://user:pw-secret@127.0.0.1:1/v1' },
    );
    try {
      const res = await t.post('/v1/messages', { userId: 'gone', text: 'hello' });
      expect(res.status).toBe(503);
      const text = JSON.stringify(res.body);
      expect(text).not.toMatch(/127\.0\.0\.1|pw-secret/);
      expect(res.body.error.message).toMatch(/http:\/\/…/);
    } finally {
      await t.stop();
    }
  });
});
