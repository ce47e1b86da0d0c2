import { createHmac, timingSafeEqual } from 'node:crypto';

const HEADER = /^sha256=([0-9a-f]{64})$/;

/**
 * The `X-Hub-Signature-256` value Meta sends with a webhook: `sha256=` and the lowercase hex
 * HMAC-SHA256 of the raw body keyed with the app secret. Used by tests and fakes.
 */
export function signWhatsAppBody(appSecret: string, rawBody: Buffer | string): string {
  return `sha256=${createHmac('sha256', appSecret).update(rawBody).digest('hex')}`;
}

/**
 * Whether a WhatsApp Cloud API webhook carries a valid `X-Hub-Signature-256` for its raw body,
 * compared in constant time. Never throws; a missing or malformed header (Meta sends lowercase
 * hex, nothing else) is not valid.
 *
 * @example
 * if (!verifyWhatsAppSignature(secret, request.headers['x-hub-signature-256'], rawBody)) reply.status(401);
 */
export function verifyWhatsAppSignature(
  appSecret: string,
  header: string | undefined,
  rawBody: Buffer | string,
): boolean {
  if (appSecret === '' || typeof header !== 'string') return false;
  const match = HEADER.exec(header);
  if (!match?.[1]) return false;
  const expected = createHmac('sha256', appSecret).update(rawBody).digest();
  return timingSafeEqual(expected, Buffer.from(match[1], 'hex'));
}
