import { describe, expect, it } from 'vitest';
import { createRecentKeys, trimOldest } from './bounded.ts';

describe('createRecentKeys', () => {
  it('refuses a key it holds and forgets the oldest beyond its capacity', () => {
    const keys = createRecentKeys(3);
    expect(['a', 'b', 'c'].map((k) => keys.add(k))).toEqual([true, true, true]);
    expect(keys.add('b')).toBe(false);
    expect(keys.add('d')).toBe(true);
    expect(keys.has('a')).toBe(false);
    expect(keys.has('d')).toBe(true);
    expect(keys.add('a')).toBe(true);
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
