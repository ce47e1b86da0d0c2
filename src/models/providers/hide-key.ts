import { ClawmeshError, type ClawmeshErrorOptions } from '../../core/errors.ts';

/** Keys shorter than this (`none`, `x` for servers that check none) are words, not secrets. */
const MIN_KEY_LENGTH = 8;
/** How many characters of a key's start or end make a masked quote of it recognizable. */
const EDGE = 4;
const WORDS = /(\s+)/;
/** Punctuation a masked key may be quoted with (`…cdef.`), kept after `[redacted]`. */
const PUNCTUATION = new Set(['.', ',', ';', ':', '!', '?', ')', '"', "'", ']']);

/**
 * Whether a word is a masked quote of `apiKey`, as OpenAI prints a key it refused
 * (`sk-proj-****…cdef`): it holds a run of `*` and starts or ends as the key does.
 */
function isMaskedKey(word: string, apiKey: string): boolean {
  if (!word.includes('***')) return false;
  return word.startsWith(apiKey.slice(0, EDGE)) || word.endsWith(apiKey.slice(-EDGE));
}

/** `message` with the key, and any masked quote of it, replaced by `[redacted]`. */
function redact(message: string, apiKey: string): string {
  let out = message.replaceAll(apiKey, '[redacted]');
  if (!out.includes('***')) return out;
  // Word by word (no pattern over the whole message: it is the upstream's text, any length).
  out = out
    .split(WORDS)
    .map((word) => {
      let end = word.length;
      while (end > 0 && PUNCTUATION.has(word[end - 1]!)) end--;
      return isMaskedKey(word.slice(0, end), apiKey) ? `[redacted]${word.slice(end)}` : word;
    })
    .join('');
  return out;
}

/**
 * A provider's failure without the provider's own API key in its message. Some
 * OpenAI-compatible servers quote the key they refused (`Incorrect API key provided: sk-…`),
 * OpenAI itself masked but with its start and last characters (`sk-proj-****…cdef`), and that
 * message reaches API callers inside `no deployment answered: …`; the key becomes
 * `[redacted]`, as in the logs. The cause is kept as it is (it never leaves the process).
 */
export function withoutKey(error: ClawmeshError, apiKey: string): ClawmeshError {
  if (apiKey.length < MIN_KEY_LENGTH) return error;
  const message = redact(error.message, apiKey);
  if (message === error.message) return error;
  const options: ClawmeshErrorOptions = { cause: error.cause, retryable: error.retryable };
  if (error.details) options.details = error.details;
  return new ClawmeshError(error.code, message, options);
}
