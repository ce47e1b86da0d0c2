import { ClawmeshError } from '../../../core/errors.ts';
import type { ToolCall } from '../../../core/messages.ts';
import type { ProviderResponse } from '../../types.ts';
import { streamCut } from '../stream.ts';
import { finishReasonOf, inputTokensOf, tokens } from './mapping.ts';

interface Block {
  type: 'text' | 'tool_use' | 'other';
  id: string;
  name: string;
  /** Text of a text block; the partial JSON of a tool_use block's input. */
  data: string;
  /** A tool_use block's input as given in content_block_start, used when no JSON deltas follow. */
  input: unknown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Folds Messages API stream events (`message_start`, `content_block_start` / `_delta` / `_stop`,
 * `message_delta`, `message_stop`) into one response. Text deltas come back from {@link push};
 * tool inputs are assembled from their `input_json_delta`s. The answer is complete only once
 * `message_stop` arrived.
 */
export class AnthropicStreamAssembler {
  private readonly blocks: Block[] = [];
  private stopReason: unknown;
  private inputTokens = 0;
  private outputTokens = 0;
  private stopped = false;
  private started = false;

  /** Takes one event; returns its text delta, if any. */
  push(event: unknown): string | undefined {
    if (!isRecord(event) || typeof event.type !== 'string') {
      throw new ClawmeshError('UNAVAILABLE', 'anthropic: malformed stream event');
    }
    switch (event.type) {
      case 'message_start': {
        this.started = true;
        const usage = isRecord(event.message) && isRecord(event.message.usage) ? event.message.usage : {};
        this.inputTokens = inputTokensOf(usage);
        this.outputTokens = tokens(usage.output_tokens);
        return undefined;
      }
      case 'content_block_start':
        this.start(event);
        return undefined;
      case 'content_block_delta':
        return this.delta(event);
      case 'message_delta': {
        if (isRecord(event.delta) && event.delta.stop_reason != null)
          this.stopReason = event.delta.stop_reason;
        if (isRecord(event.usage)) {
          // message_delta's usage is cumulative; input counts appear there only on some servers.
          if (event.usage.output_tokens !== undefined) this.outputTokens = tokens(event.usage.output_tokens);
          const input = inputTokensOf(event.usage);
          if (input > 0) this.inputTokens = input;
        }
        return undefined;
      }
      case 'message_stop':
        this.stopped = true;
        return undefined;
      default:
        // content_block_stop, ping and event types added later carry nothing we need.
        return undefined;
    }
  }

  private start(event: Record<string, unknown>): void {
    const index = typeof event.index === 'number' ? event.index : this.blocks.length;
    const block = isRecord(event.content_block) ? event.content_block : {};
    const type = block.type === 'text' || block.type === 'tool_use' ? block.type : 'other';
    this.blocks[index] = {
      type,
      id: typeof block.id === 'string' ? block.id : '',
      name: typeof block.name === 'string' ? block.name : '',
      data: type === 'text' && typeof block.text === 'string' ? block.text : '',
      input: block.input,
    };
  }

  private delta(event: Record<string, unknown>): string | undefined {
    const index = typeof event.index === 'number' ? event.index : -1;
    const block = this.blocks[index];
    const delta = event.delta;
    if (!block || !isRecord(delta)) {
      throw new ClawmeshError('UNAVAILABLE', 'anthropic: malformed stream: a delta for an unknown block');
    }
    if (delta.type === 'text_delta' && typeof delta.text === 'string' && block.type === 'text') {
      block.data += delta.text;
      return delta.text.length > 0 ? delta.text : undefined;
    }
    if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string') {
      block.data += delta.partial_json;
    }
    return undefined;
  }

  /** The whole response; a retryable `UNAVAILABLE` when `message_stop` never came. */
  finish(): ProviderResponse {
    if (!this.started) throw streamCut('anthropic', 'no message_start');
    if (!this.stopped) throw streamCut('anthropic', 'it ended before message_stop');
    let content = '';
    const toolCalls: ToolCall[] = [];
    for (const block of this.blocks) {
      if (!block) continue;
      if (block.type === 'text') content += block.data;
      else if (block.type === 'tool_use') {
        toolCalls.push({
          id: block.id || `toolu_${toolCalls.length + 1}`,
          name: block.name,
          arguments: block.data || JSON.stringify(block.input ?? {}),
        });
      }
    }
    return {
      content,
      toolCalls,
      finishReason: finishReasonOf(this.stopReason, toolCalls.length),
      usage: { inputTokens: this.inputTokens, outputTokens: this.outputTokens },
    };
  }
}
