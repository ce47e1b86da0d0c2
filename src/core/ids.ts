import { createHash, randomBytes, randomUUID } from 'node:crypto';

/** A new random request or event id (UUID v4). */
export function newId(): string {
  return randomUUID();
}

/** `n` random bytes as lowercase hex. */
export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/**
 * The conversation id of a session key: the same agent, channel and peer always map to the
 * same conversation, so every process agrees on it without a lookup or a race on creation.
 */
export function sessionConversationId(agentId: string, channel: string, peer: string): string {
  const digest = createHash('sha256').update(`${agentId}\u0000${channel}\u0000${peer}`).digest('hex');
  return `c_${digest.slice(0, 24)}`;
}
