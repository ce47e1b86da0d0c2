import { ClawmeshError } from '../core/errors.ts';
import {
  guardedRedis,
  keyPrefix,
  type RedisCommandClient,
  redisScript,
  runCommand,
  runScript,
  ttlOf,
} from './redis-script.ts';
import type { ClaimResult, DedupeStore } from './types.ts';

/** Options of {@link createRedisDedupeStore}. */
export interface RedisDedupeOptions {
  /** A node-redis v5 client, connected (or connecting); the store never closes it. */
  client: RedisCommandClient;
  /** Prepended to every key (default `clawmesh:`). */
  prefix?: string;
}

/*
 * One string key per dedupe key, `<prefix>dedupe:<key>`, expiring with the claim's TTL: "p" while
 * pending, "d" followed by the value's JSON when done. Redis drops expired keys itself.
 */

// Replies "c" when it claimed the key, else the key's value ("p" or "d<json>").
const CLAIM = redisScript(`
if redis.call('SET', KEYS[1], 'p', 'NX', 'PX', ARGV[1]) then return 'c' end
return redis.call('GET', KEYS[1])
`);

const RELEASE = redisScript(`
if redis.call('GET', KEYS[1]) == 'p' then return redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * The Redis dedupe store: a claim is one `SET NX PX` in a script that also reads the key's
 * state, so every call is one round trip.
 *
 * @example
 * const dedupe = createRedisDedupeStore({ client, prefix: 'clawmesh:' });
 * if ((await dedupe.claim(messageId, 86_400_000)).state === 'claimed') { ... }
 */
export function createRedisDedupeStore(options: RedisDedupeOptions): DedupeStore {
  const { client } = options;
  const prefix = keyPrefix(options.prefix);
  const keyOf = (key: string) => `${prefix}dedupe:${key}`;

  let closed = false;
  const run = <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    if (closed) {
      return Promise.reject(
        new ClawmeshError('UNAVAILABLE', `${what}: the store is closed`, { retryable: false }),
      );
    }
    return guardedRedis(what, fn);
  };

  return {
    kind: 'redis',
    async claim(key, ttlMs): Promise<ClaimResult> {
      const ttl = ttlOf(ttlMs);
      const reply = await run('claim dedupe key', () => runScript(client, CLAIM, [keyOf(key)], [ttl]));
      if (reply === 'c') return { state: 'claimed' };
      if (reply === 'p') return { state: 'pending' };
      if (typeof reply === 'string' && reply.startsWith('d')) {
        return { state: 'done', value: reply.length === 1 ? undefined : JSON.parse(reply.slice(1)) };
      }
      throw new ClawmeshError('INTERNAL', `dedupe key "${key}" holds an unexpected value`);
    },
    async complete(key, value, ttlMs) {
      const ttl = ttlOf(ttlMs);
      const stored = `d${toJson(value) ?? ''}`;
      await run('complete dedupe key', () =>
        runCommand(client, ['SET', keyOf(key), stored, 'PX', String(ttl)]),
      );
    },
    async release(key) {
      await run('release dedupe key', () => runScript(client, RELEASE, [keyOf(key)], []));
    },
    async close() {
      closed = true;
    },
  };
}

function toJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (err) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'a dedupe value must be JSON-serializable', { cause: err });
  }
}
