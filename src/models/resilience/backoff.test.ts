import { describe, expect, it } from 'vitest';
import { createBackoff } from './backoff.ts';

function sequence(length: number, maxDelayMs = 1_000): number[] {
  const factory = createBackoff({ maxAttempts: length + 1, baseDelayMs: 100, maxDelayMs });
  let backoff = factory.next(undefined);
  const delays = [backoff.duration];
  while (delays.length < length) {
    backoff = backoff.next(undefined);
    delays.push(backoff.duration);
  }
  return delays;
}

describe('retry backoff', () => {
  const runs = Array.from({ length: 400 }, () => sequence(6));

  it('is jittered: callers failing together do not retry together', () => {
    const firsts = new Set(runs.map((delays) => Math.round(delays[0] ?? 0)));
    expect(firsts.size).toBeGreaterThan(50);
  });

  it('about doubles from one try to the next, on average', () => {
    const uncapped = Array.from({ length: 2_000 }, () => sequence(6, 1_000_000));
    const mean = (i: number) => uncapped.reduce((sum, delays) => sum + (delays[i] ?? 0), 0) / uncapped.length;
    for (const i of [2, 3, 4, 5]) expect(mean(i)).toBeGreaterThan(mean(i - 1) * 1.5);
  });

  it('never waits longer than maxDelayMs nor less than zero', () => {
    for (const delays of runs) {
      for (const delay of delays) {
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(1_000);
      }
    }
    expect(runs.some((delays) => delays[5] === 1_000)).toBe(true);
  });
});
