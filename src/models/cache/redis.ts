import type { RedisClientType } from 'redis';
import type { CallContext } from '../../core/context.ts';
import { settlesWithin } from '../../core/wait.ts';
import type { CachedAnswer, ResponseCache } from './types.ts';

/** The few node-redis commands the cache uses, so any client (or a cluster) fits. */
export type CacheRedisClient = Pick<RedisClientType, 'get' | 'set'>;

/** How long a lookup waits for Redis's first connection before it is a miss. */
const CONNECT_WAIT_MS = 500;

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
  /** Hears Redis errors (logged by the caller), with the model call's context; the call goes on as a miss. */
  onError?: (err: unknown, ctx?: CallContext) => void;
  /**
   * After a failed connection, how long lookups are misses without trying Redis, in
   * milliseconds (default 5000); then one lookup starts a connection in the background.
   */
  retryConnectMs?: number;
}

/**
 * A cache shared by every replica: one Redis string per answer, `SET … PX <ttl>`. Redis bounds
 * it by the TTL and its own `maxmemory` policy (`allkeys-lru` or `volatile-lru` recommended);
 * no key is ever scanned. A Redis error is a miss (or a skipped store), never a failed call.
 */
export function createRedisCache(options: RedisCacheOptions): ResponseCache {
  const prefix = options.prefix ?? 'clawmesh:model-cache:';
  const retryConnectMs = options.retryConnectMs ?? 5000;
  let client: Promise<CacheRedisClient> | undefined;
  let connected = false;
  /** When the last connection failed; lookups do not wait for Redis while it is set. */
  let failedAt: number | undefined;
  /** A lookup waited CONNECT_WAIT_MS for the connection under way: the next ones do not. */
  let waitedInVain = false;
  /** The client, connecting first; `undefined` while a failed connection cools down. */
  const connection = (): Promise<CacheRedisClient> | undefined => {
    if (!client) {
      if (failedAt !== undefined && Date.now() - failedAt < retryConnectMs) return undefined;
      const attempt =
        typeof options.client === 'function' ? options.client() : Promise.resolve(options.client);
      client = attempt;
      attempt.then(
        () => {
          connected = true;
          failedAt = undefined;
          waitedInVain = false;
        },
        () => {
          if (client === attempt) client = undefined;
          failedAt = Date.now();
        },
      );
    }
    return client;
  };
  return {
    kind: 'redis',
    async get(key, ctx) {
      // Redis unreachable, a first connection takes its tries (seconds) before it fails. A
      // lookup waits for it CONNECT_WAIT_MS at most, then (and after a failure, at once) is a
      // miss while the connection goes on beside it.
      const pending = connection();
      if (!pending || (!connected && (failedAt !== undefined || waitedInVain))) {
        pending?.catch(() => undefined);
        return undefined;
      }
      try {
        if (!connected && !(await settlesWithin(pending, CONNECT_WAIT_MS))) {
          waitedInVain = true;
          return undefined;
        }
        const text = await (await pending).get(prefix + key);
        return typeof text === 'string' ? (JSON.parse(text) as CachedAnswer) : undefined;
      } catch (err) {
        options.onError?.(err, ctx);
        return undefined;
      }
    },
    async set(key, answer, ctx) {
      const text = JSON.stringify(answer);
      if (Buffer.byteLength(text) > options.maxBytes) return;
      const pending = connection();
      if (!pending) return;
      try {
        await (await pending).set(prefix + key, text, {
          expiration: { type: 'PX', value: options.ttlMs },
        });
      } catch (err) {
        // A cache that cannot store only costs a future miss.
        options.onError?.(err, ctx);
      }
    },
  };
}
