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
