import {
  AnthropicError,
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from '@anthropic-ai/sdk';
import type {
  Base64ImageSource,
  ContentBlockParam,
  ImageBlockParam,
  Message,
  MessageParam,
  OutputConfig,
  Tool,
  ToolChoice,
  ToolChoiceAny,
  ToolChoiceAuto,
  ToolChoiceTool,
} from '@anthropic-ai/sdk/resources/messages/messages';
import { ClawmeshError } from '../../../core/errors.ts';
import type { ChatMessage, ContentPart, ToolCall, ToolSpec } from '../../../core/messages.ts';
import type { ProviderRequest, ProviderResponse } from '../../types.ts';
import { outboundBodyFailure } from '../outbound.ts';
import { retryAfterMs } from '../retry-after.ts';
import { connectionErrorMessage, type SdkTimeout, sdkTimeoutError } from '../sdk-timeout.ts';
import { abortError } from '../stream.ts';

/** A request's system prompt and turns in the Messages API shape. */
export interface AnthropicPrompt {
  system?: string;
  messages: MessageParam[];
}

/** The JSON object a tool call's arguments stand for; Anthropic wants an object, never text. */
export function toolInput(args: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(args || '{}');
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // Not JSON: keep the model's text so nothing of the call is lost.
  }
  return { arguments: args };
}

/** The image types the Messages API takes inline. */
const MEDIA_TYPES = new Set<Base64ImageSource['media_type']>([
  'image/jpeg',
  'image/png',
  'image/gif',
  'image/webp',
]);

const DATA_URL = /^data:([^;,]+);base64,/i;

/**
 * An image part as an image block: a `data:` URL as a base64 source (jpeg, png, gif or webp, as
 * the API takes), an `http(s)` URL as a URL source, which Anthropic fetches itself. OpenAI's
 * `detail` has no counterpart and is dropped.
 */
function imageBlock(url: string, param: string): ImageBlockParam {
  const data = DATA_URL.exec(url);
  if (!data) return { type: 'image', source: { type: 'url', url } };
  const mediaType = data[1]!.toLowerCase() as Base64ImageSource['media_type'];
  if (!MEDIA_TYPES.has(mediaType)) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `anthropic: ${param}: image type ${mediaType} is not supported (jpeg, png, gif or webp)`,
      { retryable: false, details: { param } },
    );
  }
  return {
    type: 'image',
    source: { type: 'base64', media_type: mediaType, data: url.slice(data[0].length) },
  };
}

/** A user message's parts as blocks; empty texts are left out (the API refuses empty text blocks). */
function partBlocks(parts: readonly ContentPart[], where: string): ContentBlockParam[] {
  const blocks: ContentBlockParam[] = [];
  parts.forEach((part, index) => {
    if (part.type === 'image') blocks.push(imageBlock(part.url, `${where}.content.${index}`));
    else if (part.text) blocks.push({ type: 'text', text: part.text });
  });
  return blocks;
}

function blocksOf(message: ChatMessage, index: number): ContentBlockParam[] {
  if (message.role === 'tool') {
    if (!message.toolCallId) {
      throw new ClawmeshError('INVALID_ARGUMENT', 'a tool message needs the toolCallId it answers');
    }
    return [{ type: 'tool_result', tool_use_id: message.toolCallId, content: message.content }];
  }
  if (message.parts) return partBlocks(message.parts, `messages.${index}`);
  const blocks: ContentBlockParam[] = [];
  if (message.content) blocks.push({ type: 'text', text: message.content });
  for (const call of message.toolCalls ?? []) {
    blocks.push({ type: 'tool_use', id: call.id, name: call.name, input: toolInput(call.arguments) });
  }
  return blocks;
}

/** The user turn put before a conversation that starts with the assistant's. */
export const OPENING = '(conversation continued)';

/**
 * Our messages as a system prompt and alternating turns: system messages join the top-level
 * `system`; tool results become `tool_result` blocks of a user turn; an assistant's tool calls
 * become `tool_use` blocks; consecutive messages of one side merge into one turn. A request of
 * system messages alone (no turn, which the Messages API refuses) sends them as its user turn;
 * one whose first turn is the assistant's gets a short user turn ({@link OPENING}) before it.
 */
