/**
 * The word handling of the local model: tokens with their place in the text, simple plural
 * stripping and a stopword list. Everything here is compiled once, at module load.
 */

/** One word of a text, where it sits and its normalized form. */
export interface Token {
  /** The word as written. */
  readonly raw: string;
  /** Lowercased, plural stripped: what matching compares. */
  readonly stem: string;
  /** Offset of the first character in the text. */
  readonly start: number;
  /** Offset just past the last character. */
  readonly end: number;
  /** Whether the word carries no meaning for matching (`the`, `how`, `please`). */
  readonly stop: boolean;
  /** Whether the word may be trimmed from the edges of an extracted argument. */
  readonly trim: boolean;
  /** Whether the word is a number (`42`, `3.5`, `1,000`). */
  readonly numeric: boolean;
}

const WORD = /\d+(?:[.,]\d+)*|[\p{L}\p{N}]+(?:['’]\p{L}+)*/gu;
const DIGIT_START = /^\d/;

const STOPWORDS: ReadonlySet<string> = new Set(
  (
    'a an the and or but nor not no yes so if then than too very also just only ' +
    'i me my mine we us our ours you your yours he him his she her it its they them their this that ' +
    'these those there here what which who whom whose where when why how many much more most ' +
    'is are am was were be been being do does did done doing have has had having ' +
    'can could would should will shall may might must let lets ' +
    'of in on at to for from by with about into onto over under up down out off via per as ' +
    'all any some each every other such own same few ' +
    'please thanks thank thx ok okay hi hello hey hiya yo dear ' +
    'tell show give get got want wants need needs like know help make use ' +
    'some something anything thing things one ones bit lot ' +
    "i'm it's what's there's that's don't doesn't can't won't isn't aren't i'd i've you're we're"
  ).split(' '),
);

/**
 * Verbs of asking that say nothing about the argument: trimmed from the edges of extracted
 * text but, unlike stopwords, still counted when matching a tool (`findOrder`).
 */
const FILLER: ReadonlySet<string> = new Set(
  'check find look lookup see fetch tell list please kindly quickly now today'.split(' '),
);

/** Lowercases a word and strips a simple English plural (`shirts` → `shirt`, `policies` → `policy`). */
export function stem(word: string): string {
  let w = word.toLowerCase();
  if (w.endsWith("'s") || w.endsWith('’s')) w = w.slice(0, -2);
  const n = w.length;
  if (n <= 3 || w.charCodeAt(n - 1) !== 115 /* s */) return w;
  if (w.endsWith('ies') && n > 4) return `${w.slice(0, -3)}y`;
  if (
    w.endsWith('sses') ||
    w.endsWith('xes') ||
    w.endsWith('zes') ||
    w.endsWith('ches') ||
    w.endsWith('shes')
  ) {
    return w.slice(0, -2);
  }
  if (w.endsWith('ss') || w.endsWith('us') || w.endsWith('is')) return w;
  return w.slice(0, -1);
}

/** Whether a lowercased word (or its stem) is a stopword. */
export function isStopword(lower: string, stemmed: string): boolean {
  return STOPWORDS.has(lower) || STOPWORDS.has(stemmed);
}

/** Splits a text into tokens, in order. */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  WORD.lastIndex = 0;
  for (let m = WORD.exec(text); m !== null; m = WORD.exec(text)) {
    const raw = m[0];
    const lower = raw.toLowerCase();
    const stemmed = stem(lower);
    const numeric = DIGIT_START.test(raw);
    const stop = !numeric && isStopword(lower, stemmed);
    tokens.push({
      raw,
      stem: stemmed,
      start: m.index,
      end: m.index + raw.length,
      stop: stop || (!numeric && raw.length < 2),
      trim: stop || FILLER.has(stemmed),
      numeric,
    });
  }
  return tokens;
}

/** The meaningful stems of an identifier: `inventory__lookupStock` → `inventory`, `lookup`, `stock`. */
export function identifierStems(identifier: string): string[] {
  const spaced = identifier
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .replace(/[_\-.]+/g, ' ');
  return meaningfulStems(spaced);
}

/** The stems of a text's words that are not stopwords. */
export function meaningfulStems(text: string): string[] {
  const stems: string[] = [];
  for (const token of tokenize(text)) {
    if (!token.stop && !token.numeric) stems.push(token.stem);
  }
  return stems;
}
