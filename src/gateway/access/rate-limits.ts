import { createRequire } from 'node:module';
import type * as Flexible from 'rate-limiter-flexible';
import type { ChannelAccessConfig } from '../../config/schema-channels.ts';
import { ClawmeshError } from '../../core/errors.ts';

// Loaded file by file: the package's entry pulls in every backend it supports.
const require = createRequire(import.meta.url);
const RateLimiterMemory: typeof Flexible.RateLimiterMemory = require('rate-limiter-flexible/lib/RateLimiterMemory.js');
const RateLimiterRes: typeof Flexible.RateLimiterRes = require('rate-limiter-flexible/lib/RateLimiterRes.js');

/** The per-user and per-channel limits of the messaging channels. */
export interface ChannelRateLimits {
  /**
   * Takes a point from the channel's limit and from the sender's; throws `RATE_LIMITED` (with
   * `retryAfterSeconds` and `scope`: `user` or `channel`) when either has none left.
   */
  take(channel: string, userId: string): Promise<void>;
}

/** Options of {@link createChannelRateLimits}. */
export interface ChannelRateLimitsOptions {
  /** Each channel's limits, by channel name. */
  limits: ReadonlyMap<string, ChannelAccessConfig['rateLimit']>;
  /**
   * A connected node-redis client: counters are then shared by every gateway process. Memory
   * (this process) when absent.
   */
  redis?: unknown;
  /** Prefix of the Redis keys (default `clawmesh:rl`). */
  keyPrefix?: string;
  /** How long a Redis count may take before this process counts alone (default 500 ms). */
  storeTimeoutMs?: number;
  /** Told when Redis fails or does not answer (the limits then hold per process until it does). */
  onStoreFailure?: (err: Error) => void;
}

/** How long a Redis count may take, by default, before the process's own counters are used. */
export const LIMIT_STORE_TIMEOUT_MS = 500;

type Limiter = Pick<Flexible.RateLimiterAbstract, 'consume'>;

/**
 * Creates the channel rate limits on rate-limiter-flexible: memory, or Redis when a client is
 * given (`RateLimiterRedis` with the node-redis package).
 *
 * @example
 * const limits = createChannelRateLimits({ limits: new Map([['telegram', config.channels.telegram.rateLimit]]) });
 * await limits.take('telegram', '1001');
 */
export function createChannelRateLimits(options: ChannelRateLimitsOptions): ChannelRateLimits {
  const prefix = options.keyPrefix ?? 'clawmesh:rl';
  const RateLimiterRedis: typeof Flexible.RateLimiterRedis | undefined = options.redis
    ? require('rate-limiter-flexible/lib/RateLimiterRedis.js')
    : undefined;
  const storeTimeoutMs = options.storeTimeoutMs ?? LIMIT_STORE_TIMEOUT_MS;
  const make = (keyPrefix: string, limit: { points: number; durationSeconds: number }): Limiter => {
    const memory = new RateLimiterMemory({
      keyPrefix,
      points: limit.points,
      duration: limit.durationSeconds,
    });
    if (!RateLimiterRedis) return memory;
    const shared = new RateLimiterRedis({
      storeClient: options.redis,
      useRedisPackage: true,
      keyPrefix,
      points: limit.points,
      duration: limit.durationSeconds,
    });
    return insured(shared, memory, storeTimeoutMs, options.onStoreFailure);
  };
  const limiters = new Map<
    string,
    { user: Limiter; channel: Limiter; limits: ChannelAccessConfig['rateLimit'] }
  >();
  for (const [channel, limits] of options.limits) {
    limiters.set(channel, {
      user: make(`${prefix}:${channel}:user`, limits.perUser),
      channel: make(`${prefix}:${channel}:all`, limits.perChannel),
      limits,
    });
  }

  // A failing limit store is unexpected once the Redis counters have a fallback; kept for safety.
  const consume = async (
    limiter: Limiter,
    key: string,
    scope: 'user' | 'channel',
    channel: string,
    limit: { points: number; durationSeconds: number },
  ) => {
    try {
      await limiter.consume(key);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) {
        throw new ClawmeshError(
          'UNAVAILABLE',
          `rate limit store: ${(err as Error)?.message ?? String(err)}`,
          {
            cause: err,
          },
        );
      }
      throw new ClawmeshError(
        'RATE_LIMITED',
        `${channel} ${scope} rate limit reached: ${limit.points} messages per ${limit.durationSeconds}s`,
        { details: { retryAfterSeconds: Math.max(1, Math.ceil(err.msBeforeNext / 1000)), scope } },
      );
    }
  };

  return {
    async take(channel, userId) {
      const found = limiters.get(channel);
      if (!found) return;
      // The sender first: one noisy sender must not use up the whole channel's points.
      await consume(found.user, userId, 'user', channel, found.limits.perUser);
      await consume(found.channel, 'all', 'channel', channel, found.limits.perChannel);
    },
  };
}

/**
 * The Redis limiter, and this process's own counters while Redis fails or does not answer within
 * `timeoutMs` (node-redis holds commands while it reconnects, which would hold every message for
 * as long as Redis is down): messages keep flowing, limited per process, until Redis is back.
 */
function insured(
  shared: Limiter,
  local: Limiter,
  timeoutMs: number,
  onStoreFailure: ((err: Error) => void) | undefined,
): Limiter {
  return {
    async consume(key, points) {
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          shared.consume(key, points),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]);
      } catch (err) {
        if (err instanceof RateLimiterRes) throw err;
        onStoreFailure?.(err instanceof Error ? err : new Error(String(err)));
        return local.consume(key, points);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
