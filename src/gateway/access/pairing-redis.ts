import { ClawmeshError } from '../../core/errors.ts';
import {
  guardedRedis,
  keyPrefix,
  type RedisCommandClient,
  type RedisReply,
  redisScript,
  runCommand,
  runScript,
} from '../../store/redis-script.ts';
import { checkTtl, newPairingCode, normalizeCode, pairingErrors } from './pairing-code.ts';
import type { ApprovedSender, PairingRequest, PairingStore } from './pairing-types.ts';

/** Options of {@link createRedisPairingStore}. */
export interface RedisPairingOptions {
  /** A node-redis v5 client, connected (or connecting); the store never closes it. */
  client: RedisCommandClient;
  /** Prepended to every key (default `clawmesh:`). */
  prefix?: string;
}

const DEFAULT_MAX_PENDING = 100;
/** Expired codes are kept this long, so approving one says "expired" rather than "unknown". */
const EXPIRED_GRACE_MS = 24 * 3600_000;

/*
 * Keys, under `<prefix>pairing:`:
 * - `code:<channel>:<code>`: the request's JSON, expiring a day after the code;
 * - `user:<channel>:<userId>`: the sender's live code, expiring with it;
 * - `pending:<channel>`: a sorted set of the channel's codes by expiry (the cap, the list);
 * - `approved:<channel>`: a hash of approved senders' JSON by user id;
 * - `channels`: the set of channels that ever had a code (to list them all without SCAN).
 */

// KEYS: user, pending, channels. ARGV: code-key prefix, channel, now, ttl, max, code, request JSON, grace.
// Replies {'old', code, expiresAt}, {'new', code, expiresAt}, {'full'} or {'taken'} (draw again).
const REQUEST = redisScript(`
local now = tonumber(ARGV[3])
local live = redis.call('GET', KEYS[1])
if live then
  local stored = redis.call('GET', ARGV[1] .. live)
  if stored then
    local request = cjson.decode(stored)
    if request.expiresAt > now then return {'old', live, tostring(request.expiresAt)} end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[8]))
if redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') >= tonumber(ARGV[5]) then return {'full'} end
local codeKey = ARGV[1] .. ARGV[6]
if redis.call('EXISTS', codeKey) == 1 then return {'taken'} end
local ttl = tonumber(ARGV[4])
redis.call('SET', codeKey, ARGV[7], 'PX', ttl + tonumber(ARGV[8]))
redis.call('SET', KEYS[1], ARGV[6], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[6])
redis.call('SADD', KEYS[3], ARGV[2])
return {'new', ARGV[6], tostring(now + ttl)}
`);

// KEYS: code, pending, approved. ARGV: user-key prefix, now, code, approvedAt.
// Replies the approved sender's request JSON, 'unknown' or 'expired'; either way the code is used up.
const APPROVE = redisScript(`
local stored = redis.call('GET', KEYS[1])
if not stored then return 'unknown' end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[3])
local request = cjson.decode(stored)
local userKey = ARGV[1] .. request.userId
if redis.call('GET', userKey) == ARGV[3] then redis.call('DEL', userKey) end
if request.expiresAt <= tonumber(ARGV[2]) then return 'expired' end
local sender = {channel = request.channel, userId = request.userId, approvedAt = tonumber(ARGV[4])}
if request.userName then sender.userName = request.userName end
redis.call('HSET', KEYS[3], request.userId, cjson.encode(sender))
return stored
`);

/**
 * The Redis pairing store: codes and approvals shared by every gateway replica and by
 * `clawmesh pairing` run anywhere with the same Redis and key prefix. Issuing and approving a
 * code are one script each, so two replicas never give one sender two codes nor use a code twice.
 *
 * @example
 * const pairing = createRedisPairingStore({ client, prefix: 'clawmesh:' });
 */
