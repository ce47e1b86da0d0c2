import { randomInt } from 'node:crypto';
import { ClawmeshError } from '../../core/errors.ts';
import { CODE_ALPHABET, CODE_LENGTH } from './pairing-types.ts';

/** A new random pairing code (`CODE_LENGTH` characters of `CODE_ALPHABET`, from a CSPRNG). */
export function newPairingCode(): string {
  let code = '';
  for (let i = 0; i < CODE_LENGTH; i += 1) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return code;
}

/** A code as typed by an operator, upper-cased with spaces and dashes removed. */
export function normalizeCode(code: string): string {
  return code.replace(/[\s-]/g, '').toUpperCase();
}

/** Validates a TTL in milliseconds. */
export function checkTtl(ttlMs: number): number {
  if (!(Number.isFinite(ttlMs) && ttlMs > 0)) {
    throw new ClawmeshError('INVALID_ARGUMENT', `ttlMs must be a positive number, got ${ttlMs}`);
  }
  return Math.ceil(ttlMs);
}

/** The errors of an approval that found no live code. */
export const pairingErrors = {
  unknown: (channel: string, code: string) =>
    new ClawmeshError('NOT_FOUND', `no pairing code "${code}" on ${channel} (it may have been used already)`),
  expired: (channel: string, code: string) =>
    new ClawmeshError(
      'DEADLINE_EXCEEDED',
      `the pairing code "${code}" on ${channel} has expired; the sender gets a new one with their next message`,
      { retryable: false },
    ),
  tooMany: (channel: string, max: number) =>
    new ClawmeshError('RATE_LIMITED', `${channel} has ${max} pairing codes waiting for approval already`),
};
