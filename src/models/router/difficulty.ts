import type { ChatMessage, ToolSpec } from '../../core/messages.ts';

/** How hard a request looks, from 0 (a greeting) to 1 (a long multi-step coding task). */
export interface Difficulty {
  /** The estimate, 0-1, rounded to two decimals. */
  score: number;
  /** The signals that raised it (`long`, `code`, `multi-step`, `tools`, …), for the route's reason. */
  signals: string[];
}

/** The parts of a request the estimate reads. */
export interface DifficultyInput {
  messages: readonly ChatMessage[];
  tools?: readonly ToolSpec[] | undefined;
}

// Every pattern here runs on the caller's text (up to the API's 4 MiB) on every call, so each
// must take linear time. Patterns whose repetition runs on into text the next match attempt
// reads again backtrack quadratically: `^\s*` (whitespace across lines), `word.*[(=:]` and
// `first[^.?!]*then` (a word repeated on one line or in one sentence) held the event loop
// for 14 s on 96 KB of newlines. Those two are scanned by hand below instead.
const CODE_FENCE = /```|~~~/;
const CODE_LINE = /^(?: {4}|\t)\S|[;{}]\s*$/m;
const CODE_WORD = /\b(?:function|def|class|import|return|const|let|SELECT|FROM)\b/g;
/** What ends a code word's search for `(`, `=` or `:`: the end of its line. */
const CODE_MARK_OR_EOL = /[(=:]|[\n\r\u2028\u2029]/g;
const MULTI_STEP =
  /\b(?:first|step[- ]by[- ]step|and then|after that|finally|plan|design|architect|analy[sz]e|compare|trade-?offs?|explain why|why does|prove|derive|refactor|debug|optimi[sz]e|implement|migrate|evaluate)\b/gi;
/** After `first`: a `then` of the same sentence, or the end of the sentence. */
const THEN_OR_STOP = /\bthen\b|[.?!]/gi;
const NUMBERED_ITEM = /^[ \t]*(?:\d+[.)]|[-*])\s+\S/gm;

/**
 * Whether a line has a code word followed by `(`, `=` or `:` (`return x;` is not enough,
 * `const x = 1` is). Each character is read at most twice.
 */
function hasCodeWordLine(text: string): boolean {
  CODE_WORD.lastIndex = 0;
  try {
    for (let word = CODE_WORD.exec(text); word !== null; word = CODE_WORD.exec(text)) {
      CODE_MARK_OR_EOL.lastIndex = CODE_WORD.lastIndex;
      const mark = CODE_MARK_OR_EOL.exec(text);
      if (mark === null) return false;
      const char = mark[0];
      if (char === '(' || char === '=' || char === ':') return true;
      CODE_WORD.lastIndex = CODE_MARK_OR_EOL.lastIndex;
    }
    return false;
  } finally {
    CODE_WORD.lastIndex = 0;
    CODE_MARK_OR_EOL.lastIndex = 0;
  }
}

/**
 * Counts multi-step wording, up to `cap`: the words of {@link MULTI_STEP}, and `first … then`
 * within one sentence (up to its last `then`, as `first\b[^.?!]*\bthen` would match). A sentence
 * is searched for its `then` once, however many `first`s it holds.
 */
function countSteps(text: string, cap: number): number {
  let found = 0;
  // Where the last search after a `first` ended without a `then`: the sentence's end (or the text's).
  let noThenBefore = -1;
  MULTI_STEP.lastIndex = 0;
  try {
    for (let word = MULTI_STEP.exec(text); word !== null && found < cap; word = MULTI_STEP.exec(text)) {
      if (word[0].length !== 5 || word[0].toLowerCase() !== 'first') {
        found += 1;
        continue;
      }
      if (word.index < noThenBefore) continue;
      let lastThen = -1;
      let end = text.length;
      THEN_OR_STOP.lastIndex = MULTI_STEP.lastIndex;
      for (let next = THEN_OR_STOP.exec(text); next !== null; next = THEN_OR_STOP.exec(text)) {
        if (next[0].length === 1) {
          end = next.index;
          break;
        }
        lastThen = THEN_OR_STOP.lastIndex;
      }
      if (lastThen < 0) {
        noThenBefore = end;
        continue;
      }
      found += 1;
      MULTI_STEP.lastIndex = lastThen;
    }
    return found;
  } finally {
    MULTI_STEP.lastIndex = 0;
    THEN_OR_STOP.lastIndex = 0;
  }
}

function lastUserText(messages: readonly ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i -= 1) {
    const message = messages[i]!;
    if (message.role === 'user') return message.content;
  }
  return '';
}

function count(pattern: RegExp, text: string, cap: number): number {
  pattern.lastIndex = 0;
  let found = 0;
  while (found < cap && pattern.exec(text) !== null) found += 1;
  pattern.lastIndex = 0;
  return found;
}

// A request's signals packed in one small integer, so that a router can keep one decision per
// distinct combination: bits 0-1 length class, bit 2 code, bits 3-4 multi-step class, bit 5 several
// questions, bit 6 tool results, bits 7 and up the number of tools.
const LENGTH_MASK = 0b11;
const CODE_BIT = 1 << 2;
const STEPS_SHIFT = 3;
const QUESTIONS_BIT = 1 << 5;
const TOOL_RESULTS_BIT = 1 << 6;
const TOOLS_SHIFT = 7;
const MAX_TOOLS = 1 << 20;

const LENGTHS: readonly { score: number; signal?: string }[] = [
  { score: 0 },
  { score: 0.1, signal: 'medium length' },
  { score: 0.2, signal: 'long' },
  { score: 0.35, signal: 'very long' },
];
const STEPS: readonly { score: number; signal?: string }[] = [
  { score: 0 },
  { score: 0.15, signal: 'multi-step wording' },
  { score: 0.3, signal: 'multi-step' },
];

/**
 * The signals {@link estimateDifficulty} reads, packed in one non-negative integer: equal codes
 * mean equal estimates. No allocation beyond the regular expressions' own work, so a router can
 * look its decision up by code on every call.
 */
export function difficultyCode(input: DifficultyInput): number {
  const text = lastUserText(input.messages);
  let code = text.length >= 2000 ? 3 : text.length >= 600 ? 2 : text.length >= 200 ? 1 : 0;
  if (CODE_FENCE.test(text) || CODE_LINE.test(text) || hasCodeWordLine(text)) code |= CODE_BIT;
  const steps = countSteps(text, 3) + (count(NUMBERED_ITEM, text, 3) >= 2 ? 1 : 0);
  code |= Math.min(steps, 2) << STEPS_SHIFT;
  let questions = 0;
  for (let i = text.indexOf('?'); i >= 0 && questions < 3; i = text.indexOf('?', i + 1)) questions += 1;
  if (questions >= 3) code |= QUESTIONS_BIT;
  if (input.messages[input.messages.length - 1]?.role === 'tool') code |= TOOL_RESULTS_BIT;
  const tools = Math.min(input.tools?.length ?? 0, MAX_TOOLS);
  return code + tools * 2 ** TOOLS_SHIFT;
}

/** The estimate a {@link difficultyCode} stands for: its score and the signals that raised it. */
export function difficultyOfCode(code: number): Difficulty {
  const signals: string[] = [];
  let score = 0;
  const length = LENGTHS[code & LENGTH_MASK]!;
  score += length.score;
  if (length.signal) signals.push(length.signal);
  if (code & CODE_BIT) {
    score += 0.25;
    signals.push('code');
  }
  const steps = STEPS[(code >> STEPS_SHIFT) & 0b11]!;
  score += steps.score;
  if (steps.signal) signals.push(steps.signal);
  if (code & QUESTIONS_BIT) {
    score += 0.1;
    signals.push('several questions');
  }
  const tools = Math.floor(code / 2 ** TOOLS_SHIFT);
  if (tools >= 5) {
    score += 0.15;
    signals.push(`${tools} tools`);
  } else if (tools > 0) {
    score += 0.1;
    signals.push('tools');
  }
  if (code & TOOL_RESULTS_BIT) {
    score += 0.05;
    signals.push('tool results');
  }
  return { score: Math.round(Math.min(1, score) * 100) / 100, signals };
}

/**
 * Estimates a request's difficulty from its last user message and what is in play: length,
 * code, multi-step wording (`step by step`, `first … then`, `compare`, numbered lists), several
 * questions, and tools. Cheap (a few regular expressions over one message) so it can run on
 * every call; it is a heuristic for picking a tier, not a judgement of the content.
 *
 * @example
 * estimateDifficulty({ messages: [{ role: 'user', content: 'hi' }] }); // { score: 0, signals: [] }
 */
export function estimateDifficulty(input: DifficultyInput): Difficulty {
  return difficultyOfCode(difficultyCode(input));
}
