import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compares a secret received with the expected one in constant time (both are hashed first, so
 * neither the content nor the length leaks through timing).
 */
export function secretsEqual(received: string | undefined, expected: string): boolean {
  if (received === undefined) return false;
  const a = createHash('sha256').update(received).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * Compares a received lowercase hex digest with the expected one (as `digest('hex')` gives it) in
 * constant time. Platforms send lowercase hex; anything else (upper case included) is refused, so
 * a changed header never passes.
 */
export function hexDigestsEqual(received: string, expected: string): boolean {
  if (received.length !== expected.length || !/^[0-9a-f]+$/.test(received)) return false;
  return timingSafeEqual(Buffer.from(received, 'hex'), Buffer.from(expected, 'hex'));
}
