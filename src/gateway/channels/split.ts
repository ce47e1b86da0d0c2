/**
 * Splits a reply into parts of at most `limit` characters (UTF-16 code units, as Telegram and
 * Discord count), breaking at the last paragraph break, else line break, else space inside each
 * window, and only mid-word when a word is longer than the limit. Never splits a surrogate pair.
 * Leading and trailing whitespace of each part is trimmed; empty parts are dropped.
 *
 * @example
 * splitText('a'.repeat(5000), 4096); // ['aaa…' (4096), 'aaa…' (904)]
 */
export function splitText(text: string, limit: number): string[] {
  if (!(Number.isInteger(limit) && limit > 0))
    throw new RangeError(`limit must be a positive integer, got ${limit}`);
  const parts: string[] = [];
  let rest = text.trim();
  while (rest.length > limit) {
    const cut = cutPoint(rest, limit);
    const part = rest.slice(0, cut).trimEnd();
    if (part) parts.push(part);
    rest = rest.slice(cut).trimStart();
  }
  if (rest) parts.push(rest);
  return parts;
}

/** Where to cut `text` (longer than `limit`): the end of the chosen break, within the window. */
function cutPoint(text: string, limit: number): number {
  const window = text.slice(0, limit + 1);
  // A break must leave a part worth sending: not in the first quarter of the window.
  const floor = Math.floor(limit / 4);
  for (const separator of ['\n\n', '\n', ' ']) {
    const at = window.lastIndexOf(separator, limit - separator.length + 1);
    if (at > floor) return at + separator.length;
  }
  let cut = limit;
  const code = text.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut -= 1;
  return cut;
}
