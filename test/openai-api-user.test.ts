import { RateLimitError } from 'openai';
import { describe, expect, it } from 'vitest';
import { useOpenAIApiHarness } from './support/openai-api-harness.ts';

/**
 * The request's `user` field: counted by the budgets always, handed to the provider only when
 * `models.forwardUser` is on (`CLAWMESH_MODELS__FORWARD_USER=true`).
 */
describe.each([
  { forward: false, env: {} },
  { forward: true, env: { CLAWMESH_MODELS__FORWARD_USER: 'true' } },
])('the OpenAI-compatible API: the user field, forwardUser $forward', ({ forward, env }) => {
  const h = useOpenAIApiHarness(
    { models: { budgets: { perUserDaily: { tokens: 5000 } }, resilience: { retries: { max: 0 } } } },
    { ...env },
  );

  const ask = (model: string, user?: string, stream = false) =>
    h.client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: `hello from ${user ?? 'nobody'}` }],
      ...(user ? { user } : {}),
      ...(stream ? { stream: true as const } : {}),
    });

  it(forward ? 'forwards it as user and metadata.user_id' : 'keeps it from the providers', async () => {
    await ask('openai/gpt-test', 'alice');
    const streamed = await ask('openai/gpt-test', 'alice', true);
    for await (const _ of streamed as AsyncIterable<unknown>) {
      // read to the end
    }
    await ask('anthropic/claude-test', 'alice');
    const [plain, stream] = h.openai.requests.map((r) => r.body as Record<string, unknown>);
    const claude = h.anthropic.requests[0]!.body as Record<string, unknown>;
    if (forward) {
      expect(plain!.user).toBe('alice');
      expect(stream!.user).toBe('alice');
      expect(claude.metadata).toEqual({ user_id: 'alice' });
    } else {
      expect(plain).not.toHaveProperty('user');
      expect(stream).not.toHaveProperty('user');
      expect(claude).not.toHaveProperty('metadata');
    }
    // A request without one sends none either way.
    await ask('openai/gpt-test');
    expect(h.openai.requests.at(-1)!.body).not.toHaveProperty('user');
    // OpenAI's newer field for the same purpose goes the same way.
    for (const model of ['openai/gpt-test', 'anthropic/claude-test']) {
      await h.client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'hashed' }],
        safety_identifier: 'h-7f3a',
      });
    }
    const openaiBody = h.lastOpenAI<Record<string, unknown>>();
    const claudeBody = h.lastAnthropic<Record<string, unknown>>();
    if (forward) {
      expect(openaiBody.safety_identifier).toBe('h-7f3a');
      expect(claudeBody.metadata).toEqual({ user_id: 'h-7f3a' });
    } else {
      expect(openaiBody).not.toHaveProperty('safety_identifier');
      expect(claudeBody).not.toHaveProperty('metadata');
    }
  });

  it('counts the budgets by it either way', async () => {
    h.openai.enqueue({
      type: 'text',
      content: 'costly',
      usage: { prompt_tokens: 4900, completion_tokens: 200 },
    });
    await ask('openai/gpt-test', 'bob');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const err = await ask('openai/gpt-test', 'bob').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitError);
    expect((err as RateLimitError).message).toMatch(/daily token budget of user .*bob is spent/);
    // Another user of the same key has a budget of their own.
    await expect(ask('openai/gpt-test', 'carol')).resolves.toBeDefined();
  });

  it('counts the budgets by safety_identifier when a request names no user', async () => {
    const askAs = (safety_identifier: string) =>
      h.client.chat.completions.create({
        model: 'openai/gpt-test',
        messages: [{ role: 'user', content: `hello from ${safety_identifier}` }],
        safety_identifier,
      });
    h.openai.enqueue({
      type: 'text',
      content: 'costly',
      usage: { prompt_tokens: 4900, completion_tokens: 200 },
    });
    await askAs('hashed-dave');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const err = await askAs('hashed-dave').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitError);
    expect((err as RateLimitError).message).toMatch(/daily token budget of user .*hashed-dave is spent/);
    // Another end user of the same key, known by their safety identifier, is not blocked by it.
    await expect(askAs('hashed-erin')).resolves.toBeDefined();
  });
});
