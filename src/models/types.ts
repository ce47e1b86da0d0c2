import type { CallContext } from '../core/context.ts';
import type { ModelRequest, ModelResponse } from '../core/contracts/models.ts';

/** The request a provider gets: the model name is already resolved to the provider's own. */
export interface ProviderRequest extends Omit<ModelRequest, 'model'> {
  /** The provider's model name (`gpt-4o-mini`), without the provider prefix. */
  model: string;
}

/** What a provider returns; the gateway adds the qualified model name and latency. */
export type ProviderResponse = Omit<ModelResponse, 'model' | 'latencyMs'>;

/**
 * The provider port: one interface over LLM providers. Errors are `ClawmeshError`s:
 * `UNAVAILABLE` (retryable) for network failures and 5xx, `RATE_LIMITED` for 429,
 * `INVALID_ARGUMENT` / `UNAUTHENTICATED` for other 4xx.
 */
export interface ModelProvider {
  /** The provider's name, the prefix of its model names (`openai`, `local`). */
  readonly name: string;
  /** The model used when a request names only the provider. */
  readonly defaultModel: string;
  complete(request: ProviderRequest, ctx: CallContext, signal?: AbortSignal): Promise<ProviderResponse>;
}
