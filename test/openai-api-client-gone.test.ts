import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';
import { type FakeOpenAI, startFakeOpenAI } from './support/fake-openai.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the fake upstream has received `count` requests. */
async function received(fake: FakeOpenAI, count: number): Promise<void> {
  for (let i = 0; i < 500 && fake.requests.length < count; i++) await sleep(10);
  expect(fake.requests.length).toBeGreaterThanOrEqual(count);
}

/**
 * A client of the OpenAI-compatible API that hangs up is not the upstream's fault: the
 * gateway stops the upstream call (no retry, no fallback) and counts nothing against the
 * deployment's circuit.
 */
describe('the OpenAI-compatible API when the client goes away', () => {
  let fake: FakeOpenAI;
  let t: TestApp;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    t = await startTestApp(
      {
        models: {
          resilience: {
            timeouts: { totalMs: 400, firstTokenMs: 400 },
            retries: { max: 2, baseDelayMs: 10, maxDelayMs: 20 },
            breaker: { failureThreshold: 2, cooldownMs: 60_000 },
          },
        },
      },
      {},
      { OPENAI_API_KEY: 'sk-upstream', OPENAI_BASE_URL: fake.url, OPENAI_MODEL: 'gpt-test' },
    );
    client = new OpenAI({ apiKey: 'unused', baseURL: `${t.url}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await t.stop();
    await fake.close();
  });

  it('stops a plain call, its retries and fallbacks when the client hangs up', async () => {
    const before = fake.requests.length;
    fake.enqueue({ type: 'hang' });
    const abort = new AbortController();
    const call = client.chat.completions.create(
      { model: 'openai/gpt-test', messages: [{ role: 'user', content: 'hi' }] },
      { signal: abort.signal },
    );
    call.catch(() => undefined);
    await received(fake, before + 1);
    abort.abort();
    // Past the 400 ms call timeout and a retry's backoff: a gateway still working would have retried.
    await sleep(900);
    expect(fake.requests.length - before).toBe(1);
  });

  it('leaves the circuit closed when clients leave streams before their first token', async () => {
    const before = fake.requests.length;
    for (let i = 0; i < 3; i++) {
      fake.enqueue({ type: 'text', content: 'late answer', delayMs: 250 });
      const abort = new AbortController();
      const stream = client.chat.completions.create(
        { model: 'openai/gpt-test', messages: [{ role: 'user', content: `hi ${i}` }], stream: true },
        { signal: abort.signal },
      );
      stream.catch(() => undefined);
      // The client leaves once the upstream has the request, before its first byte (250 ms).
      await received(fake, before + i + 1);
      abort.abort();
      await sleep(300);
    }
    // One upstream request per stream: none was retried after its client left.
    expect(fake.requests.length - before).toBe(3);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).not.toMatch(/clawmesh_model_circuit_open\{[^}]*\} 1/);
    // Another user's request still reaches the deployment.
    fake.enqueue({ type: 'text', content: 'Still here.' });
    const completion = await client.chat.completions.create({
      model: 'openai/gpt-test',
      messages: [{ role: 'user', content: 'are you there?' }],
    });
    expect(completion.choices[0]?.message.content).toBe('Still here.');
  });
});
