import { describe, expect, it } from 'vitest';
import { createRecentKeys, trimOldest } from './bounded.ts';

describe('createRecentKeys', () => {
  it('refuses a key it holds, keeps the newest `capacity` keys and forgets the older generation', () => {
    const keys = createRecentKeys(3);
    expect(['a', 'b', 'c'].map((k) => keys.add(k))).toEqual([true, true, true]);
    expect(keys.add('b')).toBe(false);
    expect(keys.add('d')).toBe(true);
    // a, b, c are now the previous generation: still held.
    expect(['a', 'b', 'c', 'd'].every((k) => keys.has(k))).toBe(true);
    expect(['e', 'f'].map((k) => keys.add(k))).toEqual([true, true]);
    expect(keys.add('g')).toBe(true);
    // d, e, f became the previous generation and a, b, c were dropped.
    expect(['a', 'b', 'c'].some((k) => keys.has(k))).toBe(false);
    expect(['d', 'e', 'f', 'g'].every((k) => keys.has(k))).toBe(true);
    expect(keys.add('a')).toBe(true);
  });

  it('always holds at least the newest `capacity` keys', () => {
    const keys = createRecentKeys(50);
    for (let i = 0; i < 1000; i += 1) {
      keys.add(`k${i}`);
      for (let back = 0; back < Math.min(50, i + 1); back += 1) expect(keys.has(`k${i - back}`)).toBe(true);
    }
  });
});

describe('trimOldest', () => {
  it('drops the oldest entries, leaving at most nine tenths of the maximum', () => {
    const map = new Map(Array.from({ length: 25 }, (_, i) => [i, i] as const));
    trimOldest(map, 20);
    expect(map.size).toBe(18);
    expect([...map.keys()][0]).toBe(7);
    trimOldest(map, 20);
    expect(map.size).toBe(18);
  });
});