export function toAnthropicPrompt(messages: readonly ChatMessage[]): AnthropicPrompt {
  const system: string[] = [];
  const turns: { role: 'user' | 'assistant'; content: ContentBlockParam[] }[] = [];
  for (const [index, message] of messages.entries()) {
    if (message.role === 'system') {
      system.push(message.content);
      continue;
    }
    if (message.role !== 'user' && message.role !== 'assistant' && message.role !== 'tool') {
      throw new ClawmeshError('INVALID_ARGUMENT', `unknown message role ${String(message.role)}`);
    }
    const role = message.role === 'assistant' ? 'assistant' : 'user';
    const blocks = blocksOf(message, index);
    if (blocks.length === 0) continue;
    const last = turns[turns.length - 1];
    if (last?.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  }
  if (turns.length === 0) {
    // Instructions alone (OpenAI's API answers them): the Messages API needs a user turn, so
    // the instructions are that turn.
    const instructions = system.filter((text) => text.length > 0).join('\n\n');
    if (instructions) return { messages: [{ role: 'user', content: instructions }] };
    throw new ClawmeshError('INVALID_ARGUMENT', 'anthropic: every message of the request is empty', {
      retryable: false,
      details: { param: 'messages' },
    });
  }
  // The Messages API refuses a first turn that is the assistant's ("first message must use the
  // user role"), which a history trimmed to fit its context often starts with; OpenAI's takes it.
  if (turns[0]!.role === 'assistant')
    turns.unshift({ role: 'user', content: [{ type: 'text', text: OPENING }] });
  const prompt: AnthropicPrompt = {
    messages: turns.map((turn) => {
      const only = turn.content[0];
      // A turn of one text block goes as a plain string, the most common shape on the wire.
      if (turn.content.length === 1 && only?.type === 'text') return { role: turn.role, content: only.text };
      return { role: turn.role, content: turn.content };
    }),
  };
  if (system.length > 0) prompt.system = system.join('\n\n');
  return prompt;
}

/** Our tool specs as Messages API tools. */
export function toAnthropicTools(tools: readonly ToolSpec[]): Tool[] {
  return tools.map((tool) => ({
    name: tool.name,
    description: tool.description,
    input_schema: { type: 'object', ...tool.parameters } as Tool['input_schema'],
  }));
}

/**
 * A request's tool choice as the Messages API's: `auto`, `required` → `any`, a named tool →
 * `tool`, `none`; `parallelToolCalls: false` → `disable_parallel_tool_use`. None when the request
 * leaves both to the model.
 */
export function toAnthropicToolChoice(
  request: Pick<ProviderRequest, 'toolChoice' | 'parallelToolCalls'>,
): ToolChoice | undefined {
  const { toolChoice, parallelToolCalls } = request;
  if (toolChoice === 'none') return { type: 'none' };
  if (toolChoice === undefined && parallelToolCalls !== false) return undefined;
  const choice: ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool =
    toolChoice === undefined || toolChoice === 'auto'
      ? { type: 'auto' }
      : toolChoice === 'required'
        ? { type: 'any' }
        : { type: 'tool', name: toolChoice.name };
  if (parallelToolCalls === false) choice.disable_parallel_tool_use = true;
  return choice;
}

/**
 * A response format as the Messages API's structured output (`output_config.format`), which
 * takes a JSON Schema. OpenAI's `json_object` (any JSON object, no schema) has no counterpart
 * there: it is refused rather than answered with free text.
 */
export function toAnthropicOutput(format: NonNullable<ProviderRequest['responseFormat']>): OutputConfig {
  if (format.type === 'json_schema' && format.schema !== undefined) {
    return { format: { type: 'json_schema', schema: format.schema } };
  }
  throw new ClawmeshError(
    'INVALID_ARGUMENT',
    format.type === 'json_object'
      ? 'anthropic: response_format json_object is not supported (the Messages API has no JSON mode without a schema): send response_format json_schema with a schema'
      : 'anthropic: response_format json_schema needs its schema',
    { retryable: false, details: { param: 'response_format' } },
  );
}

/**
 * A reasoning effort as the Messages API's `output_config.effort`: the same names from `low` up;
 * OpenAI's `none` and `minimal` (below anything Anthropic offers) as `low`, its least.
 */
export function toAnthropicEffort(
  effort: NonNullable<ProviderRequest['reasoningEffort']>,
): NonNullable<OutputConfig['effort']> {
  return effort === 'none' || effort === 'minimal' ? 'low' : effort;
}

const STOP_REASONS: Record<string, ProviderResponse['finishReason']> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};

