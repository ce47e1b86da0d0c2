import { ClawmeshError, type ClawmeshErrorOptions } from '../../core/errors.ts';

/** Keys shorter than this (`none`, `x` for servers that check none) are words, not secrets. */
const MIN_KEY_LENGTH = 8;

/**
 * A provider's failure without the provider's own API key in its message. Some
 * OpenAI-compatible servers quote the key they refused (`Incorrect API key provided: sk-…`),
 * and that message reaches API callers inside `no deployment answered: …`; the key becomes
 * `[redacted]`, as in the logs. The cause is kept as it is (it never leaves the process).
 */
export function withoutKey(error: ClawmeshError, apiKey: string): ClawmeshError {
  if (apiKey.length < MIN_KEY_LENGTH || !error.message.includes(apiKey)) return error;
  const options: ClawmeshErrorOptions = { cause: error.cause, retryable: error.retryable };
  if (error.details) options.details = error.details;
  return new ClawmeshError(error.code, error.message.replaceAll(apiKey, '[redacted]'), options);
}
