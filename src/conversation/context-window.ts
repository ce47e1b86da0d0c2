import type { ChatMessage } from '../core/messages.ts';

const estimates = new WeakMap<ChatMessage, number>();

/**
 * A rough token count: about four characters a token, plus a little per message. Remembered
 * per message object, since the same history is measured again on every turn.
 */
export function estimateTokens(message: ChatMessage): number {
  const known = estimates.get(message);
  if (known !== undefined) return known;
  let chars = message.content.length;
  if (message.toolCalls) for (const call of message.toolCalls) chars += call.name.length + call.arguments.length;
  const tokens = Math.ceil(chars / 4) + 4;
  estimates.set(message, tokens);
  return tokens;
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
  const { history } = input;
  let left = input.budgetTokens - (input.reservedTokens ?? 0) - estimateTokens(system) - estimateTokens(input.message);
  // Walk back from the newest message; `start` is the first message of the oldest whole turn that fits.
  let start = history.length;
  let turnTokens = 0;
  for (let i = history.length - 1; i >= 0; i -= 1) {
    const message = history[i]!;
    turnTokens += estimateTokens(message);
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
