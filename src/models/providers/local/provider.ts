import type { CallContext } from '../../../core/context.ts';
import type { Usage } from '../../../core/contracts/models.ts';
import { ClawmeshError } from '../../../core/errors.ts';
import type { ChatMessage, ToolCall } from '../../../core/messages.ts';
import type { ModelProvider, ProviderRequest, ProviderResponse } from '../../types.ts';
import { fallbackAnswer, summarizeToolResults } from './answer.ts';
import { extractArguments, payloadStart } from './arguments.ts';
import { matchTool } from './match.ts';
import { tokenize } from './words.ts';

/** Tokens estimated from characters, the usual rule of thumb of four characters a token. */
function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/** The characters of the input and the tool calls in it, in one pass over the history. */
function measure(messages: readonly ChatMessage[]): { chars: number; calls: number } {
  let chars = 0;
  let calls = 0;
  for (const message of messages) {
    chars += message.content.length;
    const toolCalls = message.toolCalls;
    if (toolCalls === undefined) continue;
    calls += toolCalls.length;
    for (const call of toolCalls) chars += call.name.length + call.arguments.length;
  }
  return { chars, calls };
}

function lastUserText(messages: readonly ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i]!;
    if (message.role === 'user') return message.content;
  }
  return '';
}

function textAnswer(content: string, input: number, maxTokens: number | undefined): ProviderResponse {
  let text = content;
  let finishReason: ProviderResponse['finishReason'] = 'stop';
  if (maxTokens !== undefined && estimateTokens(text.length) > maxTokens) {
    text = text.slice(0, maxTokens * 4);
    finishReason = 'length';
  }
  const usage: Usage = { inputTokens: estimateTokens(input), outputTokens: estimateTokens(text.length) };
  return { content: text, toolCalls: [], finishReason, usage };
}

/** The local model's whole decision for one request; synchronous and allocation-light. */
function answer(request: ProviderRequest): ProviderResponse {
  const { messages } = request;
  const { chars: input, calls: callsSoFar } = measure(messages);
  if (messages[messages.length - 1]?.role === 'tool') {
    return textAnswer(summarizeToolResults(messages), input, request.maxTokens);
  }
  const text = lastUserText(messages);
  const tools = request.tools ?? [];
  if (tools.length > 0 && text.length > 0) {
    const tokens = tokenize(text);
    const match = matchTool(tools, tokens, payloadStart(text));
    if (match) {
      const args = extractArguments(match.tool.parameters, text, tokens, match.matched);
      const call: ToolCall = {
        id: `call_${callsSoFar + 1}`,
        name: match.tool.name,
        arguments: JSON.stringify(args),
      };
      const usage: Usage = {
        inputTokens: estimateTokens(input),
        outputTokens: estimateTokens(call.name.length + call.arguments.length),
      };
      return { content: '', toolCalls: [call], finishReason: 'tool_calls', usage };
    }
  }
  return textAnswer(fallbackAnswer(text, tools), input, request.maxTokens);
}

/**
 * The built-in deterministic model: no key, no network, microseconds a turn. It calls the tool
 * whose name and description best match the last user message, with arguments read from the
 * message and the tool's JSON Schema; summarizes tool results once they come back; and
 * otherwise answers by simple rules, saying how to configure a real model.
 *
 * @example
 * const models = createModelsService({ providers: [createLocalProvider()], defaultModel: 'local' });
 */
export function createLocalProvider(): ModelProvider {
  return {
    name: 'local',
    defaultModel: 'default',
    async complete(
      request: ProviderRequest,
      _ctx: CallContext,
      signal?: AbortSignal,
    ): Promise<ProviderResponse> {
      if (signal?.aborted) {
        throw signal.reason instanceof ClawmeshError
          ? signal.reason
          : new ClawmeshError('DEADLINE_EXCEEDED', 'the local model was cancelled before it ran');
      }
      return answer(request);
    },
  };
}
