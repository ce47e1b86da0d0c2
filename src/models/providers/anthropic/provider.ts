import Anthropic, { type ClientOptions } from '@anthropic-ai/sdk';
import type { MessageCreateParamsNonStreaming } from '@anthropic-ai/sdk/resources/messages/messages';
import type { CallContext } from '../../../core/context.ts';
import { ClawmeshError } from '../../../core/errors.ts';
import type {
  ModelProvider,
  ProviderCallOptions,
  ProviderRequest,
  ProviderResponse,
  ProviderStreamEvent,
} from '../../types.ts';
import { withoutKey } from '../hide-key.ts';
import type { SdkProviderOptions } from '../outbound.ts';
import { sdkTimeout } from '../sdk-timeout.ts';
import { abortError, streamCut } from '../stream.ts';
import {
  type FailureContext,
  fromAnthropicMessage,
  toAnthropicEffort,
  toAnthropicOutput,
  toAnthropicPrompt,
  toAnthropicToolChoice,
  toAnthropicTools,
  toClawmeshError,
} from './mapping.ts';
import { AnthropicStreamAssembler } from './stream.ts';

/** Options of {@link createAnthropicProvider}. */
export interface AnthropicProviderOptions extends SdkProviderOptions {
  /** The API key of this deployment. */
  apiKey: string;
  /**
   * The API's base URL (default Anthropic's own); any Messages-API-compatible server. With or
   * without its `/v1`: the SDK adds `/v1/messages`, so a trailing `/v1` is dropped.
   */
  baseURL?: string;
  /** The model used when a request names only the provider (default `claude-3-5-haiku-latest`). */
  model?: string;
  /** `max_tokens` when a request sets none; the Messages API requires one (default 4096, the most every Claude model takes). */
  maxTokens?: number;
}

/**
 * The base URL the SDK wants: it appends `/v1/messages`, so a URL given with its `/v1` (as the
 * OpenAI-compatible ones are, and as proxies print them) would call `/v1/v1/messages`, a 404.
 */
export function anthropicBaseURL(url: string | undefined): string | null {
  if (!url) return null;
  return url.replace(/\/v1\/*$/, '');
}

const DEFAULT_MODEL = 'claude-3-5-haiku-latest';
const DEFAULT_MAX_TOKENS = 4096;
const DEFAULT_TIMEOUT_MS = 60_000;

function toRequestBody(request: ProviderRequest, maxTokens: number): MessageCreateParamsNonStreaming {
  const prompt = toAnthropicPrompt(request.messages);
  const body: MessageCreateParamsNonStreaming = {
    model: request.model,
    max_tokens: request.maxTokens ?? maxTokens,
    messages: prompt.messages,
  };
  if (prompt.system !== undefined) body.system = prompt.system;
  if (request.tools && request.tools.length > 0) {
    body.tools = toAnthropicTools(request.tools);
    const choice = toAnthropicToolChoice(request);
    if (choice) body.tool_choice = choice;
  }
  if (request.stop !== undefined) body.stop_sequences = request.stop;
  if (request.responseFormat !== undefined) body.output_config = toAnthropicOutput(request.responseFormat);
  if (request.reasoningEffort !== undefined) {
    body.output_config = { ...body.output_config, effort: toAnthropicEffort(request.reasoningEffort) };
  }
  if (request.logitBias !== undefined) {
    // Token ids of another tokenizer, and the Messages API has no such parameter.
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      'anthropic: logit_bias is not supported (the Messages API has no logit bias)',
      { retryable: false, details: { param: 'logit_bias' } },
    );
  }
  const endUser = request.user ?? request.safetyIdentifier;
  if (endUser !== undefined) body.metadata = { user_id: endUser };
  // No temperature: API version 2026-10-21 (the SDK's default) refuses sampling parameters with a 400.
  return body;
}

/**
 * A provider over Anthropic's Messages API through the official SDK: system prompt, tools
 * (`tool_use` / `tool_result` blocks mapped to our tool calls), streaming and usage, against any
 * base URL. The SDK's own retries are off; failures become `ClawmeshError`s that the resilience
 * chain reads (a refused key is a non-retryable `UNAVAILABLE`, never the caller's fault).
 *
 * @example
 * const claude = createAnthropicProvider({ apiKey: process.env.ANTHROPIC_API_KEY ?? '', model: 'claude-3-5-haiku-latest' });
 */
export function createAnthropicProvider(options: AnthropicProviderOptions): ModelProvider {
  if (!options.apiKey) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      'the anthropic provider needs an apiKey (set ANTHROPIC_API_KEY)',
    );
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
  const client = new Anthropic({
    apiKey: options.apiKey,
    baseURL: anthropicBaseURL(options.baseURL),
    timeout: timeoutMs,
    maxRetries: options.maxRetries ?? 0,
    // Failures surface as ClawmeshErrors; the SDK's own console lines would only repeat them.
    logLevel: 'off',
    ...(options.http
      ? {
          fetch: options.http.fetch,
          // Handed to every fetch call as is; this SDK's type lists no `agent`, node-fetch reads it.
          fetchOptions: options.http.fetchOptions as NonNullable<ClientOptions['fetchOptions']>,
        }
      : {}),
  });

  // A refused key may be quoted back by the server: never pass it on to callers.
  const fail = (err: unknown, context: FailureContext) =>
    withoutKey(toClawmeshError(err, context), options.apiKey);

  return {
    name: 'anthropic',
    endsAtTimeout: true,
    defaultModel: options.model ?? DEFAULT_MODEL,
    async complete(
      request: ProviderRequest,
      ctx: CallContext,
      signal?: AbortSignal,
      callOptions?: ProviderCallOptions,
    ): Promise<ProviderResponse> {
      // A plain call's headers come with the whole answer: its limit is the call's, never the
      // connect timeout.
      const timeout = sdkTimeout('anthropic', ctx, timeoutMs, 'answer', callOptions);
      const message = await client.messages
        .create(toRequestBody(request, maxTokens), { signal, timeout: timeout.ms })
        .catch((err: unknown) => {
          throw fail(err, { signal, timeout });
        });
      return fromAnthropicMessage(message);
    },

    async *stream(
      request: ProviderRequest,
      ctx: CallContext,
      signal?: AbortSignal,
      callOptions?: ProviderCallOptions,
    ): AsyncGenerator<ProviderStreamEvent> {
      const timeout = sdkTimeout('anthropic', ctx, timeoutMs, 'headers', callOptions);
      const body = { ...toRequestBody(request, maxTokens), stream: true as const };
      const events = await client.messages
        .create(body, { signal, timeout: timeout.ms })
        .catch((err: unknown) => {
          throw fail(err, { signal, timeout });
        });
      const assembler = new AnthropicStreamAssembler();
      try {
        for await (const event of events) {
          const text = assembler.push(event);
          if (text !== undefined) yield { type: 'text', text };
        }
      } catch (err) {
        if (signal?.aborted) throw abortError('anthropic', signal, err);
        const mapped = fail(err, { signal });
        throw mapped.code === 'INTERNAL' ? streamCut('anthropic', mapped.message, err) : mapped;
      }
      // The SDK ends an aborted stream quietly; an abort is never a finished answer.
      if (signal?.aborted) throw abortError('anthropic', signal);
      yield { type: 'done', response: assembler.finish() };
    },
  };
}
