import type { CachedAnswer, ResponseCache } from './types.ts';

/** Options of {@link createMemoryCache}. */
export interface MemoryCacheOptions {
  /** The most answers kept. */
  maxEntries: number;
  /** The most bytes kept (keys and answers, as UTF-16 JSON text); also the largest single answer. */
  maxBytes: number;
  /** How long an answer is kept, in milliseconds. */
  ttlMs: number;
  /** The clock (tests). */
  now?: () => number;
}

/** A memory cache with its size, for tests and metrics. */
export interface MemoryCache extends ResponseCache {
  readonly kind: 'memory';
  /** Answers held now (expired ones leave when touched or evicted). */
  readonly size: number;
  /** Bytes held now. */
  readonly bytes: number;
}

interface Node {
  key: string;
  answer: CachedAnswer;
  bytes: number;
  expiresAt: number;
  newer: Node | undefined;
  older: Node | undefined;
}

/** A copy the caller may change without changing what the cache holds. */
function copy(answer: CachedAnswer): CachedAnswer {
  return {
    ...answer,
    toolCalls: answer.toolCalls.map((call) => ({ ...call })),
    usage: { ...answer.usage },
  };
}

/**
 * An in-process LRU of answers, bounded by entries and by bytes, each answer kept for a TTL.
 * A map of keys to nodes of a doubly linked list (newest first) makes get, set and eviction
 * O(1); the map is never iterated, so V8's deleted-slot walk never happens.
 *
 * @example
 * const cache = createMemoryCache({ maxEntries: 1000, maxBytes: 16 << 20, ttlMs: 300_000 });
 */
export function createMemoryCache(options: MemoryCacheOptions): MemoryCache {
  const now = options.now ?? Date.now;
  const maxEntries = Math.max(1, Math.floor(options.maxEntries));
  const maxBytes = Math.max(1, Math.floor(options.maxBytes));
  const nodes = new Map<string, Node>();
  let newest: Node | undefined;
  let oldest: Node | undefined;
  let bytes = 0;

  const unlink = (node: Node) => {
    if (node.newer) node.newer.older = node.older;
    else newest = node.older;
    if (node.older) node.older.newer = node.newer;
    else oldest = node.newer;
    node.newer = undefined;
    node.older = undefined;
  };
  const pushNewest = (node: Node) => {
    node.older = newest;
    node.newer = undefined;
    if (newest) newest.newer = node;
    newest = node;
    oldest ??= node;
  };
  const remove = (node: Node) => {
    unlink(node);
    nodes.delete(node.key);
    bytes -= node.bytes;
  };

  return {
    kind: 'memory',
    get size() {
      return nodes.size;
    },
    get bytes() {
      return bytes;
    },
    async get(key) {
      const node = nodes.get(key);
      if (!node) return undefined;
      if (node.expiresAt <= now()) {
        remove(node);
        return undefined;
      }
      if (node !== newest) {
        unlink(node);
        pushNewest(node);
      }
      return copy(node.answer);
    },
    async set(key, answer) {
      // Two bytes a UTF-16 code unit: what V8 holds for strings that are not Latin-1.
      const size = (key.length + JSON.stringify(answer).length) * 2;
      const existing = nodes.get(key);
      if (existing) remove(existing);
      if (size > maxBytes) return;
      while (oldest && (nodes.size >= maxEntries || bytes + size > maxBytes)) remove(oldest);
      const node: Node = {
        key,
        answer: copy(answer),
        bytes: size,
        expiresAt: now() + options.ttlMs,
        newer: undefined,
        older: undefined,
      };
      nodes.set(key, node);
      bytes += size;
      pushNewest(node);
    },
  };
}
