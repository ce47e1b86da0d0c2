import { createHash, randomFillSync, randomUUID } from 'node:crypto';
import { trimOldest } from './bounded.ts';

/** A new random request or event id (UUID v4). */
export function newId(): string {
  return randomUUID();
}

// Random bytes are drawn 4 KiB at a time: one system call per few hundred ids, not one per id.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

/** `bytes` random bytes (at most 256) as lowercase hex. */
export function randomHex(bytes: number): string {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return hex;
}

/** The shape of a session's conversation id (see {@link sessionConversationId}). */
const SESSION_CONVERSATION_ID = /^c_[0-9a-f]{24}$/;

/**
 * Whether an id has the shape of a session's derived conversation id. Such ids are reserved for
 * the sessions they derive from: anyone can compute a user's, so a client naming one that is not
 * its own must not be able to create it first and lock its owner out.
 */
export function isSessionConversationId(id: string): boolean {
  return SESSION_CONVERSATION_ID.test(id);
}

/** Session keys hashed lately: a user's next message skips the hash (bounded, oldest first out). */
const sessionIds = new Map<string, string>();
const SESSION_IDS_MAX = 10_000;

/**
 * The conversation id of a session key: the same agent, channel and peer always map to the
 * same conversation, so every process agrees on it without a lookup or a race on creation.
 */
export function sessionConversationId(agentId: string, channel: string, peer: string): string {
  const key = `${agentId}\u0000${channel}\u0000${peer}`;
  let id = sessionIds.get(key);
  if (id === undefined) {
    id = `c_${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;
    sessionIds.set(key, id);
    trimOldest(sessionIds, SESSION_IDS_MAX);
  }
  return id;
}
