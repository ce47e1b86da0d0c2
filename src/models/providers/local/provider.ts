import type { CallContext } from '../../../core/context.ts';
import type { Usage } from '../../../core/contracts/models.ts';
import { ClawmeshError } from '../../../core/errors.ts';
import type { ChatMessage, ToolCall } from '../../../core/messages.ts';
import type { ModelProvider, ProviderRequest, ProviderResponse, ProviderStreamEvent } from '../../types.ts';
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

/** The text before the first of the stop sequences, as a model stops at one. */
function beforeStop(text: string, stop: readonly string[] | undefined): string {
  if (stop === undefined) return text;
  let end = text.length;
  for (const sequence of stop) {
    const at = text.indexOf(sequence);
    if (at !== -1 && at < end) end = at;
  }
  return text.slice(0, end);
}

function textAnswer(
  content: string,
  input: number,
  request: Pick<ProviderRequest, 'maxTokens' | 'stop'>,
): ProviderResponse {
  const { maxTokens } = request;
  let text = beforeStop(content, request.stop);
  let finishReason: ProviderResponse['finishReason'] = 'stop';
  if (maxTokens !== undefined && estimateTokens(text.length) > maxTokens) {
    text = text.slice(0, maxTokens * 4);
    finishReason = 'length';
  }
  const usage: Usage = { inputTokens: estimateTokens(input), outputTokens: estimateTokens(text.length) };
  return { content: text, toolCalls: [], finishReason, usage };
}

/** The local model has no vision: a request with an image is refused, naming its first image part. */
function refuseImages(messages: readonly ChatMessage[], model: string): void {
  for (let index = 0; index < messages.length; index++) {
    const parts = messages[index]!.parts;
    if (parts === undefined) continue;
    const at = parts.findIndex((part) => part.type === 'image');
    if (at === -1) continue;
    const param = `messages.${index}.content.${at}`;
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `local: the model local/${model} does not accept images (${param}): send images to a vision model (openai or anthropic)`,
      { retryable: false, details: { param } },
    );
  }
}

/** The local model's whole decision for one request; synchronous and allocation-light. */
function answer(request: ProviderRequest): ProviderResponse {
  const { messages, toolChoice } = request;
  if (request.responseFormat !== undefined) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `local: response_format ${request.responseFormat.type} is not supported (the local model answers in plain text)`,
      { retryable: false, details: { param: 'response_format' } },
    );
  }
  refuseImages(messages, request.model);
  const { chars: input, calls: callsSoFar } = measure(messages);
  const mustCall = toolChoice !== undefined && toolChoice !== 'auto' && toolChoice !== 'none';
  if (messages[messages.length - 1]?.role === 'tool' && !mustCall) {
    return textAnswer(summarizeToolResults(messages), input, request);
  }
  const text = lastUserText(messages);
  let tools = toolChoice === 'none' ? [] : (request.tools ?? []);
  if (typeof toolChoice === 'object') tools = tools.filter((tool) => tool.name === toolChoice.name);
  if (tools.length > 0 && (text.length > 0 || mustCall)) {
    const tokens = tokenize(text);
    // A call that must call a tool calls the best match, or else the first tool it may call.
    const match =
      matchTool(tools, tokens, payloadStart(text)) ??
      (mustCall ? { tool: tools[0]!, matched: new Set<string>() } : undefined);
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
  return textAnswer(fallbackAnswer(text, tools), input, request);
}

/** Words per streamed chunk of the local model. */
const WORDS_PER_CHUNK = 3;

/**
 * Splits a text into chunks of a few words, each keeping the whitespace that follows it, so that
 * the chunks joined are the text again. Deterministic: the same text always gives the same chunks.
 */
export function wordChunks(text: string, wordsPerChunk = WORDS_PER_CHUNK): string[] {
  const chunks: string[] = [];
  const word = /\S+\s*/g;
  // Chunks start where the previous one ended, so leading whitespace belongs to the first.
  let start = 0;
  let words = 0;
  let match = word.exec(text);
  while (match !== null) {
    words++;
    const end = match.index + match[0].length;
    if (words === wordsPerChunk) {
      chunks.push(text.slice(start, end));
      start = end;
      words = 0;
    }
    match = word.exec(text);
  }
  if (start < text.length) chunks.push(text.slice(start));
  return chunks;
}

function cancelled(signal: AbortSignal | undefined): ClawmeshError | undefined {
  if (!signal?.aborted) return undefined;
  return signal.reason instanceof ClawmeshError
    ? signal.reason
    : new ClawmeshError('DEADLINE_EXCEEDED', 'the local model was cancelled before it ran');
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
    settlesAtOnce: true,
    async complete(
      request: ProviderRequest,
      _ctx: CallContext,
      signal?: AbortSignal,
    ): Promise<ProviderResponse> {
      const error = cancelled(signal);
      if (error) throw error;
      return answer(request);
    },
    async *stream(
      request: ProviderRequest,
      _ctx: CallContext,
      signal?: AbortSignal,
    ): AsyncGenerator<ProviderStreamEvent> {
      let error = cancelled(signal);
      if (error) throw error;
      const response = answer(request);
      for (const text of wordChunks(response.content)) {
        yield { type: 'text', text };
        error = cancelled(signal);
        if (error) throw error;
      }
      yield { type: 'done', response };
    },
  };
}
