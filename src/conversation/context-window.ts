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
  let left =
    input.budgetTokens - (input.reservedTokens ?? 0) - estimateTokens(system) - estimateTokens(input.message);
  const kept: ChatMessage[][] = [];
  let turn: ChatMessage[] = [];
  let turnTokens = 0;
  for (let i = input.history.length - 1; i >= 0 && left > 0; i -= 1) {
    const message = input.history[i]!;
    turn.push(message);
    turnTokens += estimateTokens(message);
    if (message.role !== 'user') continue;
    if (turnTokens > left) break;
    left -= turnTokens;
    kept.push(turn.reverse());
    turn = [];
    turnTokens = 0;
  }
  const window: ChatMessage[] = [system];
  for (let i = kept.length - 1; i >= 0; i -= 1) window.push(...kept[i]!);
  window.push(input.message);
  return window;
}
