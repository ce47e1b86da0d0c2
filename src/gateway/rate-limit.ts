import { createRequire } from 'node:module';
import type * as Flexible from 'rate-limiter-flexible';
import { ClawmeshError } from '../core/errors.ts';

// The package's entry loads every backend it supports (about 11 MB of RSS); the memory limiter
// alone costs half a megabyte.
const require = createRequire(import.meta.url);
const RateLimiterMemory: typeof Flexible.RateLimiterMemory = require('rate-limiter-flexible/lib/RateLimiterMemory.js');
const RateLimiterRes: typeof Flexible.RateLimiterRes = require('rate-limiter-flexible/lib/RateLimiterRes.js');

/** A per-key limit of `points` per `durationSeconds`. */
export interface RateLimit {
  /** Takes one point for `key`; throws `RATE_LIMITED` with `retryAfterSeconds` when none is left. */
  take(key: string): Promise<void>;
}

/**
 * An in-process rate limit (rate-limiter-flexible's memory limiter). `unit` names what is
 * counted in the refusal (`rate limit reached: 60 messages per 60s`).
 *
 * @example
 * const limit = createRateLimit({ points: 60, durationSeconds: 60 }, 'requests');
 * await limit.take(`openai:${keyId}`); // RATE_LIMITED with retryAfterSeconds past 60 a minute
 */
export function createRateLimit(
  options: { points: number; durationSeconds: number },
  unit = 'messages',
): RateLimit {
  const limiter = new RateLimiterMemory({ points: options.points, duration: options.durationSeconds });
  return {
    async take(key) {
      try {
        await limiter.consume(key);
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) throw ClawmeshError.from(err);
        const retryAfterSeconds = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
        throw new ClawmeshError(
          'RATE_LIMITED',
          `rate limit reached: ${options.points} ${unit} per ${options.durationSeconds}s`,
          {
            details: { retryAfterSeconds },
          },
        );
      }
    },
  };
}
