import OpenAI, { type ClientOptions } from 'openai';
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
} from 'openai/resources/chat/completions';
import type { CallContext } from '../../../core/context.ts';
import { ClawmeshError } from '../../../core/errors.ts';
import { estimateUsage } from '../../accounting/estimate.ts';
import type {
  ModelProvider,
  ProviderCallOptions,
  ProviderRequest,
  ProviderResponse,
  ProviderStreamEvent,
} from '../../types.ts';
import { withoutKey } from '../hide-key.ts';
import type { SdkProviderOptions } from '../outbound.ts';
import { type SdkTimeout, sdkTimeout } from '../sdk-timeout.ts';
import { abortError, streamCut } from '../stream.ts';
import {
  type FailureContext,
  fromOpenAICompletion,
  toClawmeshError,
  toOpenAIMessages,
  toOpenAIResponseFormat,
  toOpenAIToolChoice,
  toOpenAITools,
} from './mapping.ts';
import { OpenAIStreamAssembler } from './stream.ts';

/** Options of {@link createOpenAIProvider}. */
export interface OpenAIProviderOptions extends SdkProviderOptions {
  /** The API key, sent as a bearer token. Local servers (Ollama, vLLM) accept any non-empty value. */
  apiKey: string;
  /** An OpenAI-compatible base URL ending in `/v1`; OpenAI's own when absent. */
  baseURL?: string;
  /** The model used when a request names only the provider (default `gpt-4o-mini`). */
  model?: string;
}

const DEFAULT_MODEL = 'gpt-4o-mini';
const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * Whether a base URL is OpenAI's own API (none given, or `api.openai.com`). OpenAI refuses
 * `max_tokens` on its reasoning models (o1, o3, o4-mini, gpt-5: "Unsupported parameter:
 * 'max_tokens' … Use 'max_completion_tokens' instead") and takes `max_completion_tokens` on
 * every chat model; other OpenAI-compatible servers all know `max_tokens`, not all the other.
 */
export function isOpenAIsOwnApi(baseURL: string | undefined): boolean {
  if (!baseURL) return true;
  try {
    return new URL(baseURL).hostname.toLowerCase() === 'api.openai.com';
  } catch {
    return false;
  }
}

function toRequestBody(
  request: ProviderRequest,
  tokenLimit: 'max_tokens' | 'max_completion_tokens',
): ChatCompletionCreateParamsNonStreaming {
  const body: ChatCompletionCreateParamsNonStreaming = {
    model: request.model,
    messages: toOpenAIMessages(request.messages),
  };
  if (request.tools && request.tools.length > 0) {
    body.tools = toOpenAITools(request.tools);
    // Both are refused by OpenAI without tools ("only allowed when 'tools' are specified").
    if (request.toolChoice !== undefined) body.tool_choice = toOpenAIToolChoice(request.toolChoice);
    if (request.parallelToolCalls !== undefined) body.parallel_tool_calls = request.parallelToolCalls;
  }
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.maxTokens !== undefined) body[tokenLimit] = request.maxTokens;
  if (request.topP !== undefined) body.top_p = request.topP;
  if (request.seed !== undefined) body.seed = request.seed;
  if (request.frequencyPenalty !== undefined) body.frequency_penalty = request.frequencyPenalty;
  if (request.presencePenalty !== undefined) body.presence_penalty = request.presencePenalty;
  if (request.stop !== undefined) body.stop = request.stop;
  if (request.responseFormat !== undefined)
    body.response_format = toOpenAIResponseFormat(request.responseFormat);
  if (request.reasoningEffort !== undefined) body.reasoning_effort = request.reasoningEffort;
  if (request.verbosity !== undefined) body.verbosity = request.verbosity;
  if (request.logitBias !== undefined) body.logit_bias = request.logitBias;
  if (request.user !== undefined) body.user = request.user;
  if (request.safetyIdentifier !== undefined) body.safety_identifier = request.safetyIdentifier;
  return body;
}

/**
 * The `openai` SDK client options the provider uses: its key and base URL, the header timeout,
 * no SDK retries (the gateway's chain retries), no SDK logging. Exported so that a benchmark's
 * "direct" baseline calls the upstream through exactly the same client configuration.
 */
export function openAIClientOptions(options: OpenAIProviderOptions): ClientOptions {
  return {
    apiKey: options.apiKey,
    baseURL: options.baseURL,
    timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxRetries: options.maxRetries ?? 0,
    // Failures surface as ClawmeshErrors; the SDK's own console lines would only repeat them.
    logLevel: 'off',
    ...(options.http ? { fetch: options.http.fetch, fetchOptions: options.http.fetchOptions } : {}),
  };
}

