import { ExponentialBackoff, type IBackoffFactory } from 'cockatiel';
import type { RetryOptions } from './types.ts';

/**
 * Exponential backoff with decorrelated jitter (cockatiel's default generator, as battle-tested in
 * Polly): each delay grows about twofold from `baseDelayMs`, randomized so that callers failing
 * together do not retry together, and never above `maxDelayMs`. Created once per pool; every call
 * walks its own sequence (`factory.next(undefined)`, then `.next(undefined)` on the result).
 */
export function createBackoff(retry: RetryOptions): IBackoffFactory<unknown> {
  return new ExponentialBackoff({ initialDelay: retry.baseDelayMs, maxDelay: retry.maxDelayMs });
}
