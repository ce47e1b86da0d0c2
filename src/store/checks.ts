import { ClawmeshError } from '../core/errors.ts';
import type { ChatMessage } from '../core/messages.ts';
import type { StoredMessage } from './types.ts';

/** Shared by every store adapter: argument checks and the stored copy of a message. */

/** Throws `INVALID_ARGUMENT` unless `limit` is absent or a non-negative integer. */
export function checkLimit(limit: number | undefined): void {
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
    throw new ClawmeshError('INVALID_ARGUMENT', `limit must be a non-negative integer, got ${limit}`);
  }
}

/** Throws `INVALID_ARGUMENT` unless `fence` is absent or an integer. */
export function checkFence(fence: number | undefined): void {
  if (fence !== undefined && !Number.isSafeInteger(fence)) {
    throw new ClawmeshError('INVALID_ARGUMENT', `fence must be an integer, got ${fence}`);
  }
}

/** Copies the known fields of a message with its position and time, leaving absent optional fields absent. */
export function toStoredMessage(message: ChatMessage, seq: number, at: number): StoredMessage {
  const stored: StoredMessage = { role: message.role, content: message.content, seq, at };
  if (message.toolCalls !== undefined) stored.toolCalls = message.toolCalls.map((call) => ({ ...call }));
  if (message.toolCallId !== undefined) stored.toolCallId = message.toolCallId;
  if (message.name !== undefined) stored.name = message.name;
  return stored;
}
