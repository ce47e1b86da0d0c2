import { ClawmeshError } from '../core/errors.ts';
import type { ChatMessage } from '../core/messages.ts';
import { checkFence, checkLimit, toStoredMessage } from './checks.ts';
import {
  guardedRedis,
  keyPrefix,
  type RedisCommandClient,
  type RedisReply,
  redisScript,
  runCommand,
  runScript,
} from './redis-script.ts';
import { checkTurnId, turnAlreadyStored } from './turns.ts';
import type { AppendOptions, ConversationRecord, ConversationStore, StoredMessage } from './types.ts';

/** Options of {@link createRedisConversationStore}. */
export interface RedisConversationOptions {
  /** A node-redis v5 client, connected (or connecting); the store never closes it. */
  client: RedisCommandClient;
  /** Prepended to every key (default `clawmesh:`). */
  prefix?: string;
  /** How long `ping()` waits for an answer before it fails `UNAVAILABLE` (default 2000 ms). */
  pingTimeoutMs?: number;
}

/*
 * Keys, under the prefix:
 *   conv:<id>            hash: agentId, channel, peer, createdAt, updatedAt, messageCount, fence
 *   conv:<id>:messages   list: one item per message, "<seq><json>" (the JSON starts with "{")
 *   conv:<id>:turns      hash: turn id -> "<first seq>:<message count>", written only by an
 *                        append with a turn id
 *   conversations:recent sorted set: conversation id scored by updatedAt
 */

const ENSURE = redisScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'agentId', ARGV[2], 'channel', ARGV[3], 'peer', ARGV[4],
    'createdAt', ARGV[5], 'updatedAt', ARGV[5], 'messageCount', 0)
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
end
return redis.call('HGETALL', KEYS[1])
`);

// Checks before it writes, so a refused append writes nothing. Replies {0} when the
// conversation is unknown, {2, items} when the turn id (ARGV[4]) is stored, with the items of
// its messages, {-1, storedFence} for a stale fence, {1, countBefore} when written.
const APPEND = redisScript(`
local record = redis.call('HMGET', KEYS[1], 'messageCount', 'fence', 'updatedAt')
if not record[1] then return {0} end
local count = tonumber(record[1])
if ARGV[4] ~= '' then
  local turn = redis.call('HGET', KEYS[4], ARGV[4])
  if turn then
    local sep = string.find(turn, ':', 1, true)
    local first = tonumber(string.sub(turn, 1, sep - 1))
    local size = tonumber(string.sub(turn, sep + 1))
    return {2, redis.call('LRANGE', KEYS[2], first - 1, first + size - 2)}
  end
