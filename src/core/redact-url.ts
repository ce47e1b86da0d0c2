/**
 * A URL without its password (`redis://:***@host:6379`), for messages and logs. A text that is
 * not a URL comes back as it is.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

/** The user and password of a URL inside a text. */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi;

/**
 * A text with the credentials of every URL in it masked (`request to http://***@proxy/v1
 * failed`): for messages that quote a URL they were given, such as a client library's errors.
 */
export function redactUrlsIn(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1***@');
}
