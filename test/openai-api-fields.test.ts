import type OpenAI from 'openai';
import { BadRequestError } from 'openai';
import { describe, expect, it } from 'vitest';
import { useOpenAIApiHarness } from './support/openai-api-harness.ts';

type Params = OpenAI.ChatCompletionCreateParamsNonStreaming;

/**
 * The rest of OpenAI's chat-completions request, as the official client sends it: each field
 * works (reaches the upstream, or is harmless to drop) or is refused with a 400 naming it —
 * never dropped while the answer looks as if it had been honoured.
 */
describe('the OpenAI-compatible API: the other request fields', () => {
  const h = useOpenAIApiHarness({
    models: { cache: { enabled: true }, resilience: { retries: { max: 0 } } },
  });

  const create = (model: string, extra: Partial<Params>, content = 'hello') =>
    h.client.chat.completions.create({ model, messages: [{ role: 'user', content }], ...extra } as Params);
  const lastOpenAI = () => h.lastOpenAI<Record<string, unknown>>();
  const lastAnthropic = () => h.lastAnthropic<Record<string, unknown>>();

  it('passes reasoning_effort, verbosity and logit_bias to an OpenAI-compatible upstream', async () => {
    await create('openai/gpt-test', {
      reasoning_effort: 'high',
      verbosity: 'low',
      logit_bias: { '50256': -100 },
      max_completion_tokens: 77,
    });
    expect(lastOpenAI()).toMatchObject({
      reasoning_effort: 'high',
      verbosity: 'low',
      logit_bias: { '50256': -100 },
      max_tokens: 77,
    });
  });

  it('maps reasoning_effort to output_config.effort for anthropic, and refuses logit_bias there', async () => {
    await create('anthropic/claude-test', { reasoning_effort: 'medium' });
    expect(lastAnthropic()).toMatchObject({ output_config: { effort: 'medium' } });
    await create('anthropic/claude-test', {
      reasoning_effort: 'minimal',
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'x', schema: { type: 'object', properties: {} } },
      },
    });
    expect(lastAnthropic()).toMatchObject({
      output_config: { effort: 'low', format: { type: 'json_schema' } },
    });
    const calls = h.anthropic.requests.length;
    const err = await create('anthropic/claude-test', { logit_bias: { '1': 5 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as BadRequestError).param).toBe('logit_bias');
    expect(h.anthropic.requests).toHaveLength(calls);
  });

  it("passes each message's participant name to an OpenAI-compatible upstream, and not to anthropic", async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'be brief', name: 'house_rules' },
      { role: 'user', content: 'hi', name: 'alice' },
      { role: 'assistant', content: 'hello alice', name: 'helper' },
      { role: 'user', content: 'and me?', name: 'bob' },
    ];
    await h.client.chat.completions.create({ model: 'openai/gpt-test', messages });
    expect(lastOpenAI().messages).toEqual([
      { role: 'system', content: 'be brief', name: 'house_rules' },
      { role: 'user', content: 'hi', name: 'alice' },
      { role: 'assistant', content: 'hello alice', name: 'helper' },
      { role: 'user', content: 'and me?', name: 'bob' },
    ]);
    // The same conversation said by others is another request: not answered from the cache.
    const before = h.openai.requests.length;
    await h.client.chat.completions.create({
      model: 'openai/gpt-test',
      messages: messages.map((m) => (m.role === 'user' ? { ...m, name: 'carol' } : m)),
    });
    expect(h.openai.requests).toHaveLength(before + 1);
    // The Messages API has no participant names: the messages go without them.
    await h.client.chat.completions.create({ model: 'anthropic/claude-test', messages });
    expect(JSON.stringify(lastAnthropic())).not.toMatch(/house_rules|"bob"|"name"/);
  });

  it('never answers from the cache a request that differs in them', async () => {
    await create('openai/gpt-test', {}, 'same');
    await create('openai/gpt-test', {}, 'same');
    expect(h.openai.requests).toHaveLength(1);
    await create('openai/gpt-test', { reasoning_effort: 'low' }, 'same');
    await create('openai/gpt-test', { verbosity: 'high' }, 'same');
    await create('openai/gpt-test', { logit_bias: { '7': 1 } }, 'same');
    expect(h.openai.requests).toHaveLength(4);
  });

  it('takes the fields that change nothing in the answer, and sends them nowhere', async () => {
    const answer = await create('openai/gpt-test', {
      metadata: { team: 'search' },
      store: false,
      modalities: ['text'],
      service_tier: 'auto',
      prompt_cache_key: 'k1',
      safety_identifier: 'hash-1',
      prediction: { type: 'content', content: 'hello' },
      stream_options: null,
      n: 1,
    });
    expect(answer.choices).toHaveLength(1);
    for (const field of [
      'metadata',
      'store',
      'modalities',
      'service_tier',
      'prompt_cache_key',
      'prediction',
    ]) {
      expect(lastOpenAI()).not.toHaveProperty(field);
    }
  });

  it('refuses what it cannot give with a 400 naming the field, calling nobody', async () => {
    const cases: [Partial<Params>, string, RegExp][] = [
      [{ n: 2 }, 'n', /only n = 1/],
      [{ store: true }, 'store', /does not store completions/],
      [{ modalities: ['text', 'audio'] }, 'modalities', /audio output is not supported/],
      [{ audio: { voice: 'alloy', format: 'mp3' } }, 'audio', /audio output is not supported/],
      [
        { functions: [{ name: 'f', parameters: { type: 'object', properties: {} } }] },
        'functions',
        /send tools instead/,
      ],
      [{ function_call: 'auto' }, 'function_call', /send tool_choice instead/],
      [{ web_search_options: {} }, 'web_search_options', /web search is not supported/],
      [{ moderation: { model: 'omni-moderation-latest' } }, 'moderation', /moderation is not supported/],
      [{ reasoning_effort: 'extreme' as 'high' }, 'reasoning_effort', /Invalid option/],
      [{ logit_bias: { hello: 1 } }, 'logit_bias.hello', /Invalid key/],
      [{ metadata: { k: 1 as unknown as string } }, 'metadata.k', /expected string/],
    ];
    for (const [extra, param, message] of cases) {
      const err = await create('openai/gpt-test', extra).catch((e: unknown) => e);
      expect(err, param).toBeInstanceOf(BadRequestError);
      expect((err as BadRequestError).param, param).toBe(param);
      expect((err as BadRequestError).message, param).toMatch(message);
    }
    expect(h.openai.requests).toHaveLength(0);
  });

  it('refuses the deprecated function messages of a history, naming them', async () => {
    const history = [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: null, function_call: { name: 'weather', arguments: '{}' } },
      { role: 'function', name: 'weather', content: '{"sunny":true}' },
    ] as OpenAI.ChatCompletionMessageParam[];
    const err = await create('openai/gpt-test', {
      messages: [history[0]!, history[1]!, { role: 'user', content: 'and?' }],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as BadRequestError).param).toBe('messages.1.function_call');
    expect((err as BadRequestError).message).toMatch(/send tool_calls instead/);
    const fn = await create('openai/gpt-test', { messages: [history[0]!, history[2]!] }).catch(
      (e: unknown) => e,
    );
    expect(fn).toBeInstanceOf(BadRequestError);
    expect((fn as BadRequestError).param).toMatch(/^messages\.1/);
    expect((fn as BadRequestError).message).toMatch(/role/);
    expect(h.openai.requests).toHaveLength(0);
  });
});
