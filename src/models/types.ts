import type { CallContext } from '../core/context.ts';
import type { ModelRequest, ModelResponse } from '../core/contracts/models.ts';

/** The request a provider gets: the model name is already resolved to the provider's own. */
export interface ProviderRequest extends Omit<ModelRequest, 'model'> {
  /** The provider's model name (`gpt-4o-mini`), without the provider prefix. */
  model: string;
}

/** What a provider returns; the gateway adds the qualified model name and latency. */
export type ProviderResponse = Omit<ModelResponse, 'model' | 'latencyMs'>;

/** Per-call knobs a caller (the resilience chain) hands to a provider; a provider may ignore them. */
export interface ProviderCallOptions {
  /** Longest wait for a stream's response headers, in milliseconds. */
  connectTimeoutMs?: number;
  /** Longest wait for a whole completion (`complete`), in milliseconds. */
  callTimeoutMs?: number;
}

/**
 * One event of a provider stream: content deltas, then exactly one `done`, last. `done` carries
 * the whole answer (content, tool calls assembled from their deltas, usage, finish reason) and is
 * never emitted for an answer that was cut short.
 */
export type ProviderStreamEvent =
  | { type: 'text'; text: string }
  | { type: 'done'; response: ProviderResponse };

/**
 * The provider port: one interface over LLM providers. Errors are `ClawmeshError`s:
 * `UNAVAILABLE` (retryable) for network failures, 5xx, malformed answers and cut streams;
 * `RATE_LIMITED` for 429 (`details.retryAfterMs`); non-retryable codes for other 4xx;
 * `DEADLINE_EXCEEDED` when the call context's deadline passes.
 */
export interface ModelProvider {
  /** The provider's name, the prefix of its model names (`openai`, `anthropic`, `local`). */
  readonly name: string;
  /** The model used when a request names only the provider. */
  readonly defaultModel: string;
  /**
   * The provider answers in this process without waiting on anything (the local model): its
   * whole completions need no timer and no abort controller of their own, which an attempt
   * otherwise makes for each call.
   */
  readonly settlesAtOnce?: boolean;
  /**
   * The provider ends a whole completion itself once `options.callTimeoutMs` or the call
   * context's deadline has passed (the SDK providers: their own request timeout). Its attempts
   * then get the caller's signal as it is instead of a signal of their own, whose listeners cost
   * several microseconds on every call; the attempt still settles at its timeout either way.
   */
  readonly endsAtTimeout?: boolean;
  /** One whole completion. */
  complete(
    request: ProviderRequest,
    ctx: CallContext,
    signal?: AbortSignal,
    options?: ProviderCallOptions,
  ): Promise<ProviderResponse>;
  /**
   * The completion as a stream of deltas ending in `done`. Optional so that a plugin's provider
   * may implement `complete` alone; `streamOf` streams from any provider.
   */
  stream?(
    request: ProviderRequest,
    ctx: CallContext,
    signal?: AbortSignal,
    options?: ProviderCallOptions,
  ): AsyncIterable<ProviderStreamEvent>;
}

/**
 * A named deployment: one provider instance (with its own key or base URL) serving one model.
 * Several deployments may serve the same model; the resilience chain tries them in order.
 */
export interface Deployment {
  /** Unique id, as in metrics, events and error attempts (`openai-eu`). */
  id: string;
  provider: ModelProvider;
  /** The provider's own model name this deployment asks for. */
  model: string;
}
