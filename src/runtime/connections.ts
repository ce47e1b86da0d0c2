import type { NatsConnection } from '@nats-io/nats-core';
import type { Pool } from 'pg';
import type { RedisClientType } from 'redis';
import type { Config } from '../config/schema.ts';
import { ClawmeshError } from '../core/errors.ts';
import { withDefaultPostgresUser } from '../core/postgres-user.ts';
import { redactUrl } from '../core/redact-url.ts';
import { settlesWithin } from '../core/wait.ts';
import type { Logger } from '../observability/logger.ts';

/** Tries of a process's first Redis connection before it gives up (about a second and a half). */
const FIRST_CONNECT_TRIES = 5;

/**
 * The server connections of one process, opened on first use and shared by every adapter that
 * needs them (stores, lease, bus, transport, cache), so a process holds one Redis client, one
 * NATS connection and one PostgreSQL pool whatever it runs.
 */
export interface Connections {
  redis(): Promise<RedisClientType>;
  nats(): Promise<NatsConnection>;
  postgres(): Promise<Pool>;
  /** Resolves when every opened connection answers; names the one that does not. */
  ping(): Promise<void>;
  /** The names of the opened connections, for readiness checks. */
  opened(): string[];
  close(): Promise<void>;
}

/** Opens connections lazily from the config's `redis`, `nats` and `postgres` URLs. */
export function createConnections(config: Config, logger: Logger): Connections {
  let redis: Promise<RedisClientType> | undefined;
  let nats: Promise<NatsConnection> | undefined;
  let postgres: Promise<Pool> | undefined;

  const unavailable = (what: string, url: string, err: unknown) =>
    new ClawmeshError(
      'UNAVAILABLE',
      `cannot connect to ${what} at ${redact(url)}: ${(err as Error)?.message ?? String(err)}`,
      { cause: err },
    );

  return {
    redis() {
      redis ??= (async () => {
        const { createClient } = await import('redis');
        const url = config.redis.url;
        // Once connected, a lost connection is retried for as long as it takes. The first
        // connection is not: node-redis would retry it forever and `connect()` never settle,
        // leaving a process that neither listens nor exits. A few tries, then an error.
        let connected = false;
        let client: RedisClientType | undefined;
        try {
          // createClient throws at once on a URL it cannot parse (`Invalid URL`, `Invalid protocol`).
          client = createClient({
            url,
            // While the connection is lost, a command fails at once (UNAVAILABLE to the caller)
            // instead of waiting in node-redis's queue until its turn's deadline.
            disableOfflineQueue: true,
            socket: {
              connectTimeout: 5000,
              reconnectStrategy: (retries, cause) =>
                !connected && retries >= FIRST_CONNECT_TRIES ? cause : Math.min(50 * 2 ** retries, 2000),
            },
          }) as RedisClientType;
          client.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis connection error'));
          await client.connect();
          connected = true;
        } catch (err) {
          // Closed already when node-redis gave up on its own.
          await Promise.resolve()
            .then(() => client?.destroy?.())
            .catch(() => undefined);
          throw unavailable('Redis (REDIS_URL)', url, err);
        }
        return client;
      })();
      redis.catch(() => {
        redis = undefined;
      });
      return redis;
    },
    nats() {
      nats ??= (async () => {
        const { connect } = await import('@nats-io/transport-node');
        const url = config.nats.url;
        try {
          return await connect({
            servers: url.split(',').map((server) => server.trim()),
            name: `clawmesh-${config.roles.join('+')}`,
            maxReconnectAttempts: -1,
            reconnectTimeWait: 250,
            timeout: 5000,
            // Otherwise every request (each JetStream publish of an event: five a turn) allocates
            // an Error to keep the caller's stack, about 35 µs of a 160 µs publish.
            noAsyncTraces: true,
          });
        } catch (err) {
          throw unavailable('NATS (NATS_URL)', url, err);
        }
      })();
      nats.catch(() => {
        nats = undefined;
      });
      return nats;
    },
    postgres() {
      postgres ??= (async () => {
        const pg = await import('pg');
        const url = config.postgres.url;
        const pool = new pg.default.Pool({
          connectionString: withDefaultPostgresUser(url),
          max: 10,
          connectionTimeoutMillis: 5000,
        });
        pool.on('error', (err) => logger.warn({ err: err.message }, 'postgres connection error'));
        try {
          const client = await pool.connect();
          client.release();
        } catch (err) {
          await pool.end().catch(() => undefined);
          throw unavailable('PostgreSQL (DATABASE_URL)', url, err);
        }
        return pool;
      })();
      postgres.catch(() => {
        postgres = undefined;
      });
      return postgres;
    },
    async ping() {
      // Each failure names its server: the check is one (transport:nats) for all of them, and
      // "The client is offline" alone would send the operator to NATS when Redis is down.
      const named = (what: string, check: Promise<unknown>) =>
        check.catch((err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          throw new ClawmeshError('UNAVAILABLE', `${what}: ${message}`, { cause: err });
        });
      const checks: Promise<unknown>[] = [];
      if (redis)
        checks.push(
          named(
            'Redis',
            redis.then((client) => client.ping()),
          ),
        );
      if (nats)
        checks.push(
          named(
            'NATS',
            nats.then((nc) => nc.flush()),
          ),
        );
      if (postgres)
        checks.push(
          named(
            'PostgreSQL',
            postgres.then((pool) => pool.query('select 1')),
          ),
        );
      await Promise.all(checks);
    },
    opened() {
      return [redis && 'redis', nats && 'nats', postgres && 'postgres'].filter((name): name is string =>
        Boolean(name),
      );
    },
    async close() {
      const closing: Promise<unknown>[] = [];
      if (redis) closing.push(redis.then((client) => client.close()).catch(() => undefined));
      if (nats) closing.push(nats.then(closeNats).catch(() => undefined));
      if (postgres) closing.push(postgres.then((pool) => pool.end()).catch(() => undefined));
      redis = nats = postgres = undefined;
      await Promise.all(closing);
    },
  };
}

/** How long a NATS connection may take to drain at shutdown before it is closed as it is. */
const NATS_DRAIN_MS = 2000;

/**
 * Drains a NATS connection (its subscriptions finish what they hold, what was published goes
 * out), then closes it. While NATS is unreachable a drain fails or cannot flush: the connection
 * is closed as it is, or nats.js would go on reconnecting after shutdown.
 */
async function closeNats(nc: NatsConnection): Promise<void> {
  if (nc.isClosed()) return;
  const drained = await settlesWithin(
    nc.drain().catch(() => undefined),
    NATS_DRAIN_MS,
  );
  if (!drained || !nc.isClosed()) await nc.close();
}

/** A URL without its password, for messages and logs. */
export const redact = redactUrl;
