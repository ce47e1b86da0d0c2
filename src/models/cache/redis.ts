import type { RedisClientType } from 'redis';
import type { CachedAnswer, ResponseCache } from './types.ts';

/** The few node-redis commands the cache uses, so any client (or a cluster) fits. */
export type CacheRedisClient = Pick<RedisClientType, 'get' | 'set'>;

/** Options of {@link createRedisCache}. */
export interface RedisCacheOptions {
  /** A connected node-redis client, or a function that resolves one on first use. */
  client: CacheRedisClient | (() => Promise<CacheRedisClient>);
  /** How long an answer is kept, in milliseconds (Redis expires it). */
  ttlMs: number;
  /** The largest answer stored, in bytes of JSON; larger ones are skipped. */
  maxBytes: number;
  /** Key prefix (default `clawmesh:model-cache:`). */
  prefix?: string;
  /** Hears Redis errors (logged by the caller); the call goes on as a miss. */
  onError?: (err: unknown) => void;
}

/**
 * A cache shared by every replica: one Redis string per answer, `SET … PX <ttl>`. Redis bounds
 * it by the TTL and its own `maxmemory` policy (`allkeys-lru` or `volatile-lru` recommended);
 * no key is ever scanned. A Redis error is a miss (or a skipped store), never a failed call.
 */
export function createRedisCache(options: RedisCacheOptions): ResponseCache {
  const prefix = options.prefix ?? 'clawmesh:model-cache:';
  let client: Promise<CacheRedisClient> | undefined;
  const connection = () => {
    client ??= typeof options.client === 'function' ? options.client() : Promise.resolve(options.client);
    client.catch(() => {
      client = undefined;
    });
    return client;
  };
  return {
    kind: 'redis',
    async get(key) {
      try {
        const text = await (await connection()).get(prefix + key);
        return typeof text === 'string' ? (JSON.parse(text) as CachedAnswer) : undefined;
      } catch (err) {
        options.onError?.(err);
        return undefined;
      }
    },
    async set(key, answer) {
      const text = JSON.stringify(answer);
      if (Buffer.byteLength(text) > options.maxBytes) return;
      try {
        await (await connection()).set(prefix + key, text, {
          expiration: { type: 'PX', value: options.ttlMs },
        });
      } catch (err) {
        // A cache that cannot store only costs a future miss.
        options.onError?.(err);
      }
    },
  };
}
