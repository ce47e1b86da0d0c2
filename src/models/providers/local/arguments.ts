import { type PropertyInfo, readProperties } from './schema.ts';
import { identifierStems, stem, type Token } from './words.ts';

const COLON = /:\s/;
// Linear time on any text (it is the caller's, up to MiBs): a quote's body stops at the next
// opening quote too, so “ after “ with no ” is not searched to the end once per “.
const QUOTED = /"([^"]+)"|“([^”“]+)”|(?:^|[\s(:])'([^']+)'(?=$|[\s.,;:!?)])/g;
/** Characters {@link withoutTrailingPunctuation} cuts off the end. */
const TRAILING = /[\s.?!,;]/;
const THOUSANDS = /^\d{1,3}(?:,\d{3})+(?:\.\d+)?$/;
const SPACE = /\s/;

/** Where the payload of `command: payload` starts, or `Infinity` when there is none. */
export function payloadStart(text: string): number {
  const at = text.search(COLON);
  return at < 0 ? Number.POSITIVE_INFINITY : at + 1;
}

/**
 * `text` without the spaces and `.?!,;` at its end. By hand: `/[\s.?!,;]+$/` backtracks
 * quadratically on a long run of them that does not end the text (64 KB of spaces: 6 s).
 */
function withoutTrailingPunctuation(text: string): string {
  let end = text.length;
  while (end > 0 && TRAILING.test(text[end - 1]!)) end--;
  return text.slice(0, end);
}

function quotedSegments(text: string): string[] {
  if (text.indexOf('"') < 0 && text.indexOf("'") < 0 && text.indexOf('“') < 0) return [];
  const found: string[] = [];
  QUOTED.lastIndex = 0;
  for (let m = QUOTED.exec(text); m !== null; m = QUOTED.exec(text)) {
    const value = (m[1] ?? m[2] ?? m[3] ?? '').trim();
    if (value) found.push(value);
  }
  return found;
}

function numberOf(token: Token, text: string, integer: boolean): number {
  const raw = THOUSANDS.test(token.raw) ? token.raw.replaceAll(',', '') : token.raw.replace(',', '.');
  let value = Number.parseFloat(raw);
  const before = token.start - 1;
  if (text[before] === '-' && (before === 0 || SPACE.test(text[before - 1] ?? ' '))) value = -value;
  return integer ? Math.trunc(value) : value;
}

/** The message with the tool's words, the used tokens and the edge stopwords left out. */
function remainingText(
  text: string,
  tokens: readonly Token[],
  matched: ReadonlySet<string>,
  used: Set<number>,
): string {
  const parts: string[] = [];
  let first = -1;
  let last = -1;
  const flush = (): void => {
    while (first >= 0 && first <= last && tokens[first]!.trim) first++;
    while (last >= first && first >= 0 && tokens[last]!.trim) last--;
    if (first >= 0 && first <= last) parts.push(text.slice(tokens[first]!.start, tokens[last]!.end));
    first = -1;
    last = -1;
  };
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (used.has(i) || (!token.stop && matched.has(token.stem))) {
      flush();
      continue;
    }
    if (first < 0) first = i;
    last = i;
  }
  flush();
  return parts.join(' ');
}

function findEnum(prop: PropertyInfo, tokens: readonly Token[], used: Set<number>): unknown {
  const values = prop.enumValues ?? [];
  for (let i = 0; i < tokens.length; i++) {
    if (used.has(i)) continue;
    const token = tokens[i]!;
    for (const value of values) {
      const text = String(value);
      if (text.toLowerCase() === token.raw.toLowerCase() || stem(text) === token.stem) {
        used.add(i);
        return value;
      }
    }
  }
  return undefined;
}

function findFlag(prop: PropertyInfo, tokens: readonly Token[], used: Set<number>): boolean {
  const wanted = identifierStems(prop.name);
  if (wanted.length === 0) return false;
  const hits: number[] = [];
  for (const s of wanted) {
    const at = tokens.findIndex((t, i) => !used.has(i) && t.stem === s);
    if (at < 0) return false;
    hits.push(at);
  }
  for (const at of hits) used.add(at);
  return true;
}

/**
 * Fills a tool's arguments from a message, guided by its JSON Schema: enums, flags and numbers
 * first, then strings (quoted text, then the text after a colon, then the words left over).
 * Optional properties are set only when the message supplies them.
 */
export function extractArguments(
  parameters: Record<string, unknown>,
  text: string,
  tokens: readonly Token[],
  matched: ReadonlySet<string>,
): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  const used = new Set<number>();
  const strings: PropertyInfo[] = [];
  for (const prop of readProperties(parameters)) {
    if (prop.enumValues) {
      const value = findEnum(prop, tokens, used);
      if (value !== undefined) args[prop.name] = value;
    } else if (prop.kind === 'boolean') {
      const flag = findFlag(prop, tokens, used);
      if (flag || prop.required) args[prop.name] = flag;
    } else if (prop.kind === 'number' || prop.kind === 'integer') {
      const at = tokens.findIndex((t, i) => t.numeric && !used.has(i));
      if (at >= 0) {
        used.add(at);
        args[prop.name] = numberOf(tokens[at]!, text, prop.kind === 'integer');
      }
    } else if (prop.kind === 'string') {
      strings.push(prop);
    }
  }
  if (strings.length === 0) return args;

  const quotes = quotedSegments(text);
  let nextQuote = 0;
  let primaryDone = false;
  for (const prop of strings.sort((a, b) => Number(b.required) - Number(a.required))) {
    let value: string | undefined = quotes[nextQuote];
    if (value !== undefined) nextQuote++;
    else if (prop.required && !primaryDone) {
      const from = payloadStart(text);
      const payload = from < text.length ? withoutTrailingPunctuation(text.slice(from)).trim() : '';
      value = payload || remainingText(text, tokens, matched, used);
    }
    if (prop.required) primaryDone = true;
    if (value) args[prop.name] = value;
  }
  return args;
}
