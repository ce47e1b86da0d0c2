import type { RedisClientType } from 'redis';
import { trimOldest } from '../../core/bounded.ts';

/** Tokens and cost counted under one key. */
export interface UsageTotals {
  tokens: number;
  costUsd: number;
}

/** One increment of a usage counter. */
export interface UsageIncrement {
  key: string;
  tokens: number;
  costUsd: number;
  /** How long the counter lives after this increment, in milliseconds. */
  ttlMs: number;
}

/** Usage counters by key (a user's day, a conversation). */
export interface UsageStore {
  readonly kind: 'memory' | 'redis';
  /** The totals under each key, zero when absent or expired. */
  get(keys: readonly string[]): Promise<UsageTotals[]>;
  add(increments: readonly UsageIncrement[]): Promise<void>;
}

const ZERO: UsageTotals = { tokens: 0, costUsd: 0 };

/**
 * The promise a store's `add` returns when it counted synchronously (the memory store): already
 * settled, shared by every call, so a caller may skip attaching a handler to it.
 */
export const COUNTED: Promise<void> = Promise.resolve();

/**
 * Counters in this process: a map bounded to `maxKeys` (the oldest keys leave first), each key
 * expiring after its TTL. Replicas each count their own: use Redis to share budgets.
 */
export function createMemoryUsageStore(options: { maxKeys?: number; now?: () => number } = {}): UsageStore {
  const now = options.now ?? Date.now;
  const maxKeys = options.maxKeys ?? 100_000;
  const counters = new Map<string, UsageTotals & { expiresAt: number }>();
  return {
    kind: 'memory',
    async get(keys) {
      const at = now();
      return keys.map((key) => {
        const counter = counters.get(key);
        if (!counter) return ZERO;
        if (counter.expiresAt <= at) {
          counters.delete(key);
          return ZERO;
        }
        return { tokens: counter.tokens, costUsd: counter.costUsd };
      });
    },
    // Not async: it runs on every answered call, and counts before it returns (see COUNTED).
    add(increments) {
      try {
        const at = now();
        for (let i = 0; i < increments.length; i++) {
          const { key, tokens, costUsd, ttlMs } = increments[i] as UsageIncrement;
          const counter = counters.get(key);
          if (counter && counter.expiresAt > at) {
            counter.tokens += tokens;
            counter.costUsd += costUsd;
            counter.expiresAt = at + ttlMs;
          } else {
            counters.set(key, { tokens, costUsd, expiresAt: at + ttlMs });
          }
        }
        trimOldest(counters, maxKeys);
        return COUNTED;
      } catch (err) {
        return Promise.reject(err);
      }
    },
  };
}

/** The node-redis commands the Redis usage store uses. */
export type UsageRedisClient = Pick<RedisClientType, 'hmGet' | 'multi'>;

/**
 * Counters shared by every replica: one Redis hash per key (`tokens`, `cost`), incremented with
 * `HINCRBY`/`HINCRBYFLOAT` and given its TTL in one `MULTI`.
 */
export function createRedisUsageStore(options: {
  client: UsageRedisClient | (() => Promise<UsageRedisClient>);
  prefix?: string;
}): UsageStore {
  const prefix = options.prefix ?? 'clawmesh:model-usage:';
  let client: Promise<UsageRedisClient> | undefined;
  const connection = () => {
    client ??= typeof options.client === 'function' ? options.client() : Promise.resolve(options.client);
    client.catch(() => {
      client = undefined;
    });
    return client;
  };
  return {
    kind: 'redis',
    async get(keys) {
      const redis = await connection();
      const rows = await Promise.all(keys.map((key) => redis.hmGet(prefix + key, ['tokens', 'cost'])));
      return rows.map((row) => {
        const [tokens, cost] = row as unknown as (string | null)[];
        return { tokens: Number(tokens ?? 0), costUsd: Number(cost ?? 0) };
      });
    },
    async add(increments) {
      if (increments.length === 0) return;
      const multi = (await connection()).multi();
      for (const { key, tokens, costUsd, ttlMs } of increments) {
        multi.hIncrBy(prefix + key, 'tokens', Math.round(tokens));
        if (costUsd > 0) multi.hIncrByFloat(prefix + key, 'cost', costUsd);
        multi.pExpire(prefix + key, Math.max(1, Math.round(ttlMs)));
      }
      await multi.exec();
    },
  };
}
