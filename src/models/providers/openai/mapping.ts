import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  OpenAIError,
} from 'openai';
import type {
  ChatCompletion,
  ChatCompletionContentPart,
  ChatCompletionContentPartImage,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
  ChatCompletionTool,
  ChatCompletionToolChoiceOption,
} from 'openai/resources/chat/completions';
import type { ResponseFormatJSONSchema } from 'openai/resources/shared';
import { ClawmeshError } from '../../../core/errors.ts';
import type { ChatMessage, ContentPart, ToolCall, ToolSpec } from '../../../core/messages.ts';
import type { ProviderRequest, ProviderResponse } from '../../types.ts';
import { outboundBodyFailure } from '../outbound.ts';
import { retryAfterMs } from '../retry-after.ts';
import { connectionErrorMessage, type SdkTimeout, sdkTimeoutError } from '../sdk-timeout.ts';

/** The participant's `name` of a system, user or assistant message, when it has one. */
const participant = (message: ChatMessage): { name?: string } => (message.name ? { name: message.name } : {});

/** Our messages in the chat-completions wire shape. */
export function toOpenAIMessages(messages: readonly ChatMessage[]): ChatCompletionMessageParam[] {
  return messages.map((message): ChatCompletionMessageParam => {
    switch (message.role) {
      case 'system':
        return { role: 'system', content: message.content, ...participant(message) };
      case 'user':
        return {
          role: 'user',
          content: message.parts ? toOpenAIParts(message.parts) : message.content,
          ...participant(message),
        };
      case 'assistant': {
        const calls = message.toolCalls ?? [];
        if (calls.length === 0)
          return { role: 'assistant', content: message.content, ...participant(message) };
        return {
          role: 'assistant',
          content: message.content || null,
          ...participant(message),
          tool_calls: calls.map((call) => ({
            id: call.id,
            type: 'function',
            function: { name: call.name, arguments: call.arguments },
          })),
        };
      }
      case 'tool':
        if (!message.toolCallId) {
          throw new ClawmeshError('INVALID_ARGUMENT', 'a tool message needs the toolCallId it answers');
        }
        return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
      default:
        throw new ClawmeshError('INVALID_ARGUMENT', `unknown message role ${String(message.role)}`);
    }
  });
}

/** A user message's text and image parts as chat-completions content parts, as the caller sent them. */
function toOpenAIParts(parts: readonly ContentPart[]): ChatCompletionContentPart[] {
  return parts.map((part): ChatCompletionContentPart => {
    if (part.type === 'text') return { type: 'text', text: part.text };
    const image: ChatCompletionContentPartImage['image_url'] = { url: part.url };
    if (part.detail !== undefined) image.detail = part.detail;
    return { type: 'image_url', image_url: image };
  });
}

/** Our tool specs as function tools. */
export function toOpenAITools(tools: readonly ToolSpec[]): ChatCompletionTool[] {
  return tools.map((tool) => ({
    type: 'function',
    function: { name: tool.name, description: tool.description, parameters: tool.parameters },
  }));
}

/** A tool choice in the chat-completions shape. */
export function toOpenAIToolChoice(
  choice: NonNullable<ProviderRequest['toolChoice']>,
): ChatCompletionToolChoiceOption {
  return typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.name } };
}

/** A response format in the chat-completions shape. */
export function toOpenAIResponseFormat(
  format: NonNullable<ProviderRequest['responseFormat']>,
): NonNullable<ChatCompletionCreateParamsNonStreaming['response_format']> {
  if (format.type === 'json_object') return { type: 'json_object' };
  const spec: ResponseFormatJSONSchema['json_schema'] = { name: format.name };
  if (format.description !== undefined) spec.description = format.description;
  if (format.schema !== undefined) spec.schema = format.schema;
  if (format.strict !== undefined) spec.strict = format.strict;
  return { type: 'json_schema', json_schema: spec };
}

const FINISH_REASONS: Record<string, ProviderResponse['finishReason']> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool_calls',
  function_call: 'tool_calls',
  content_filter: 'content_filter',
};

