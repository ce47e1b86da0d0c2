import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { ClawmeshError } from '../../../core/errors.ts';

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 raw key bytes follow it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const HEX_SIGNATURE = /^[0-9a-f]{128}$/;
const TIMESTAMP = /^\d{1,12}$/;

/**
 * The application's Ed25519 public key from the 64 hex digits the Developer Portal shows as
 * "Public Key" (`DISCORD_PUBLIC_KEY`).
 *
 * @throws ClawmeshError `INVALID_ARGUMENT` when the text is not 32 bytes of hex.
 */
export function discordPublicKey(hex: string): KeyObject {
  const trimmed = hex.trim();
  if (!HEX_KEY.test(trimmed)) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'DISCORD_PUBLIC_KEY must be 64 hex digits (32 bytes)');
  }
  const der = Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(trimmed, 'hex')]);
  return createPublicKey({ key: der, format: 'der', type: 'spki' });
}

/** One signed request as Discord sends it. */
export interface DiscordSignedRequest {
  /** `X-Signature-Ed25519`: 128 lowercase hex digits, as Discord sends it. */
  signature: string | undefined;
  /** `X-Signature-Timestamp`: Unix seconds, as text. */
  timestamp: string | undefined;
  /** The body exactly as received. */
  rawBody: Buffer | string;
}

/** Options of {@link verifyDiscordSignature}. */
export interface DiscordVerifyOptions {
  /**
   * Rejects a timestamp further than this from `now` (replay window), in seconds; `0` turns the
   * check off. Discord does not require one; the interaction id dedupe covers retries anyway.
   */
  maxAgeSeconds?: number;
  /** The current time in epoch milliseconds (tests). */
  now?: number;
}

/**
 * Whether a request carries a valid Discord signature: Ed25519 over `timestamp + raw body`.
 * Never throws; a missing or malformed header is simply not valid.
 *
 * @example
 * const key = discordPublicKey(process.env.DISCORD_PUBLIC_KEY!);
 * if (!verifyDiscordSignature(key, { signature, timestamp, rawBody })) reply.status(401);
 */
export function verifyDiscordSignature(
  publicKey: KeyObject,
  request: DiscordSignedRequest,
  options: DiscordVerifyOptions = {},
): boolean {
  const { signature, timestamp, rawBody } = request;
  if (typeof signature !== 'string' || !HEX_SIGNATURE.test(signature)) return false;
  if (typeof timestamp !== 'string' || !TIMESTAMP.test(timestamp)) return false;
  const maxAge = options.maxAgeSeconds ?? 0;
  if (maxAge > 0) {
    const nowSeconds = (options.now ?? Date.now()) / 1000;
    if (Math.abs(nowSeconds - Number(timestamp)) > maxAge) return false;
  }
  const body = typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody;
  const message = Buffer.concat([Buffer.from(timestamp, 'utf8'), body]);
  try {
    return verify(null, message, publicKey, Buffer.from(signature, 'hex'));
  } catch {
    return false;
  }
}
