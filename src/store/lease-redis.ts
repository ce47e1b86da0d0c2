import { randomUUID } from 'node:crypto';
import type { RedisClientType } from 'redis';
import { ClawmeshError } from '../core/errors.ts';
import {
  abortError,
  acquireSpec,
  busyError,
  closedError,
  createLeaseHandle,
  type InternalHandle,
} from './lease-handle.ts';
import { createReleaseListener, type ReleaseListener, type ReleaseWait } from './lease-redis-listener.ts';
import type { LeaseDefaults, TurnLease } from './lease-types.ts';
import { guardedRedis, keyPrefix, redisScript, runScript } from './redis-script.ts';

/** What the Redis lease needs of a client: commands, and `duplicate()` for its subscriber. */
export type RedisLeaseClient = Pick<RedisClientType, 'sendCommand' | 'duplicate'>;

/** Options of {@link createRedisTurnLease}. */
export interface RedisTurnLeaseOptions extends LeaseDefaults {
  /** A node-redis v5 client, connected (or connecting); the lease never closes it. */
  client: RedisLeaseClient;
  /** Prepended to every key and channel (default `clawmesh:`). */
  prefix?: string;
  /**
   * How often a waiter tries again when no release message wakes it (default 100 ms). It is
   * also the waiter's heartbeat: one silent for 10 polls (at least 1 s) leaves the line.
   */
  pollMs?: number;
  /**
   * How long a conversation's token counter outlives its last grant (default 7 days). A counter
   * that expired starts again from the clock in microseconds, above every token it gave.
   */
  fenceTtlMs?: number;
}

/*
 * Keys, under the prefix, per conversation <id>:
 *   lease:<id>          the owner of the lease, expiring with its TTL (SET NX PX)
 *   lease:<id>:fence    the token counter (INCR)
 *   lease:<id>:queue    sorted set: waiting owners by ticket (a number from the token counter)
 *   lease:<id>:alive    hash: waiting owner -> epoch ms until which it counts as alive
 * and the channel lease:<id>:released, published when the lease is freed while someone waits.
 */

// KEYS lease, fence, queue, alive; ARGV owner, ttl, waiter ttl, fence ttl. Replies the token
// (> 0) when it took the lease, else -1 - (the holder's remaining ms), and the owner waits in line.
const ACQUIRE = redisScript(`
local lease, fence, queue, alive = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local owner = ARGV[1]
-- The clock, read only when needed: a free lease with nobody in line never does.
local t
local function clock()
  t = t or redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function nextToken()
  local token = redis.call('INCR', fence)
  if token == 1 then
    -- The counter had expired (or never was): it starts again from the clock in microseconds.
    clock()
    redis.call('SET', fence, t[1] .. string.format('%06d', tonumber(t[2])))
    token = redis.call('INCR', fence)
  end
  redis.call('PEXPIRE', fence, ARGV[4])
  return token
end
local head = redis.call('ZRANGE', queue, 0, 0)[1]
while head and head ~= owner and tonumber(redis.call('HGET', alive, head) or '0') <= clock() do
  redis.call('ZREM', queue, head)
  redis.call('HDEL', alive, head)
  head = redis.call('ZRANGE', queue, 0, 0)[1]
end
if (not head or head == owner) and redis.call('SET', lease, owner, 'NX', 'PX', ARGV[2]) then
  if head then
    redis.call('ZREM', queue, owner)
    redis.call('HDEL', alive, owner)
  end
  return nextToken()
end
if not redis.call('ZSCORE', queue, owner) then redis.call('ZADD', queue, nextToken(), owner) end
redis.call('HSET', alive, owner, clock() + tonumber(ARGV[3]))
redis.call('PEXPIRE', queue, tonumber(ARGV[3]) * 2)
redis.call('PEXPIRE', alive, tonumber(ARGV[3]) * 2)
return -1 - math.max(redis.call('PTTL', lease), 0)
`);

// KEYS lease; ARGV owner, ttl.
const RENEW = redisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`);

// KEYS lease, queue; ARGV owner, channel.
const RELEASE = redisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PUBLISH', ARGV[2], '') end
return 1
`);

// KEYS queue, alive, lease; ARGV owner, channel. A waiter that gives up leaves the line, and
// wakes the next one if the lease is free.
const LEAVE = redisScript(`
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 0 and redis.call('ZCARD', KEYS[1]) > 0 then
  redis.call('PUBLISH', ARGV[2], '')
end
return 1
`);

