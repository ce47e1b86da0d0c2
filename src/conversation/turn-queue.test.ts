import { describe, expect, it } from 'vitest';
import { createKeyedQueue } from './turn-queue.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('createKeyedQueue', () => {
  it('runs work of one key one at a time, in arrival order', async () => {
    const queue = createKeyedQueue();
    const events: string[] = [];
    await Promise.all(
      [30, 10, 20].map((ms, i) =>
        queue.run('k', async () => {
          events.push(`start ${i}`);
          await sleep(ms);
          events.push(`end ${i}`);
        }),
      ),
    );
    expect(events).toEqual(['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);
    expect(queue.activeKeys).toBe(0);
  });

  it('runs different keys concurrently', async () => {
    const queue = createKeyedQueue();
    const started = performance.now();
    await Promise.all(['a', 'b', 'c'].map((key) => queue.run(key, () => sleep(50))));
    expect(performance.now() - started).toBeLessThan(140);
  });

  it('goes on after a failure, and the failure reaches its caller only', async () => {
    const queue = createKeyedQueue();
    const failing = queue.run('k', async () => {
      throw new Error('boom');
    });
    const next = queue.run('k', async () => 'ok');
    await expect(failing).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ok');
  });

  it('fails work still waiting at its deadline with DEADLINE_EXCEEDED, then, and never runs it', async () => {
    const queue = createKeyedQueue();
    const ran: string[] = [];
    const first = queue.run('k', async () => {
      ran.push('first');
      await sleep(300);
    });
    const began = performance.now();
    const expiring = queue.run(
      'k',
      async () => {
        ran.push('expiring');
      },
      Date.now() + 50,
    );
    const patient = queue.run('k', async () => ran.push('patient'), Date.now() + 5000);
    await expect(expiring).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(performance.now() - began).toBeLessThan(250);
    await first;
    await patient;
    expect(ran).toEqual(['first', 'patient']);
    expect(queue.activeKeys).toBe(0);
  });

  it('refuses more than maxWaiting items for one key with RATE_LIMITED', async () => {
    const queue = createKeyedQueue({ maxWaiting: 2 });
    const runs = [1, 2, 3].map(() => queue.run('k', () => sleep(20)));
    await expect(queue.run('k', () => sleep(1))).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      details: { retryAfterSeconds: 1 },
    });
    await Promise.all(runs);
  });
});
