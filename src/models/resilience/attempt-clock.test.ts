import { describe, expect, it } from 'vitest';
import { cancel, type Expiring, schedule, waiting } from './attempt-clock.ts';

/** An entry that logs its name when it expires. */
function entry(name: string, log: string[]): Expiring {
  return {
    expiresAt: 0,
    clockIndex: -1,
    expire: () => log.push(name),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether a ref'd Node timer holds the process open. */
const timersHeld = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('the attempt clock', () => {
  it('expires entries by their time, not by the order they were scheduled', async () => {
    const log: string[] = [];
    const late = entry('late', log);
    const early = entry('early', log);
    const middle = entry('middle', log);
    schedule(late, 90);
    schedule(early, 20);
    schedule(middle, 50);
    const started = performance.now();
    await sleep(35);
    expect(log).toEqual(['early']);
    await sleep(100);
    expect(log).toEqual(['early', 'middle', 'late']);
    expect(performance.now() - started).toBeGreaterThanOrEqual(89);
    expect(waiting()).toBe(0);
  });

  it('never expires an entry cancelled before its time, and expires the others', async () => {
    const log: string[] = [];
    const entries = Array.from({ length: 20 }, (_, i) => entry(`e${i}`, log));
    for (const [i, e] of entries.entries()) schedule(e, 10 + ((i * 7) % 20));
    for (const [i, e] of entries.entries()) if (i % 3 === 0) cancel(e);
    cancel(entries[0] as Expiring);
    await sleep(60);
    expect(log.sort()).toEqual(
      entries
        .map((_, i) => `e${i}`)
        .filter((_, i) => i % 3 !== 0)
        .sort(),
    );
    expect(waiting()).toBe(0);
  });

  it('expires an entry no earlier than a timer of the same length', async () => {
    const log: string[] = [];
    const started = performance.now();
    let expiredAfter = 0;
    const e = entry('e', log);
    e.expire = () => {
      expiredAfter = performance.now() - started;
    };
    schedule(e, 30);
    await sleep(80);
    expect(expiredAfter).toBeGreaterThanOrEqual(29);
  });

  it('holds the process open only while an entry waits', async () => {
    const before = timersHeld();
    const first = entry('first', []);
    const second = entry('second', []);
    schedule(first, 60_000);
    expect(timersHeld()).toBe(before + 1);
    cancel(first);
    expect(timersHeld()).toBe(before);
    // Later than the expiry the timer is still armed for: the same timer holds the process again.
    schedule(second, 120_000);
    expect(timersHeld()).toBe(before + 1);
    cancel(second);
    expect(timersHeld()).toBe(before);
    expect(waiting()).toBe(0);
  });
});