end
-- The record's fields that change, written by one HSET at the end.
local fields = {}
if ARGV[2] ~= '' then
  local stored = record[2]
  if stored and tonumber(ARGV[2]) < tonumber(stored) then return {-1, stored} end
  if not stored or tonumber(ARGV[2]) > tonumber(stored) then
    fields[#fields + 1] = 'fence'
    fields[#fields + 1] = ARGV[2]
  end
end
local n = #ARGV - 4
if n > 0 then
  local items = {}
  for i = 1, n do
    items[#items + 1] = (count + i) .. ARGV[i + 4]
    if #items == 500 or i == n then
      redis.call('RPUSH', KEYS[2], unpack(items))
      items = {}
    end
  end
  fields[#fields + 1] = 'messageCount'
  fields[#fields + 1] = count + n
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[4], (count + 1) .. ':' .. n) end
  local now = tonumber(ARGV[3])
  if now > tonumber(record[3]) then
    fields[#fields + 1] = 'updatedAt'
    fields[#fields + 1] = ARGV[3]
    redis.call('ZADD', KEYS[3], now, ARGV[1])
  end
end
if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
return {1, count}
`);

/**
 * The Redis conversation store. Every write is one Lua script, so an append (checks, seq
 * assignment, fence, messages, the recent index) is atomic and costs one round trip.
 *
 * @example
 * const client = await createClient({ url: 'redis://127.0.0.1:6379' }).connect();
 * const conversations = createRedisConversationStore({ client, prefix: 'clawmesh:' });
 */
export function createRedisConversationStore(options: RedisConversationOptions): ConversationStore {
  const { client } = options;
  const prefix = keyPrefix(options.prefix);
  const pingTimeoutMs = options.pingTimeoutMs ?? 2000;
  const recordKey = (id: string) => `${prefix}conv:${id}`;
  const messagesKey = (id: string) => `${prefix}conv:${id}:messages`;
  const turnsKey = (id: string) => `${prefix}conv:${id}:turns`;
  const recentKey = `${prefix}conversations:recent`;

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
    ensure({ id, agentId, channel, peer }) {
      return run('ensure conversation', async () => {
        const keys = [recordKey(id), recentKey];
        const reply = await runScript(client, ENSURE, keys, [id, agentId, channel, peer, Date.now()]);
        return toRecord(id, reply)!;
      });
    },
    get(id) {
      return run('get conversation', async () =>
        toRecord(id, await runCommand(client, ['HGETALL', recordKey(id)])),
      );
    },
    async append(id, messages, options: AppendOptions = {}) {
      checkFence(options.fence);
      checkTurnId(options.turnId);
      const { turnId } = options;
      return run('append messages', async () => {
        const at = Date.now();
        const json = messages.map((message) => messageJson(message, at));
        const keys = [recordKey(id), messagesKey(id), recentKey, turnsKey(id)];
        const args = [id, options.fence ?? '', at, turnId ?? '', ...json];
        const reply = (await runScript(client, APPEND, keys, args)) as [
          number,
          (number | string | string[])?,
        ];
        if (reply[0] === 0) throw new ClawmeshError('NOT_FOUND', `no conversation with id "${id}"`);
        if (reply[0] === 2) throw turnAlreadyStored(id, turnId!, (reply[1] as string[]).map(fromItem));
        if (reply[0] === -1) {
          const storedFence = Number(reply[1]);
          throw new ClawmeshError('CONFLICT', `stale fence ${options.fence} < ${storedFence} on "${id}"`, {
            details: { reason: 'STALE_FENCE', conversationId: id, fence: options.fence, storedFence },
          });
        }
        const base = Number(reply[1]);
        return messages.map((message, i) => toStoredMessage(message, base + i + 1, at));
      });
    },
    async messages(id, limit) {
      checkLimit(limit);
      if (limit === 0) return [];
      const start = limit === undefined ? '0' : String(-limit);
      const items = await run('read messages', () =>
        runCommand(client, ['LRANGE', messagesKey(id), start, '-1']),
      );
      return (items as string[]).map(fromItem);
    },
    async recent(limit) {
      checkLimit(limit);
      if (limit === 0) return [];
      return run('read recent conversations', async () => {
        const ids = (await runCommand(client, ['ZREVRANGE', recentKey, '0', String(limit - 1)])) as string[];
        // Sent in one tick, node-redis writes these together: one more round trip, not one per id.
        const replies = await Promise.all(ids.map((id) => runCommand(client, ['HGETALL', recordKey(id)])));
        return replies.flatMap((reply, i) => toRecord(ids[i]!, reply) ?? []);
      });
    },
    ping() {
      return run('ping', async () => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${pingTimeoutMs} ms`)), pingTimeoutMs);
        });
        try {
          await Promise.race([runCommand(client, ['PING']), timeout]);
        } finally {
          clearTimeout(timer);
        }
      });
    },
    async close() {
      closed = true;
    },
  };
}

/** A message as stored: its known fields and the time of the append, as JSON. */
function messageJson(message: ChatMessage, at: number): string {
  return JSON.stringify({
    role: message.role,
    content: message.content,
    toolCalls: message.toolCalls,
    toolCallId: message.toolCallId,
    name: message.name,
    at,
  });
}

function fromItem(item: string): StoredMessage {
  const start = item.indexOf('{');
  const parsed = JSON.parse(item.slice(start)) as ChatMessage & { at: number };
  return toStoredMessage(parsed, Number(item.slice(0, start)), parsed.at);
}

/**
 * The record of an HGETALL reply (a flat array in RESP2, a map in RESP3); `undefined` when it is
 * empty (no such key).
 */
function toRecord(id: string, reply: RedisReply | Record<string, string>): ConversationRecord | undefined {
  let fields: Record<string, string>;
  if (Array.isArray(reply)) {
    fields = {};
    for (let i = 0; i < reply.length; i += 2) fields[String(reply[i])] = String(reply[i + 1]);
  } else {
    fields = reply as Record<string, string>;
  }
  if (fields.messageCount === undefined) return undefined;
  return {
    id,
    agentId: fields.agentId!,
    channel: fields.channel!,
    peer: fields.peer!,
    createdAt: Number(fields.createdAt),
    updatedAt: Number(fields.updatedAt),
    messageCount: Number(fields.messageCount),
  };
}
