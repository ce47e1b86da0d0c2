import type { CallContext } from '../../core/context.ts';
import type { ModelResponse } from '../../core/contracts/models.ts';

/** What the cache keeps of an answer: the completion and who gave it, not how long it took. */
export type CachedAnswer = Pick<
  ModelResponse,
  'content' | 'toolCalls' | 'finishReason' | 'usage' | 'model'
> & {
  /** The tier the answer was routed to, when there was one. */
  tier?: string;
};

/**
 * An exact-match cache of answers by request key. The memory adapter answers synchronously
 * inside the promise; the Redis one is shared by every replica.
 */
export interface ResponseCache {
  readonly kind: 'memory' | 'redis';
  /**
   * The answer stored under `key`, or undefined when absent or expired. `ctx` is the model call's:
   * an adapter that reports its errors reports them with it, so their log line names the turn.
   */
  get(key: string, ctx?: CallContext): Promise<CachedAnswer | undefined>;
  /** Stores an answer under `key` for the cache's TTL; an answer larger than the cache's bound is skipped. */
  set(key: string, answer: CachedAnswer, ctx?: CallContext): Promise<void>;
}
