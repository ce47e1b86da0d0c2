import { ClawmeshError } from '../core/errors.ts';
import { checkLimit, toStoredMessage } from './checks.ts';
import { checkTurnId, turnAlreadyStored } from './turns.ts';
import type {
  ClaimResult,
  ConversationRecord,
  ConversationStore,
  DedupeStore,
  StoredMessage,
} from './types.ts';

interface Conversation {
  record: ConversationRecord;
  messages: StoredMessage[];
  fence: number | undefined;
  /** Turn id → where the turn's messages start (index into `messages`) and how many there are. */
  turns: Map<string, { start: number; count: number }>;
}

/**
 * The in-process conversation store, for tests and single-process development. Nothing
 * survives a restart. Reads return copies, so callers cannot change what is stored.
 *
 * @example
 * const conversations = createMemoryConversationStore();
 */
export function createMemoryConversationStore(): ConversationStore {
  const conversations = new Map<string, Conversation>();
  let closed = false;
  const open = (what: string): void => {
    if (closed) throw new ClawmeshError('UNAVAILABLE', `${what}: the store is closed`, { retryable: false });
  };

  return {
    kind: 'memory',
    async ensure({ id, agentId, channel, peer }) {
      open('ensure conversation');
      let found = conversations.get(id);
      if (!found) {
        const now = Date.now();
        const record = { id, agentId, channel, peer, createdAt: now, updatedAt: now, messageCount: 0 };
        found = { record, messages: [], fence: undefined, turns: new Map() };
        conversations.set(id, found);
      }
      return { ...found.record };
    },
    async get(id) {
      open('get conversation');
      const found = conversations.get(id);
      return found ? { ...found.record } : undefined;
    },
    async append(id, messages, options = {}) {
      open('append messages');
      const { fence, turnId } = options;
      if (fence !== undefined && !Number.isSafeInteger(fence)) {
        throw new ClawmeshError('INVALID_ARGUMENT', `fence must be an integer, got ${fence}`);
      }
      checkTurnId(turnId);
      const found = conversations.get(id);
      if (!found) throw new ClawmeshError('NOT_FOUND', `no conversation with id "${id}"`);
      const turn = turnId === undefined ? undefined : found.turns.get(turnId);
      if (turn) {
        const first = found.messages.slice(turn.start, turn.start + turn.count);
        throw turnAlreadyStored(
          id,
          turnId!,
          first.map((m) => toStoredMessage(m, m.seq, m.at)),
        );
      }
      if (fence !== undefined && found.fence !== undefined && fence < found.fence) {
        const details = { reason: 'STALE_FENCE', conversationId: id, fence, storedFence: found.fence };
        throw new ClawmeshError('CONFLICT', `stale fence ${fence} < ${found.fence} on "${id}"`, { details });
      }
      if (fence !== undefined) found.fence = Math.max(fence, found.fence ?? fence);
      const at = Date.now();
      const base = found.messages.length;
      const stored = messages.map((message, i) => toStoredMessage(message, base + i + 1, at));
      if (stored.length > 0) {
        if (turnId !== undefined) found.turns.set(turnId, { start: base, count: stored.length });
        found.messages.push(...stored);
        found.record.messageCount = found.messages.length;
        found.record.updatedAt = Math.max(found.record.updatedAt, at);
      }
      return stored.map((m) => toStoredMessage(m, m.seq, m.at));
    },
    async messages(id, limit) {
      open('read messages');
      checkLimit(limit);
      const all = conversations.get(id)?.messages ?? [];
      const newest = limit === undefined ? all : limit === 0 ? [] : all.slice(-limit);
      return newest.map((m) => toStoredMessage(m, m.seq, m.at));
    },
    async recent(limit) {
      open('read recent conversations');
      checkLimit(limit);
      return [...conversations.values()]
        .map((c) => c.record)
        .sort((a, b) => b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .slice(0, limit)
        .map((record) => ({ ...record }));
    },
    async ping() {
      open('ping');
    },
    async close() {
      closed = true;
    },
  };
}

interface DedupeEntry {
  state: 'pending' | 'done';
  /** The value as JSON, as a networked store would hold it; absent while pending. */
  json: string | undefined;
  expiresAt: number;
}

/** Options of {@link createMemoryDedupeStore}. */
export interface MemoryDedupeOptions {
  /** The most keys kept; past it the oldest are forgotten (default 100 000). */
  maxEntries?: number;
  /** How often, at most, a claim sweeps out every expired key (default 1000 ms). */
  sweepIntervalMs?: number;
}

/**
 * The in-process dedupe store. It is bounded: expired keys read as absent and are swept out
 * lazily, and past `maxEntries` the oldest keys are evicted. Values are kept as JSON, so they
 * round-trip the way they do through SQLite or Redis.
 *
 * @example
 * const dedupe = createMemoryDedupeStore({ maxEntries: 10_000 });
 */
export function createMemoryDedupeStore(options: MemoryDedupeOptions = {}): DedupeStore {
  const maxEntries = options.maxEntries ?? 100_000;
  const sweepIntervalMs = options.sweepIntervalMs ?? 1000;
  const entries = new Map<string, DedupeEntry>();
  let lastSweep = 0;
  let closed = false;

  const live = (key: string, now: number): DedupeEntry | undefined => {
    const entry = entries.get(key);
    if (entry && entry.expiresAt <= now) entries.delete(key);
    return entry && entry.expiresAt > now ? entry : undefined;
  };
  // Re-inserting keeps the Map's order oldest-write-first, which eviction relies on.
  const put = (key: string, entry: DedupeEntry): void => {
    entries.delete(key);
    entries.set(key, entry);
    for (const oldest of entries.keys()) {
      if (entries.size <= maxEntries) break;
      entries.delete(oldest);
    }
  };
  const sweep = (now: number): void => {
    if (now - lastSweep < sweepIntervalMs) return;
    lastSweep = now;
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key);
  };
  const check = (what: string, ttlMs?: number): void => {
    if (closed) throw new ClawmeshError('UNAVAILABLE', `${what}: the store is closed`, { retryable: false });
    if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0)) {
      throw new ClawmeshError('INVALID_ARGUMENT', `ttlMs must be a positive number, got ${ttlMs}`);
    }
  };

  return {
    kind: 'memory',
    async claim(key, ttlMs): Promise<ClaimResult> {
      check('claim dedupe key', ttlMs);
      const now = Date.now();
      sweep(now);
      const entry = live(key, now);
      if (!entry) {
        put(key, { state: 'pending', json: undefined, expiresAt: now + ttlMs });
        return { state: 'claimed' };
      }
      if (entry.state === 'pending') return { state: 'pending' };
      return { state: 'done', value: entry.json === undefined ? undefined : JSON.parse(entry.json) };
    },
    async complete(key, value, ttlMs) {
      check('complete dedupe key', ttlMs);
      put(key, { state: 'done', json: toJson(value), expiresAt: Date.now() + ttlMs });
    },
    async release(key) {
      check('release dedupe key');
      if (entries.get(key)?.state === 'pending') entries.delete(key);
    },
    async close() {
      closed = true;
      entries.clear();
    },
  };
}

function toJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (err) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'a dedupe value must be JSON-serializable', { cause: err });
  }
}