export function createRedisPairingStore(options: RedisPairingOptions): PairingStore {
  const { client } = options;
  const base = `${keyPrefix(options.prefix)}pairing:`;
  const codePrefix = (channel: string) => `${base}code:${channel}:`;
  const userPrefix = (channel: string) => `${base}user:${channel}:`;
  const pendingKey = (channel: string) => `${base}pending:${channel}`;
  const approvedKey = (channel: string) => `${base}approved:${channel}`;
  const channelsKey = `${base}channels`;

  let closed = false;
  const run = <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    if (closed) {
      return Promise.reject(
        new ClawmeshError('UNAVAILABLE', `${what}: the pairing store is closed`, { retryable: false }),
      );
    }
    return guardedRedis(what, fn);
  };

  const listChannel = async (channel: string, now: number) => {
    const approvedJson = (await runCommand(client, ['HVALS', approvedKey(channel)])) as string[];
    const codes = (await runCommand(client, [
      'ZRANGEBYSCORE',
      pendingKey(channel),
      `(${now}`,
      '+inf',
    ])) as string[];
    const requests =
      codes.length === 0
        ? []
        : ((await runCommand(client, ['MGET', ...codes.map((code) => codePrefix(channel) + code)])) as (
            | string
            | null
          )[]);
    return {
      approved: approvedJson.map((json) => JSON.parse(json) as ApprovedSender),
      pending: requests
        .filter((json): json is string => json !== null)
        .map((json) => JSON.parse(json) as PairingRequest)
        .filter((request) => request.expiresAt > now),
    };
  };

  return {
    kind: 'redis',
    request(channel, userId, opts) {
      return run('issue pairing code', async () => {
        const ttlMs = checkTtl(opts.ttlMs);
        const max = opts.maxPending ?? DEFAULT_MAX_PENDING;
        for (;;) {
          const now = Date.now();
          const code = newPairingCode();
          const request: PairingRequest = {
            channel,
            code,
            userId,
            ...(opts.userName ? { userName: opts.userName } : {}),
            createdAt: now,
            expiresAt: now + ttlMs,
          };
          const reply = (await runScript(
            client,
            REQUEST,
            [userPrefix(channel) + userId, pendingKey(channel), channelsKey],
            [codePrefix(channel), channel, now, ttlMs, max, code, JSON.stringify(request), EXPIRED_GRACE_MS],
          )) as RedisReply[];
          if (reply[0] === 'full') throw pairingErrors.tooMany(channel, max);
          if (reply[0] === 'taken') continue;
          return { code: String(reply[1]), expiresAt: Number(reply[2]), created: reply[0] === 'new' };
        }
      });
    },
    approve(channel, typed) {
      return run('approve pairing code', async () => {
        const code = normalizeCode(typed);
        const now = Date.now();
        const reply = await runScript(
          client,
          APPROVE,
          [codePrefix(channel) + code, pendingKey(channel), approvedKey(channel)],
          [userPrefix(channel), now, code, now],
        );
        if (reply === 'unknown') throw pairingErrors.unknown(channel, code);
        if (reply === 'expired') throw pairingErrors.expired(channel, code);
        const request = JSON.parse(String(reply)) as PairingRequest;
        return {
          channel,
          userId: request.userId,
          ...(request.userName ? { userName: request.userName } : {}),
          approvedAt: now,
        };
      });
    },
    isApproved(channel, userId) {
      return run(
        'check pairing approval',
        async () => (await runCommand(client, ['HEXISTS', approvedKey(channel), userId])) === 1,
      );
    },
    list(channel) {
      return run('list pairing', async () => {
        const now = Date.now();
        const channels = channel
          ? [channel]
          : ((await runCommand(client, ['SMEMBERS', channelsKey])) as string[]).sort();
        const approved: ApprovedSender[] = [];
        const pending: PairingRequest[] = [];
        for (const name of channels) {
          const found = await listChannel(name, now);
          approved.push(...found.approved);
          pending.push(...found.pending);
        }
        approved.sort((a, b) => a.approvedAt - b.approvedAt);
        pending.sort((a, b) => a.createdAt - b.createdAt);
        return { approved, pending };
      });
    },
    revoke(channel, userId) {
      return run(
        'revoke pairing approval',
        async () => (await runCommand(client, ['HDEL', approvedKey(channel), userId])) === 1,
      );
    },
    async close() {
      closed = true;
    },
  };
}