/**
 * A provider over any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama,
 * llama.cpp, LM Studio, OpenRouter), through the official SDK. Each call is bounded by the
 * call context's deadline and the caller's signal; failures become `ClawmeshError`s. Streams ask
 * for usage (`stream_options.include_usage`) and assemble tool calls from their deltas.
 *
 * @example
 * const openai = createOpenAIProvider({ apiKey: process.env.OPENAI_API_KEY ?? '', model: 'gpt-4o-mini' });
 */
export function createOpenAIProvider(options: OpenAIProviderOptions): ModelProvider {
  if (!options.apiKey) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'the openai provider needs an apiKey (set OPENAI_API_KEY)');
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const client = new OpenAI(openAIClientOptions(options));
  const tokenLimit = isOpenAIsOwnApi(options.baseURL) ? 'max_completion_tokens' : 'max_tokens';
  // A refused key may be quoted back by the server: never pass it on to callers.
  const fail = (err: unknown, context: FailureContext) =>
    withoutKey(toClawmeshError(err, context), options.apiKey);

  return {
    name: 'openai',
    endsAtTimeout: true,
    defaultModel: options.model ?? DEFAULT_MODEL,
    complete(
      request: ProviderRequest,
      ctx: CallContext,
      signal?: AbortSignal,
      callOptions?: ProviderCallOptions,
    ): Promise<ProviderResponse> {
      // Not async: the SDK's promise is a `Promise` subclass, which an `await` would first
      // convert (one more promise and microtask per call); its own `then` parses the answer.
      let timeout: SdkTimeout;
      let completion: PromiseLike<ChatCompletion>;
      try {
        // A plain call's headers come with the whole answer: its limit is the call's, never the
        // connect timeout.
        timeout = sdkTimeout('openai', ctx, timeoutMs, 'answer', callOptions);
        const body = toRequestBody(request, tokenLimit);
        try {
          completion = client.chat.completions.create(
            body,
            signal ? { signal, timeout: timeout.ms } : { timeout: timeout.ms },
          );
        } catch (err) {
          throw fail(err, { signal, timeout });
        }
      } catch (err) {
        return Promise.reject(err);
      }
      return completion.then(
        (answer) => {
          const response = fromOpenAICompletion(answer);
          return answer.usage ? response : withEstimatedUsage(response, request);
        },
        (err: unknown) => {
          throw fail(err, { signal, timeout });
        },
      ) as Promise<ProviderResponse>;
    },

    async *stream(
      request: ProviderRequest,
      ctx: CallContext,
      signal?: AbortSignal,
      callOptions?: ProviderCallOptions,
    ): AsyncGenerator<ProviderStreamEvent> {
      const timeout = sdkTimeout('openai', ctx, timeoutMs, 'headers', callOptions);
      const body = {
        ...toRequestBody(request, tokenLimit),
        stream: true as const,
        stream_options: { include_usage: true },
      };
      const chunks = await client.chat.completions
        .create(body, { signal, timeout: timeout.ms })
        .catch((err: unknown) => {
          throw fail(err, { signal, timeout });
        });
      const assembler = new OpenAIStreamAssembler();
      try {
        for await (const chunk of chunks) {
          const text = assembler.push(chunk);
          if (text !== undefined) yield { type: 'text', text };
        }
      } catch (err) {
        if (signal?.aborted) throw abortError('openai', signal, err);
        const mapped = fail(err, { signal });
        throw mapped.code === 'INTERNAL' ? streamCut('openai', mapped.message, err) : mapped;
      }
      // The SDK ends an aborted stream quietly; an abort is never a finished answer.
      if (signal?.aborted) throw abortError('openai', signal);
      const response = assembler.finish();
      yield { type: 'done', response: assembler.hasUsage ? response : withEstimatedUsage(response, request) };
    },
  };
}

/**
 * An answer whose server reported no usage (some OpenAI-compatible servers omit it, or ignore
 * `stream_options.include_usage`), with the usage estimated from the prompt and the answer: a
 * call is never accounted as free, so budgets hold whatever the server.
 */
function withEstimatedUsage(response: ProviderResponse, request: ProviderRequest): ProviderResponse {
  let outputChars = response.content.length;
  for (const call of response.toolCalls) outputChars += call.name.length + call.arguments.length;
  return { ...response, usage: estimateUsage(request, outputChars) };
}