/** A Messages API stop reason as our finish reason. */
export function finishReasonOf(stopReason: unknown, toolCalls: number): ProviderResponse['finishReason'] {
  const mapped = typeof stopReason === 'string' ? STOP_REASONS[stopReason] : undefined;
  return mapped ?? (toolCalls > 0 ? 'tool_calls' : 'stop');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A token count from a usage field; 0 when absent or not a count. */
export function tokens(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : 0;
}

/** Input tokens of an Anthropic usage object, prompt-cache reads and writes included. */
export function inputTokensOf(usage: Record<string, unknown>): number {
  return (
    tokens(usage.input_tokens) +
    tokens(usage.cache_read_input_tokens) +
    tokens(usage.cache_creation_input_tokens)
  );
}

function malformed(what: string, cause?: unknown): ClawmeshError {
  return new ClawmeshError('UNAVAILABLE', `anthropic: malformed response: ${what}`, { cause });
}

/** A Message as our response; anything not shaped like one is `UNAVAILABLE`. */
export function fromAnthropicMessage(message: Message | string | null | undefined): ProviderResponse {
  if (!isRecord(message)) throw malformed('not a JSON object');
  if (!Array.isArray(message.content)) throw malformed('no content array');
  let content = '';
  const toolCalls: ToolCall[] = [];
  for (const block of message.content as unknown[]) {
    if (!isRecord(block)) continue;
    if (block.type === 'text' && typeof block.text === 'string') content += block.text;
    else if (block.type === 'tool_use' && typeof block.name === 'string') {
      toolCalls.push({
        id: typeof block.id === 'string' ? block.id : `toolu_${toolCalls.length + 1}`,
        name: block.name,
        arguments: JSON.stringify(block.input ?? {}),
      });
    }
  }
  const usage = isRecord(message.usage) ? message.usage : {};
  return {
    content,
    toolCalls,
    finishReason: finishReasonOf(message.stop_reason, toolCalls.length),
    usage: { inputTokens: inputTokensOf(usage), outputTokens: tokens(usage.output_tokens) },
  };
}

/** How an SDK call ended, besides the error: its signal and its timeout. */
export interface FailureContext {
  /** The signal the caller passed; its reason wins when it aborted. */
  signal?: AbortSignal | undefined;
  /** The request's SDK timeout; absent for an error after the response headers. */
  timeout?: SdkTimeout | undefined;
}

/** The error type an Anthropic error body or SSE `error` event names (`overloaded_error`). */
function errorType(err: APIError): string | undefined {
  const body: unknown = err.error;
  if (isRecord(body) && isRecord(body.error) && typeof body.error.type === 'string') return body.error.type;
  return undefined;
}

function fromStatus(err: APIError, status: number): ClawmeshError {
  const message = `anthropic: ${err.message}`;
  const details: Record<string, unknown> = { status };
  if (status === 429) {
    const wait = retryAfterMs(err.headers);
    if (wait !== undefined) details.retryAfterMs = wait;
    return new ClawmeshError('RATE_LIMITED', message, { cause: err, details });
  }
  if (status === 401 || status === 403) {
    const what =
      status === 401 ? 'refused the API key (401)' : 'does not allow this API key to do that (403)';
    return new ClawmeshError('UNAVAILABLE', `anthropic ${what}: check the deployment's apiKey`, {
      cause: err,
      retryable: false,
      details: { ...details, upstreamCode: status === 401 ? 'UNAUTHENTICATED' : 'PERMISSION_DENIED' },
    });
  }
  // 5xx, Anthropic's 529 (overloaded) and 408 (the upstream's own timeout) are worth another try.
  if (status >= 500 || status === 408)
    return new ClawmeshError('UNAVAILABLE', message, { cause: err, details });
  return new ClawmeshError('INVALID_ARGUMENT', message, { cause: err, details, retryable: false });
}

/** An error event inside a stream (no HTTP status), by its error type. */
function fromStreamError(err: APIError): ClawmeshError {
  const type = errorType(err);
  const message = `anthropic: ${err.message}`;
  const details = { errorType: type };
  if (type === 'rate_limit_error') return new ClawmeshError('RATE_LIMITED', message, { cause: err, details });
  if (type === 'invalid_request_error') {
    return new ClawmeshError('INVALID_ARGUMENT', message, { cause: err, details, retryable: false });
  }
  return new ClawmeshError('UNAVAILABLE', message, { cause: err, details });
}

/** Maps what the SDK threw onto a `ClawmeshError`, keeping the original as `cause`. */
export function toClawmeshError(err: unknown, context: FailureContext): ClawmeshError {
  if (err instanceof ClawmeshError) return err;
  if (err instanceof APIUserAbortError) return abortError('anthropic', context.signal, err);
  if (err instanceof APIConnectionTimeoutError) return sdkTimeoutError('anthropic', err, context.timeout);
  if (err instanceof APIConnectionError) {
    return new ClawmeshError('UNAVAILABLE', connectionErrorMessage('anthropic', err), { cause: err });
  }
  if (err instanceof APIError) {
    return typeof err.status === 'number' ? fromStatus(err, err.status) : fromStreamError(err);
  }
  if (err instanceof SyntaxError) return malformed('invalid JSON', err);
  const bodyFailure = outboundBodyFailure(err);
  if (bodyFailure === 'invalid-json') return malformed('invalid JSON', err);
  if (bodyFailure)
    return new ClawmeshError('UNAVAILABLE', `anthropic: ${(err as Error).message}`, { cause: err });
  if (err instanceof AnthropicError) {
    return new ClawmeshError('UNAVAILABLE', `anthropic: ${err.message}`, { cause: err });
  }
  return ClawmeshError.from(err);
}
