import OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { type CallContext, remainingMs } from '../../../core/context.ts';
import { ClawmeshError } from '../../../core/errors.ts';
import type { ModelProvider, ProviderRequest, ProviderResponse } from '../../types.ts';
import { fromOpenAICompletion, toClawmeshError, toOpenAIMessages, toOpenAITools } from './mapping.ts';

/** Options of {@link createOpenAIProvider}. */
export interface OpenAIProviderOptions {
  /** The API key, sent as a bearer token. Local servers (Ollama, vLLM) accept any non-empty value. */
  apiKey: string;
  /** An OpenAI-compatible base URL ending in `/v1`; OpenAI's own when absent. */
  baseURL?: string;
  /** The model used when a request names only the provider (default `gpt-4o-mini`). */
  model?: string;
  /** Longest wait for one completion in milliseconds (default 60 s); the call deadline may cut it shorter. */
  timeoutMs?: number;
  /** Retries inside the SDK (default 0: retries, fallbacks and breakers live in the gateway). */
  maxRetries?: number;
}

const DEFAULT_MODEL = 'gpt-4o-mini';
const DEFAULT_TIMEOUT_MS = 60_000;

function toRequestBody(request: ProviderRequest): ChatCompletionCreateParamsNonStreaming {
  const body: ChatCompletionCreateParamsNonStreaming = {
    model: request.model,
    messages: toOpenAIMessages(request.messages),
  };
  if (request.tools && request.tools.length > 0) body.tools = toOpenAITools(request.tools);
  if (request.temperature !== undefined) body.temperature = request.temperature;
  // `max_tokens` rather than `max_completion_tokens`: every OpenAI-compatible server knows it.
  if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
  return body;
}

/**
 * A provider over any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama,
 * llama.cpp, LM Studio, OpenRouter), through the official SDK. Each call is bounded by the
 * call context's deadline and the caller's signal; failures become `ClawmeshError`s.
 *
 * @example
 * const openai = createOpenAIProvider({ apiKey: process.env.OPENAI_API_KEY ?? '', model: 'gpt-4o-mini' });
 */
export function createOpenAIProvider(options: OpenAIProviderOptions): ModelProvider {
  if (!options.apiKey) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'the openai provider needs an apiKey (set OPENAI_API_KEY)');
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const client = new OpenAI({
    apiKey: options.apiKey,
    baseURL: options.baseURL,
    timeout: timeoutMs,
    maxRetries: options.maxRetries ?? 0,
  });

  return {
    name: 'openai',
    defaultModel: options.model ?? DEFAULT_MODEL,
    async complete(
      request: ProviderRequest,
      ctx: CallContext,
      signal?: AbortSignal,
    ): Promise<ProviderResponse> {
      const left = remainingMs(ctx);
      if (left <= 0)
        throw new ClawmeshError('DEADLINE_EXCEEDED', 'openai: the deadline passed before the call');
      const deadlineBound = left < timeoutMs;
      const completion = await client.chat.completions
        .create(toRequestBody(request), { signal, timeout: Math.min(left, timeoutMs) })
        .catch((err: unknown) => {
          throw toClawmeshError(err, { signal, deadlineBound });
        });
      return fromOpenAICompletion(completion);
    },
  };
}
