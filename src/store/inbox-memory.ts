import { ClawmeshError } from '../core/errors.ts';
import { checkLimit } from './checks.ts';
import type { InboxEntry, InboxStore } from './inbox-types.ts';

/** Options of {@link createMemoryInboxStore}. */
export interface MemoryInboxOptions {
  /** Most entries kept; past it the oldest `done` entries go first (default 10,000). */
  maxEntries?: number;
}

/**
 * The in-process inbox, for tests and memory deployments: nothing survives a restart. Reads
 * return copies.
 *
 * @example
 * const inbox = createMemoryInboxStore();
 */
export function createMemoryInboxStore(options: MemoryInboxOptions = {}): InboxStore {
  const maxEntries = options.maxEntries ?? 10_000;
  // Insertion order is creation order: a Map iterates it for free.
  const entries = new Map<string, InboxEntry>();
  let closed = false;
  const open = (what: string) => {
    if (closed) throw new ClawmeshError('UNAVAILABLE', `${what}: the inbox is closed`, { retryable: false });
  };
  const find = (what: string, id: string): InboxEntry => {
    open(what);
    const entry = entries.get(id);
    if (!entry) throw new ClawmeshError('NOT_FOUND', `${what}: no inbox entry "${id}"`);
    return entry;
  };
  const evict = () => {
    if (entries.size <= maxEntries) return;
    for (const [id, entry] of entries) {
      if (entry.status !== 'done') continue;
      entries.delete(id);
      if (entries.size <= maxEntries) return;
    }
  };
  const copy = (entry: InboxEntry): InboxEntry => structuredClone(entry);

  return {
    kind: 'memory',
    async add({ id, channel, message }) {
      open('add inbox entry');
      if (entries.has(id)) return false;
      const now = Date.now();
      entries.set(id, {
        id,
        channel,
        message: jsonCopy(message),
        status: 'pending',
        partsSent: 0,
        attempts: 0,
        createdAt: now,
        updatedAt: now,
      });
      evict();
      return true;
    },
    async get(id) {
      open('get inbox entry');
      const entry = entries.get(id);
      return entry ? copy(entry) : undefined;
    },
    async setReply(id, reply) {
      const entry = find('set inbox reply', id);
      entry.reply = jsonCopy(reply);
      entry.status = 'sending';
      entry.partsSent = 0;
      entry.updatedAt = Date.now();
    },
    async progress(id, update) {
      const entry = find('record inbox progress', id);
      entry.partsSent = update.partsSent;
      entry.attempts = update.attempts;
      if (update.error === undefined) delete entry.error;
      else entry.error = update.error;
      entry.updatedAt = Date.now();
    },
    async finish(id, outcome) {
      const entry = find('finish inbox entry', id);
      entry.status = 'done';
      entry.outcome = outcome;
      delete entry.error;
      entry.updatedAt = Date.now();
    },
    async fail(id, error) {
      const entry = find('fail inbox entry', id);
      entry.status = 'failed';
      entry.error = error;
      entry.updatedAt = Date.now();
    },
    async retry(id) {
      const entry = find('retry inbox entry', id);
      if (entry.status !== 'failed') return false;
      entry.status = entry.reply ? 'sending' : 'pending';
      entry.attempts = 0;
      entry.updatedAt = Date.now();
      return true;
    },
    async list(query = {}) {
      open('list inbox entries');
      checkLimit(query.limit);
      const limit = query.limit ?? 100;
      const found: InboxEntry[] = [];
      for (const entry of [...entries.values()].reverse()) {
        if (found.length >= limit) break;
        if (query.status && entry.status !== query.status) continue;
        if (query.channel && entry.channel !== query.channel) continue;
        found.push(copy(entry));
      }
      return found;
    },
    async unfinished(limit = 1000) {
      open('list unfinished inbox entries');
      checkLimit(limit);
      const found: InboxEntry[] = [];
      for (const entry of entries.values()) {
        if (found.length >= limit) break;
        if (entry.status === 'pending' || entry.status === 'sending') found.push(copy(entry));
      }
      return found;
    },
    async prune(before) {
      open('prune inbox');
      let removed = 0;
      for (const [id, entry] of entries) {
        if (entry.status === 'done' && entry.updatedAt < before) {
          entries.delete(id);
          removed += 1;
        }
      }
      return removed;
    },
    async ping() {
      open('ping inbox');
    },
    async close() {
      closed = true;
    },
  };
}

/** A deep copy through JSON, so the memory inbox refuses what the SQLite one would. */
function jsonCopy<T>(value: T): T {
  try {
    const json = JSON.stringify(value);
    if (json === undefined) throw new TypeError('undefined is not JSON');
    return JSON.parse(json) as T;
  } catch (err) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'an inbox message and reply must be JSON-serializable', {
      cause: err,
    });
  }
}
