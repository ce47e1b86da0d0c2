import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../src/bus/conformance.ts';
import { type PauseLog, slowSkill } from './fixtures/slow-skill.ts';
import { startTestApp, type TestApp } from './support/app.ts';

describe('one turn at a time per conversation', () => {
  const log: PauseLog = { starts: [], ends: [] };
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ skills: { load: [] } }, { skills: [slowSkill(log, 40)] });
  });
  afterAll(() => t.stop());

  it('handles ten concurrent messages of one conversation in order while another conversation proceeds', async () => {
    const busy: Array<Promise<Awaited<ReturnType<TestApp['post']>>>> = [];
    let answered = 0;
    for (let n = 1; n <= 10; n += 1) {
      busy.push(
        t.post('/v1/messages', { userId: 'busy', text: `pause for message ${n}` }).finally(() => {
          answered += 1;
        }),
      );
      // The order is the order in which the server took the messages: send the next one only once
      // this one is queued (running, waiting or answered), since requests on separate connections
      // may reach the server out of the order they were sent in on a busy machine.
      await waitFor(
        () => t.app.inFlight + answered >= n,
        5000,
        `message ${n} to reach the conversation's queue`,
      );
    }
    const otherStarted = performance.now();
    const other = await t.post('/v1/messages', { userId: 'other', text: 'pause for message 99' });
    const otherTook = performance.now() - otherStarted;
    const replies = await Promise.all(busy);

    expect(other.status).toBe(200);
    // The other conversation did not wait behind the ten turns (about 400 ms of pauses).
    expect(otherTook).toBeLessThan(300);
    replies.forEach((reply, index) => {
      expect(reply.status).toBe(200);
      expect(reply.body.toolCalls[0].result.n).toBe(index + 1);
    });
    const conversationId = replies[0]!.body.conversationId;
    const starts = log.starts.filter((s) => s.conversationId === conversationId);
    const ends = log.ends.filter((e) => e.conversationId === conversationId);
    expect(starts.map((s) => s.n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (let i = 1; i < starts.length; i += 1) expect(starts[i]!.at).toBeGreaterThanOrEqual(ends[i - 1]!.at);
    const stored = await t.app.services.conversations!.messages(conversationId);
    expect(stored.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(
      Array.from({ length: 10 }, (_, i) => `pause for message ${i + 1}`),
    );
  });
});
