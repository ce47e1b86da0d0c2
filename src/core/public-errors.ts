import type { ClawmeshErrorJSON } from './errors.ts';

/**
 * A URL (`http://10.0.3.7:8081/v1`, `nats://user:pw@nats:4222`) inside a text. The scheme is
 * at most 32 characters: unbounded, every word of a long run like `a.a.a.…` (an upstream's error
 * text) was read to its end looking for `://`, 14 s for 160 KB.
 */
const URL_IN_TEXT = /\b([a-z][a-z0-9+.-]{0,31}):\/\/[^\s"'<>)\]\\]+/gi;
/** The address of a system call's error (`connect ECONNREFUSED 10.0.3.7:8081`, `getaddrinfo ENOTFOUND models`). */
const SYSCALL_TARGET = /\b([a-z]+ E[A-Z]+) [^\s"'<>,;)\]\\]+/g;

/**
 * A server-side error (5xx) as a public API client may see it: the addresses inside it (a
 * service's URL, a model server's, with any credentials) become `<scheme>://…`, and the target
 * of a failed system call (`connect ECONNREFUSED 10.0.3.7:8081`) becomes `…`. They name the
 * deployment's internal network and are for its operators, who have them in the logs.
 *
 * @example
 * publicServerError({ code: 'UNAVAILABLE', message: 'models.complete: http://10.0.3.7:8081 failed' })
 * // → { code: 'UNAVAILABLE', message: 'models.complete: http://… failed' }
 */
export function publicServerError(error: ClawmeshErrorJSON): ClawmeshErrorJSON {
  // Over the JSON text: the message and every string in the details alike. A URL stops at a
  // quote or a backslash, so the text stays valid JSON.
  const json = JSON.stringify(error);
  const scrubbed = hideAddresses(json);
  return scrubbed === json ? error : (JSON.parse(scrubbed) as ClawmeshErrorJSON);
}

/**
 * A text with the addresses in it hidden as {@link publicServerError} hides them: each URL
 * becomes `<scheme>://…`, the target of a failed system call `…`.
 *
 * @example
 * hideAddresses('http://127.0.0.1:8112 failed: connect ECONNREFUSED 127.0.0.1:8112')
 * // → 'http://… failed: connect ECONNREFUSED …'
 */
export function hideAddresses(text: string): string {
  return text.replace(URL_IN_TEXT, (_url, scheme: string) => `${scheme}://…`).replace(SYSCALL_TARGET, '$1 …');
}
