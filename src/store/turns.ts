import { ClawmeshError } from '../core/errors.ts';
import type { StoredMessage, TurnAlreadyStoredDetails } from './types.ts';

/** Shared by every conversation store adapter: the turn id of an idempotent append. */

/** The longest turn id an append accepts. */
export const MAX_TURN_ID_LENGTH = 512;

/** Throws `INVALID_ARGUMENT` unless `turnId` is absent or a non-empty string of at most 512 characters. */
export function checkTurnId(turnId: unknown): void {
  if (turnId === undefined) return;
  if (typeof turnId !== 'string' || turnId.length === 0 || turnId.length > MAX_TURN_ID_LENGTH) {
    const got = typeof turnId === 'string' ? `a string of ${turnId.length} characters` : typeof turnId;
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `turnId must be a non-empty string of at most ${MAX_TURN_ID_LENGTH} characters, got ${got}`,
    );
  }
}

/** The `CONFLICT` of an append whose turn was already stored, carrying what the first append stored. */
export function turnAlreadyStored(
  conversationId: string,
  turnId: string,
  messages: StoredMessage[],
): ClawmeshError {
  return new ClawmeshError('CONFLICT', `turn "${turnId}" is already stored in "${conversationId}"`, {
    details: {
      reason: 'TURN_ALREADY_STORED',
      conversationId,
      turnId,
      messages,
    } satisfies TurnAlreadyStoredDetails,
  });
}

/**
 * Whether an error is the `CONFLICT` of an append whose turn was already stored; its details
 * then hold the messages the first append stored. Works on an error rebuilt by `fromJSON`.
 *
 * @example
 * try {
 *   stored = await store.append(id, messages, { turnId: message.id });
 * } catch (err) {
 *   if (!isTurnAlreadyStored(err)) throw err;
 *   stored = err.details.messages;
 * }
 */
export function isTurnAlreadyStored(
  err: unknown,
): err is ClawmeshError & { details: TurnAlreadyStoredDetails } {
  return (
    err instanceof ClawmeshError &&
    err.code === 'CONFLICT' &&
    err.details?.reason === 'TURN_ALREADY_STORED' &&
    Array.isArray(err.details.messages)
  );
}
