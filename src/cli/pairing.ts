import { loadConfig } from '../config/load.ts';
import { ClawmeshError } from '../core/errors.ts';
import { createPostgresPairingStore } from '../gateway/access/pairing-postgres.ts';
import { createRedisPairingStore } from '../gateway/access/pairing-redis.ts';
import { createSqlitePairingStore } from '../gateway/access/pairing-sqlite.ts';
import type { PairingStore } from '../gateway/access/pairing-types.ts';
import { CHANNELS } from '../gateway/channels/index.ts';
import { silentLogger } from '../observability/logger.ts';
import { channelStatePath, sharedPairing } from '../runtime/channels.ts';
import { createConnections } from '../runtime/connections.ts';

/** Where `clawmesh pairing` writes; the process's streams by default. */
export interface PairingIo {
  out(line: string): void;
  err(line: string): void;
}

/** Options of {@link runPairing}. */
export interface PairingOptions {
  configFile?: string | undefined;
  /** The environment the config reads (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** The working directory a relative config resolves from (default `process.cwd()`). */
  cwd?: string;
  io?: PairingIo;
  /** A pairing store to use instead of the config's (tests, embedders). */
  store?: PairingStore;
}

const USAGE = `Usage:
  clawmesh pairing approve <channel> <code>   let the sender of a pairing code send direct messages
  clawmesh pairing list [channel]             approved senders and codes waiting for approval
  clawmesh pairing revoke <channel> <user>    withdraw an approval`;

const stdio: PairingIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** The channels pairing applies to. */
export function pairingChannels(): string[] {
  return [...new Set([...CHANNELS.map((channel) => channel.name), 'discord', 'whatsapp', 'webchat'])];
}

/**
 * `clawmesh pairing …`: approves, lists and revokes DM pairing where the gateways keep it: in
 * Redis or PostgreSQL with such a store (and `channels.state: auto`), else the SQLite file at
 * `store.path`. Returns the exit code: 0 done, 1 refused (unknown channel,
 * unknown or expired code, state kept in memory), 2 usage.
 *
 * @example
 * await runPairing(['approve', 'telegram', 'K7QM3XWA']);
 */
export async function runPairing(args: readonly string[], options: PairingOptions = {}): Promise<number> {
  const io = options.io ?? stdio;
  const [verb, channel, value] = args;
  const arity: Record<string, [number, number]> = { approve: [3, 3], list: [1, 2], revoke: [3, 3] };
  const expected = verb ? arity[verb] : undefined;
  if (!expected || args.length < expected[0] || args.length > expected[1]) {
    io.err(verb && !expected ? `clawmesh pairing: unknown action "${verb}"\n\n${USAGE}` : USAGE);
    return 2;
  }
  const known = pairingChannels();
  if (channel !== undefined && !known.includes(channel)) {
    io.err(`clawmesh pairing: unknown channel "${channel}" (channels: ${known.join(', ')})`);
    return 1;
  }
  let store: PairingStore;
  try {
    store = options.store ?? (await openStore(options));
  } catch (err) {
    io.err(`clawmesh pairing: ${(err as Error).message}`);
    return 1;
  }
  try {
    switch (verb) {
      case 'approve': {
        const sender = await store.approve(channel!, value!);
        const name = sender.userName ? ` (${sender.userName})` : '';
        io.out(`approved: ${channel} user ${sender.userId}${name} may now send direct messages`);
        return 0;
      }
      case 'revoke': {
        const revoked = await store.revoke(channel!, value!);
        if (!revoked) {
          io.err(`clawmesh pairing: ${channel} user ${value} was not approved`);
          return 1;
        }
        io.out(`revoked: ${channel} user ${value}`);
        return 0;
      }
      default: {
        const { approved, pending } = await store.list(channel);
        io.out(approved.length === 0 ? 'approved: none' : 'approved:');
        for (const sender of approved) {
          const name = sender.userName ? ` (${sender.userName})` : '';
          io.out(
            `  ${sender.channel}  ${sender.userId}${name}  since ${new Date(sender.approvedAt).toISOString()}`,
          );
        }
        io.out(pending.length === 0 ? 'waiting: none' : 'waiting:');
        for (const request of pending) {
          const name = request.userName ? ` (${request.userName})` : '';
          io.out(
            `  ${request.channel}  ${request.code}  user ${request.userId}${name}  expires ${new Date(request.expiresAt).toISOString()}`,
          );
        }
        return 0;
      }
    }
  } catch (err) {
    if (err instanceof ClawmeshError) {
      io.err(`clawmesh pairing: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    if (!options.store) await store.close();
  }
}

async function openStore(options: PairingOptions): Promise<PairingStore> {
  const { config, baseDir } = loadConfig({
    ...(options.configFile ? { file: options.configFile } : {}),
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  const path = channelStatePath(config, baseDir);
  if (path === undefined || path === ':memory:') {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      'the pairing state lives in the server’s memory (store.kind or channels.state is memory), so no other process can approve codes; use channels.state: sqlite',
    );
  }
  const shared = sharedPairing(config);
  if (shared === undefined) return createSqlitePairingStore({ path });
  // The gateways keep it in the shared store: the same server and names as theirs.
  const connections = createConnections(config, silentLogger());
  let store: PairingStore;
  try {
    store =
      shared === 'redis'
        ? createRedisPairingStore({ client: await connections.redis(), prefix: config.redis.keyPrefix })
        : createPostgresPairingStore({
            pool: await connections.postgres(),
            schema: config.postgres.schema,
            tablePrefix: config.postgres.tablePrefix,
          });
  } catch (err) {
    await connections.close();
    throw err;
  }
  return {
    ...store,
    kind: store.kind,
    async close() {
      await store.close();
      await connections.close();
    },
  };
}
