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
  /** The answer stored under `key`, or undefined when absent or expired. */
  get(key: string): Promise<CachedAnswer | undefined>;
  /** Stores an answer under `key` for the cache's TTL; an answer larger than the cache's bound is skipped. */
  set(key: string, answer: CachedAnswer): Promise<void>;
}
