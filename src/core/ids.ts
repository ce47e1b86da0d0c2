import { createHash, randomFillSync, randomUUID } from 'node:crypto';

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

/**
 * The conversation id of a session key: the same agent, channel and peer always map to the
 * same conversation, so every process agrees on it without a lookup or a race on creation.
 */
export function sessionConversationId(agentId: string, channel: string, peer: string): string {
  const digest = createHash('sha256').update(`${agentId}\u0000${channel}\u0000${peer}`).digest('hex');
  return `c_${digest.slice(0, 24)}`;
}