function malformed(what: string, cause?: unknown): ClawmeshError {
  return new ClawmeshError('UNAVAILABLE', `openai: malformed response: ${what}`, { cause });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function tokens(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : 0;
}

/** A chat completion as our response; anything not shaped like one is `UNAVAILABLE`. */
export function fromOpenAICompletion(
  completion: ChatCompletion | string | null | undefined,
): ProviderResponse {
  if (!isRecord(completion)) throw malformed('not a JSON object');
  const choice: unknown = Array.isArray(completion.choices) ? completion.choices[0] : undefined;
  if (!isRecord(choice) || !isRecord(choice.message)) throw malformed('no choices[0].message');
  const message = choice.message;
  const toolCalls: ToolCall[] = [];
  for (const call of Array.isArray(message.tool_calls) ? message.tool_calls : []) {
    if (!isRecord(call) || !isRecord(call.function) || typeof call.function.name !== 'string') continue;
    const args = call.function.arguments;
    toolCalls.push({
      id: typeof call.id === 'string' ? call.id : `call_${toolCalls.length + 1}`,
      name: call.function.name,
      arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}),
    });
  }
  const reason = typeof choice.finish_reason === 'string' ? FINISH_REASONS[choice.finish_reason] : undefined;
  const usage = isRecord(completion.usage) ? completion.usage : {};
  return {
    content: typeof message.content === 'string' ? message.content : '',
    toolCalls,
    finishReason: reason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop'),
    usage: { inputTokens: tokens(usage.prompt_tokens), outputTokens: tokens(usage.completion_tokens) },
  };
}

/** How an SDK call ended, besides the error: its signal and its timeout. */
export interface FailureContext {
  /** The signal the caller passed; its reason wins when it aborted. */
  signal?: AbortSignal | undefined;
  /** The request's SDK timeout; absent for an error after the response headers. */
  timeout?: SdkTimeout | undefined;
}

/** Maps what the SDK threw onto a `ClawmeshError`, keeping the original as `cause`. */
export function toClawmeshError(err: unknown, context: FailureContext): ClawmeshError {
  if (err instanceof ClawmeshError) return err;
  if (err instanceof APIUserAbortError) {
    const reason: unknown = context.signal?.reason;
    if (reason instanceof ClawmeshError) return reason;
    return new ClawmeshError('DEADLINE_EXCEEDED', 'openai: the request was aborted', {
      cause: err,
      retryable: false,
    });
  }
  if (err instanceof APIConnectionTimeoutError) return sdkTimeoutError('openai', err, context.timeout);
  if (err instanceof APIConnectionError) {
    return new ClawmeshError('UNAVAILABLE', connectionErrorMessage('openai', err), { cause: err });
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const { status } = err;
    const message = `openai: ${err.message}`;
    const details: Record<string, unknown> = { status };
    if (typeof err.param === 'string' && err.param) details.param = err.param;
    if (status === 429) {
      const wait = retryAfterMs(err.headers);
      if (wait !== undefined) details.retryAfterMs = wait;
      return new ClawmeshError('RATE_LIMITED', message, { cause: err, details });
    }
    if (status === 401) return new ClawmeshError('UNAUTHENTICATED', message, { cause: err, details });
    if (status === 403) return new ClawmeshError('PERMISSION_DENIED', message, { cause: err, details });
    if (status >= 500) return new ClawmeshError('UNAVAILABLE', message, { cause: err, details });
    return new ClawmeshError('INVALID_ARGUMENT', message, { cause: err, details, retryable: false });
  }
  if (err instanceof SyntaxError) return malformed('invalid JSON', err);
  const bodyFailure = outboundBodyFailure(err);
  if (bodyFailure === 'invalid-json') return malformed('invalid JSON', err);
  if (bodyFailure)
    return new ClawmeshError('UNAVAILABLE', `openai: ${(err as Error).message}`, { cause: err });
  if (err instanceof OpenAIError)
    return new ClawmeshError('UNAVAILABLE', `openai: ${err.message}`, { cause: err });
  return ClawmeshError.from(err);
}
