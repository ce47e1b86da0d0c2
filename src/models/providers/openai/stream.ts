import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { ClawmeshError } from '../../../core/errors.ts';
import type { ToolCall } from '../../../core/messages.ts';
import type { ProviderResponse } from '../../types.ts';
import { streamCut } from '../stream.ts';

const FINISH_REASONS: Record<string, ProviderResponse['finishReason']> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool_calls',
  function_call: 'tool_calls',
  content_filter: 'content_filter',
};

interface PartialCall {
  id: string;
  name: string;
  arguments: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function tokens(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : 0;
}

/**
 * Folds chat-completion chunks into one response: content deltas, tool calls assembled from their
 * indexed deltas (arguments joined, the name taken whole), the finish reason and the usage of the last chunk (`include_usage`). An answer is
 * complete only once a choice reported its finish reason.
 */
export class OpenAIStreamAssembler {
  private content = '';
  private readonly calls: PartialCall[] = [];
  private finishReason: string | undefined;
  private usage: { inputTokens: number; outputTokens: number } | undefined;

  /** Takes one chunk; returns its text delta, if any. */
  push(chunk: ChatCompletionChunk | unknown): string | undefined {
    if (!isRecord(chunk)) {
      throw new ClawmeshError('UNAVAILABLE', 'openai: malformed stream chunk: not a JSON object');
    }
    if (isRecord(chunk.usage)) {
      this.usage = {
        inputTokens: tokens(chunk.usage.prompt_tokens),
        outputTokens: tokens(chunk.usage.completion_tokens),
      };
    }
    const choice: unknown = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
    if (!isRecord(choice)) return undefined;
    if (typeof choice.finish_reason === 'string') this.finishReason = choice.finish_reason;
    const delta = choice.delta;
    if (!isRecord(delta)) return undefined;
    if (Array.isArray(delta.tool_calls)) for (const call of delta.tool_calls) this.addCall(call);
    if (typeof delta.content === 'string' && delta.content.length > 0) {
      this.content += delta.content;
      return delta.content;
    }
    return undefined;
  }

  private addCall(call: unknown): void {
    if (!isRecord(call)) return;
    const index = typeof call.index === 'number' ? call.index : this.calls.length;
    let partial = this.calls[index];
    if (!partial) {
      partial = { id: '', name: '', arguments: '' };
      this.calls[index] = partial;
    }
    if (typeof call.id === 'string' && call.id) partial.id = call.id;
    const fn = call.function;
    if (!isRecord(fn)) return;
    // The name comes whole (OpenAI sends it once; some compatible servers repeat it in every
    // delta): each non-empty one is the name, as in the official SDK's stream helper.
    if (typeof fn.name === 'string' && fn.name) partial.name = fn.name;
    if (typeof fn.arguments === 'string') partial.arguments += fn.arguments;
  }

  /** Whether a chunk reported the usage (servers that ignore `include_usage` send none). */
  get hasUsage(): boolean {
    return this.usage !== undefined;
  }

  /** The whole response; a retryable `UNAVAILABLE` when the stream never said it had finished. */
  finish(): ProviderResponse {
    if (this.finishReason === undefined) throw streamCut('openai', 'it ended without a finish reason');
    const toolCalls: ToolCall[] = [];
    for (const [i, call] of this.calls.entries()) {
      if (!call?.name) continue;
      toolCalls.push({ id: call.id || `call_${i + 1}`, name: call.name, arguments: call.arguments || '{}' });
    }
    const reason = FINISH_REASONS[this.finishReason];
    return {
      content: this.content,
      toolCalls,
      finishReason: reason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop'),
      usage: this.usage ?? { inputTokens: 0, outputTokens: 0 },
    };
  }
}
