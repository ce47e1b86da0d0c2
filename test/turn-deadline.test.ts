import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClawmeshPlugin } from '../src/plugins/types.ts';
import { startTestApp, type TestApp } from './support/app.ts';

/**
 * A turn answers by its agent's `turnTimeoutMs`, whatever holds it: a plugin hook slower than
 * that (its own timeout is longer), or earlier turns of its conversation it waits behind.
 */
describe('the turn deadline over the HTTP API', () => {
  let t: TestApp;
  const started: string[] = [];
  const slow: ClawmeshPlugin = {
    name: 'slow-moderation',
    timeoutMs: 20_000,
    async onMessageReceived(_ctx, message) {
      started.push(message.text);
      if (message.text.startsWith('slow')) await new Promise((resolve) => setTimeout(resolve, 3000));
      return message;
    },
  };

  beforeAll(async () => {
    t = await startTestApp({ agents: [{ id: 'default', turnTimeoutMs: 700 }] }, { plugins: [slow] });
  });
  afterAll(() => t.stop());

  it('cuts a hook at the turn deadline and answers 504 then, not when the hook ends', async () => {
    const began = performance.now();
    const res = await t.post('/v1/messages', { userId: 'd1', text: 'slow hello' });
    const tookMs = performance.now() - began;
    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe('DEADLINE_EXCEEDED');
    expect(tookMs).toBeLessThan(2500);
  });

  it('frees the conversation for the next message when a turn is cut at its deadline', async () => {
    started.length = 0;
    const first = t.post('/v1/messages', { userId: 'd2', text: 'slow first' });
    // Sent 400 ms in: it waits behind the first turn, which ends at its deadline (about 300 ms
    // from here), and still has 400 ms of its own 700 for its turn on a busy machine.
    await new Promise((resolve) => setTimeout(resolve, 400));
    const began = performance.now();
    const second = await t.post('/v1/messages', { userId: 'd2', text: 'how many red shirts are in stock?' });
    expect(second.status).toBe(200);
    expect(second.body.text).toMatch(/red shirt/i);
    expect(performance.now() - began).toBeLessThan(2500);
    expect((await first).status).toBe(504);
    expect(started).toEqual(['slow first', 'how many red shirts are in stock?']);
  });
});
