/**
 * Bounded collections that stay fast under churn. A `Map`/`Set` that deletes its oldest key on
 * every insert is a trap in V8: deleted slots stay in the table until it is rebuilt, and
 * `keys().next()` walks over all of them, so each eviction costs O(evictions so far).
 */

/** The most recent `capacity` keys seen, for dedupe: `add` returns false for a key already held. */
export interface RecentKeys {
  add(key: string): boolean;
  has(key: string): boolean;
}

/** A {@link RecentKeys} over a ring buffer: the oldest key leaves when a new one comes. */
export function createRecentKeys(size: number): RecentKeys {
  const capacity = Math.max(1, Math.floor(size));
  const held = new Set<string>();
  const ring: Array<string | undefined> = new Array(capacity);
  let next = 0;
  return {
    add(key) {
      if (held.has(key)) return false;
      const oldest = ring[next];
      if (oldest !== undefined) held.delete(oldest);
      ring[next] = key;
      next = (next + 1) % capacity;
      held.add(key);
      return true;
    },
    has: (key) => held.has(key),
  };
}

/**
 * Deletes the oldest entries of an insertion-ordered map so that it holds at most `max`,
 * taking an extra tenth in the same pass so the walk over deleted slots happens rarely.
 */
export function trimOldest<K, V>(map: Map<K, V>, max: number): void {
  if (map.size <= max) return;
  let excess = map.size - Math.floor(max * 0.9);
  for (const key of map.keys()) {
    if (excess-- <= 0) break;
    map.delete(key);
  }
}
