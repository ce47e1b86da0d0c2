import type { ChatMessage } from '../core/messages.ts';

/** A rough token count: about four characters a token, plus a little per message. */
export function estimateTokens(message: ChatMessage): number {
  let chars = message.content.length;
  if (message.toolCalls)
    for (const call of message.toolCalls) chars += call.name.length + call.arguments.length;
  return Math.ceil(chars / 4) + 4;
}

/** Inputs of {@link buildContextWindow}. */
export interface ContextWindowInput {
  systemPrompt: string;
  /** Stored history, oldest first. */
  history: readonly ChatMessage[];
  /** The token estimate of each history message, when known (computed when absent). */
  historyTokens?: readonly number[];
  /** The message this turn answers. */
  message: ChatMessage;
  /** Total budget, in estimated tokens. */
  budgetTokens: number;
  /** Tokens already spoken for (tool schemas, the reply). */
  reservedTokens?: number;
}

/**
 * The messages sent to the model: the system prompt and the newest message always, then as
 * many whole earlier turns as fit, newest first. A turn (a user message and the assistant and
 * tool messages after it) is never cut in half, so tool results never lose their call.
 */
export function buildContextWindow(input: ContextWindowInput): ChatMessage[] {
  const system: ChatMessage = { role: 'system', content: input.systemPrompt };
  const { history, historyTokens } = input;
  let left =
    input.budgetTokens - (input.reservedTokens ?? 0) - estimateTokens(system) - estimateTokens(input.message);
  // Walk back from the newest message; `start` is the first message of the oldest whole turn that fits.
  let start = history.length;
  let turnTokens = 0;
  for (let i = history.length - 1; i >= 0; i -= 1) {
    const message = history[i]!;
    turnTokens += historyTokens?.[i] ?? estimateTokens(message);
    if (message.role !== 'user') continue;
    if (turnTokens > left) break;
    left -= turnTokens;
    turnTokens = 0;
    start = i;
  }
  const window: ChatMessage[] = [system];
  for (let i = start; i < history.length; i += 1) window.push(history[i]!);
  window.push(input.message);
  return window;
}
