import { createHash } from 'node:crypto';
import type { RedisClientType } from 'redis';
import { ClawmeshError } from '../core/errors.ts';

/*
 * Shared by the Redis adapters: the part of a node-redis v5 client they use, Lua scripts run in
 * one round trip (EVALSHA, falling back to EVAL once when the server has not cached the script),
 * and the mapping of Redis failures onto Clawmesh error codes. Only types come from `redis`:
 * loading the package costs about 280 ms, paid only by a process that creates a client.
 */

/** What the Redis stores need of a client: a connected node-redis v5 `createClient()` fits. */
export type RedisCommandClient = Pick<RedisClientType, 'sendCommand'>;

/** A reply as node-redis gives it for RESP2: strings, numbers, `null` and arrays of them. */
export type RedisReply = string | number | null | RedisReply[];

/** A Lua script with its SHA1, run by {@link runScript}. */
export interface RedisScript {
  readonly lua: string;
  readonly sha: string;
}

/** Prepares a Lua script: its SHA1 is computed once, here. */
export function redisScript(lua: string): RedisScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/**
 * Runs a script with its keys and arguments: one round trip, plus one more the first time a
 * server sees the script (NOSCRIPT, then EVAL, which caches it). The EVALSHA is sent before this
 * returns its promise; `onResend` is called when the script had to be sent again as EVAL, which
 * then runs after whatever else was sent on the connection meanwhile.
 */
export async function runScript(
  client: RedisCommandClient,
  script: RedisScript,
  keys: readonly string[],
  args: readonly (string | number)[],
  onResend?: () => void,
): Promise<RedisReply> {
  const tail = [String(keys.length), ...keys, ...args.map(String)];
  try {
    return (await client.sendCommand(['EVALSHA', script.sha, ...tail])) as RedisReply;
  } catch (err) {
    if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
    onResend?.();
    return (await client.sendCommand(['EVAL', script.lua, ...tail])) as RedisReply;
  }
}

/** Sends one plain command. */
export async function runCommand(client: RedisCommandClient, args: readonly string[]): Promise<RedisReply> {
  return (await client.sendCommand(args)) as RedisReply;
}

// Server replies that mean "not now" rather than "wrong": loading, failing over, a busy script.
const TRANSIENT_REPLY = /^(LOADING|BUSY|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|MOVED|ASK)\b/;
// Any other server error reply starts with an upper-case code word (ERR, WRONGTYPE, NOSCRIPT, ...).
const ERROR_REPLY = /^[A-Z][A-Z_]+ /;

/**
 * Runs a Redis call, mapping failures: a ClawmeshError passes through; a closed or unreachable
 * client and transient server states are `UNAVAILABLE`; any other server error is `INTERNAL`.
 */
export async function guardedRedis<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw redisError(what, err);
  }
}

/**
 * The client with a limit on how long each command waits for Redis's answer: past `timeoutMs`
 * the command fails `UNAVAILABLE`. node-redis's own command timeout stops counting once a
 * command is written, so a Redis that hangs with its connection open (a hung host, a
 * partition) held every turn until its deadline. Only `sendCommand`, which the stores and the
 * lease use, is limited; everything else is the client's own.
 */
export function withReplyTimeout<C extends RedisCommandClient>(client: C, timeoutMs: number): C {
  const sendCommand = (...args: Parameters<RedisCommandClient['sendCommand']>) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new ClawmeshError('UNAVAILABLE', `redis did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      client.sendCommand(...args).then(
        (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  return new Proxy(client, {
    get(target, property) {
      if (property === 'sendCommand') return sendCommand;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** The ClawmeshError for a failed Redis call (see {@link guardedRedis}). */
export function redisError(what: string, err: unknown): ClawmeshError {
  if (err instanceof ClawmeshError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (ERROR_REPLY.test(message) && !TRANSIENT_REPLY.test(message)) {
    return new ClawmeshError('INTERNAL', `${what}: redis replied ${message}`, { cause: err });
  }
  return new ClawmeshError('UNAVAILABLE', `${what}: redis is unavailable (${message})`, { cause: err });
}

/** A key prefix: any string, `clawmesh:` by default. */
export function keyPrefix(prefix: string | undefined): string {
  const value = prefix ?? 'clawmesh:';
  if (typeof value !== 'string') {
    throw new ClawmeshError('INVALID_ARGUMENT', `a redis key prefix must be a string, got ${typeof value}`);
  }
  return value;
}

/** A TTL in whole milliseconds; throws `INVALID_ARGUMENT` unless positive and finite. */
export function ttlOf(ttlMs: number): number {
  if (!(Number.isFinite(ttlMs) && ttlMs > 0)) {
    throw new ClawmeshError('INVALID_ARGUMENT', `ttlMs must be a positive number, got ${ttlMs}`);
  }
  return Math.ceil(ttlMs);
}
