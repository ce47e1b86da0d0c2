import type OpenAI from 'openai';
import { BadRequestError } from 'openai';
import { describe, expect, it } from 'vitest';
import { useOpenAIApiHarness } from './support/openai-api-harness.ts';

const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

/** A user message asking about one or two images, as OpenAI's vision guide writes it. */
const withImages = (
  ...images: OpenAI.ChatCompletionContentPartImage['image_url'][]
): OpenAI.ChatCompletionMessageParam[] => [
  { role: 'system', content: 'Describe images briefly.' },
  {
    role: 'user',
    content: [
      { type: 'text', text: 'What is in this picture?' },
      ...images.map((image_url) => ({ type: 'image_url' as const, image_url })),
    ],
  },
];

/**
 * Image content parts in user messages, sent through the official client: passed on unchanged to
 * an OpenAI-compatible upstream, mapped to image blocks for Anthropic, refused by the local model.
 */
describe('the OpenAI-compatible API: image content parts', () => {
  const h = useOpenAIApiHarness({
    models: {
      cache: { enabled: true },
      resilience: { retries: { max: 0 } },
      tiers: { vision: ['local', 'openai/gpt-test'] },
      deployments: { 'local-tiny': { provider: 'local', model: 'tiny' } },
    },
  });

  const lastOpenAI = () => h.lastOpenAI<{ messages: unknown[] }>();
  const lastAnthropic = () => h.lastAnthropic<{ messages: unknown[] }>();
  const refusal = (promise: Promise<unknown>) => promise.catch((e: unknown) => e) as Promise<BadRequestError>;

  it('passes image parts to an OpenAI-compatible upstream as they were sent, plain and streamed', async () => {
    const messages = withImages(
      { url: 'https://example.com/cat.jpg', detail: 'high' },
      { url: `data:image/png;base64,${PNG}` },
    );
    const answer = await h.client.chat.completions.create({ model: 'openai/gpt-test', messages });
    expect(answer.choices[0]!.message.content).toBeTypeOf('string');
    expect(lastOpenAI().messages).toEqual(messages);

    const stream = await h.client.chat.completions.create({
      model: 'openai/gpt-test',
      messages,
      stream: true,
    });
    for await (const _ of stream) {
      // read to the end
    }
    expect(lastOpenAI().messages).toEqual(messages);
  });

  it('maps image parts to Anthropic image blocks: base64 from a data URL, url from an https URL', async () => {
    await h.client.chat.completions.create({
      model: 'anthropic/claude-test',
      messages: withImages(
        { url: `data:image/png;base64,${PNG}`, detail: 'low' },
        { url: 'https://example.com/cat.jpg' },
      ),
    });
    expect(lastAnthropic().messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in this picture?' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
        ],
      },
    ]);
  });

  it('refuses for Anthropic an inline image of a type it does not take, naming the part', async () => {
    const err = await refusal(
      h.client.chat.completions.create({
        model: 'anthropic/claude-test',
        messages: withImages({ url: 'data:image/bmp;base64,Qk0=' }),
      }),
    );
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.param).toBe('messages.1.content.1');
    expect(err.message).toMatch(/image type image\/bmp is not supported \(jpeg, png, gif or webp\)/);
    expect(h.anthropic.requests).toHaveLength(0);
  });

  it('answers 400 in OpenAI error shape when the local model gets an image, naming the part', async () => {
    const res = await fetch(`${h.app.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'local',
        messages: withImages({ url: 'https://example.com/cat.jpg' }),
      }),
    });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: Record<string, unknown> };
    expect(error).toMatchObject({ type: 'invalid_request_error', param: 'messages.1.content.1', code: null });
    expect(error.message).toMatch(/the model local\/default does not accept images/);
    // A local deployment names its own model.
    const tiny = await refusal(
      h.client.chat.completions.create({
        model: 'local-tiny',
        messages: withImages({ url: 'https://example.com/cat.jpg' }),
      }),
    );
    expect(tiny.message).toMatch(/the model local\/tiny does not accept images \(messages\.1\.content\.1\)/);
  });

  it('moves on from the local model to a vision model of the same tier', async () => {
    const answer = await h.client.chat.completions.create({
      model: 'vision',
      messages: withImages({ url: 'https://example.com/cat.jpg' }),
    });
    expect(answer.model).toBe('openai/gpt-test');
    expect(h.openai.requests).toHaveLength(1);
  });

  it('caches by the images too: another image is another question', async () => {
    const ask = (url: string, detail?: 'low' | 'high') =>
      h.client.chat.completions.create({
        model: 'openai/gpt-test',
        messages: withImages(detail ? { url, detail } : { url }),
      });
    await ask('https://example.com/a.jpg');
    const again = await ask('https://example.com/a.jpg');
    expect((again as unknown as { clawmesh: { cached: boolean } }).clawmesh.cached).toBe(true);
    await ask('https://example.com/b.jpg');
    await ask('https://example.com/a.jpg', 'low');
    expect(h.openai.requests).toHaveLength(3);
  });

  it('refuses malformed parts with a 400 naming their path, calling nobody', async () => {
    const post = async (content: unknown, role = 'user') => {
      const res = await fetch(`${h.app.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'openai/gpt-test', messages: [{ role, content }] }),
      });
      expect(res.status).toBe(400);
      return ((await res.json()) as { error: { param: string; message: string } }).error;
    };
    const text = { type: 'text', text: 'look' };
    expect(await post([text, { type: 'image_url', image_url: { url: 42 } }])).toMatchObject({
      param: 'messages.0.content.1.image_url.url',
      message: expect.stringMatching(/expected string/),
    });
    expect(await post([text, { type: 'image_url', image_url: { url: 'ftp://x/y.png' } }])).toMatchObject({
      param: 'messages.0.content.1.image_url.url',
      message: expect.stringMatching(/http\(s\):\/\/… or data:image/),
    });
    expect(
      await post([{ type: 'image_url', image_url: { url: 'https://x/y.png', detail: 'huge' } }]),
    ).toMatchObject({ param: 'messages.0.content.0.image_url.detail' });
    expect(await post([text, { type: 'video', video: {} }])).toMatchObject({
      param: 'messages.0.content.1.type',
    });
    expect(await post([{ type: 'input_audio', input_audio: { data: '', format: 'wav' } }])).toMatchObject({
      param: 'messages.0.content.0.type',
      message: expect.stringMatching(/input_audio parts are not supported/),
    });
    expect(
      await post([{ type: 'image_url', image_url: { url: 'https://x/y.png' } }], 'system'),
    ).toMatchObject({
      param: 'messages.0.content.0.type',
      message: expect.stringMatching(/a system message takes no image_url parts/),
    });
    expect(h.openai.requests).toHaveLength(0);
  });
});
