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

const CODE_FENCE = /```|~~~/;
const CODE_LINE =
  /^(?: {4}|\t)\S|[;{}]\s*$|\b(?:function|def|class|import|return|const|let|SELECT|FROM)\b.*[(=:]/m;
const MULTI_STEP =
  /\b(?:step[- ]by[- ]step|first\b[^.?!]*\bthen|and then|after that|finally|plan|design|architect|analy[sz]e|compare|trade-?offs?|explain why|why does|prove|derive|refactor|debug|optimi[sz]e|implement|migrate|evaluate)\b/gi;
const NUMBERED_ITEM = /^\s*(?:\d+[.)]|[-*])\s+\S/gm;

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
  const text = lastUserText(input.messages);
  const signals: string[] = [];
  let score = 0;

  if (text.length >= 2000) {
    score += 0.35;
    signals.push('very long');
  } else if (text.length >= 600) {
    score += 0.2;
    signals.push('long');
  } else if (text.length >= 200) {
    score += 0.1;
    signals.push('medium length');
  }

  if (CODE_FENCE.test(text) || CODE_LINE.test(text)) {
    score += 0.25;
    signals.push('code');
  }

  const steps = count(MULTI_STEP, text, 3) + (count(NUMBERED_ITEM, text, 3) >= 2 ? 1 : 0);
  if (steps >= 2) {
    score += 0.3;
    signals.push('multi-step');
  } else if (steps === 1) {
    score += 0.15;
    signals.push('multi-step wording');
  }

  let questions = 0;
  for (let i = text.indexOf('?'); i >= 0 && questions < 3; i = text.indexOf('?', i + 1)) questions += 1;
  if (questions >= 3) {
    score += 0.1;
    signals.push('several questions');
  }

  const tools = input.tools?.length ?? 0;
  if (tools >= 5) {
    score += 0.15;
    signals.push(`${tools} tools`);
  } else if (tools > 0) {
    score += 0.1;
    signals.push('tools');
  }
  if (input.messages[input.messages.length - 1]?.role === 'tool') {
    score += 0.05;
    signals.push('tool results');
  }

  return { score: Math.round(Math.min(1, score) * 100) / 100, signals };
}
