/**
 * Bounded collections that stay fast under churn. A `Map`/`Set` that deletes its oldest key on
 * every insert is a trap in V8: deleted slots stay in the table until it is rebuilt, and
 * `keys().next()` walks over all of them, so each eviction costs O(evictions so far).
 */

/**
 * The most recent keys seen, for dedupe: `add` returns false for a key already held. It holds at
 * least the newest `capacity` keys and at most twice that many.
 */
export interface RecentKeys {
  add(key: string): boolean;
  has(key: string): boolean;
}

/**
 * A {@link RecentKeys} in two generations: keys go into the current `Set`; when it holds
 * `capacity` keys it becomes the previous one and the one before is dropped whole. Nothing is
 * ever deleted from a `Set`, so no insert pays for a rebuild of a table full of deleted slots.
 */
export function createRecentKeys(size: number): RecentKeys {
  const capacity = Math.max(1, Math.floor(size));
  let current = new Set<string>();
  let previous = new Set<string>();
  const has = (key: string) => current.has(key) || previous.has(key);
  return {
    add(key) {
      if (has(key)) return false;
      if (current.size >= capacity) {
        previous = current;
        current = new Set();
      }
      current.add(key);
      return true;
    },
    has,
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