/**
 * The Redis turn lease: `SET NX PX` with the owner's id, renewed by a compare-and-`PEXPIRE`
 * script, released by a compare-and-`DEL` that publishes to the conversation's channel when
 * someone waits. Each is one round trip; the token comes from `INCR` in the same script as the
 * grant. Waiters line up by ticket (fair across processes, so turns keep their order), wake on
 * the release message, and poll as a fallback. A handle whose renewals stop succeeding counts
 * its lease lost when it would have expired.
 *
 * @example
 * const lease = createRedisTurnLease({ client, prefix: 'clawmesh:' });
 * const held = await lease.acquire(conversationId, { ttlMs: 10_000, waitMs: 5000 });
 */
export function createRedisTurnLease(options: RedisTurnLeaseOptions): TurnLease {
  const { client } = options;
  const prefix = keyPrefix(options.prefix);
  const pollMs = options.pollMs ?? 100;
  if (!(Number.isFinite(pollMs) && pollMs > 0)) {
    throw new ClawmeshError('INVALID_ARGUMENT', `lease pollMs must be a positive number, got ${pollMs}`);
  }
  const waiterTtlMs = Math.max(1000, pollMs * 10);
  const fenceTtlMs = options.fenceTtlMs ?? 7 * 24 * 3600 * 1000;
  const instance = randomUUID();
  let owners = 0;
  let closed = false;
  let listener: ReleaseListener | undefined;
  const handles = new Set<InternalHandle>();

  const keys = (id: string) => {
    const lease = `${prefix}lease:${id}`;
    return {
      lease,
      fence: `${lease}:fence`,
      queue: `${lease}:queue`,
      alive: `${lease}:alive`,
      channel: `${lease}:released`,
    };
  };

  const grant = (
    id: string,
    token: number,
    owner: string,
    askedAt: number,
    ttlMs: number,
    renew: boolean,
    grantedAtOnce: boolean,
  ) => {
    const k = keys(id);
    const handle = createLeaseHandle({
      conversationId: id,
      token,
      ttlMs,
      grantedAtOnce,
      autoRenew: renew,
      askedAt,
      watchdog: true,
      renewOnce: () =>
        guardedRedis(
          'renew turn lease',
          async () => (await runScript(client, RENEW, [k.lease], [owner, ttlMs])) === 1,
        ),
      releaseOnce: async () => {
        handles.delete(handle);
        await guardedRedis('release turn lease', () =>
          runScript(client, RELEASE, [k.lease, k.queue], [owner, k.channel]),
        );
      },
      onLost: () => handles.delete(handle),
    });
    handles.add(handle);
    return handle;
  };

  return {
    kind: 'redis',
    async acquire(conversationId, acquireOptions = {}) {
      const { ttlMs, waitMs, renew, signal } = acquireSpec(conversationId, acquireOptions, options);
      if (closed) throw closedError();
      if (signal?.aborted) throw abortError(signal);
      const k = keys(conversationId);
      const owner = `${instance}:${++owners}`;
      const deadline = Date.now() + waitMs;
      // Whether the grant came from the first command sent (see LeaseHandle.grantedAtOnce).
      let atOnce = true;
      const attempt = async () =>
        Number(
          await guardedRedis('acquire turn lease', () =>
            runScript(
              client,
              ACQUIRE,
              [k.lease, k.fence, k.queue, k.alive],
              [owner, ttlMs, waiterTtlMs, fenceTtlMs],
              () => {
                atOnce = false;
              },
            ),
          ),
        );
      let wait: ReleaseWait | undefined;
      try {
        for (;;) {
          if (closed) throw closedError();
          const askedAt = Date.now();
          const reply = await attempt();
          if (reply > 0) return grant(conversationId, reply, owner, askedAt, ttlMs, renew, atOnce);
          atOnce = false;
          const left = deadline - Date.now();
          if (left <= 0) throw busyError(conversationId, waitMs);
          if (signal?.aborted) throw abortError(signal);
          if (!wait) {
            listener ??= createReleaseListener(client);
            // Subscribed before the next attempt, so a release between the two is not missed.
            wait = await listener.listen(k.channel, signal, pollMs);
            continue;
          }
          const holderLeftMs = -reply - 1;
          await wait.sleep(Math.min(pollMs, holderLeftMs > 0 ? holderLeftMs + 1 : pollMs, left));
        }
      } catch (err) {
        await runScript(client, LEAVE, [k.queue, k.alive, k.lease], [owner, k.channel]).catch(
          () => undefined,
        );
        throw err;
      } finally {
        wait?.unlisten();
      }
    },
    async close() {
      closed = true;
      for (const handle of handles) handle.dispose();
      handles.clear();
      await listener?.close();
    },
  };
}
