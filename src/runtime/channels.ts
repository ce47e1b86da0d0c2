import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Pool } from 'pg';
import type { Config } from '../config/schema.ts';
import type { ChannelAccessConfig } from '../config/schema-channels.ts';
import type { Client } from '../core/contract.ts';
import type { conversationContract } from '../core/contracts/conversation.ts';
import { settlesWithin } from '../core/wait.ts';
import { createMemoryPairingStore } from '../gateway/access/pairing-memory.ts';
import { createPostgresPairingStore } from '../gateway/access/pairing-postgres.ts';
import { createRedisPairingStore } from '../gateway/access/pairing-redis.ts';
import { createSqlitePairingStore } from '../gateway/access/pairing-sqlite.ts';
import type { PairingStore } from '../gateway/access/pairing-types.ts';
import { createAccess } from '../gateway/access/policy.ts';
import { createChannelRateLimits } from '../gateway/access/rate-limits.ts';
import type { ApiKeyCheck } from '../gateway/auth.ts';
import { registerDeliveriesRoutes } from '../gateway/channels/deliveries-routes.ts';
import { createDelivery, type Delivery } from '../gateway/channels/delivery.ts';
import { CHANNELS, type ChannelStatus, channelStatuses } from '../gateway/channels/index.ts';
import { createChannelMetrics } from '../gateway/channels/metrics.ts';
import { registerChannelRoutes } from '../gateway/channels/routes.ts';
import { createChannelRouter } from '../gateway/channels/routing.ts';
import { type BackgroundStartOptions, startInBackground } from '../gateway/channels/starter.ts';
import type { ChannelAdapter, ChannelDefinition } from '../gateway/channels/types.ts';
import type { ReadinessCheck } from '../http/ops-routes.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { createInboxStore } from '../store/inbox.ts';
import type { InboxStore } from '../store/inbox-types.ts';
import type { RedisCommandClient } from '../store/redis-script.ts';
import type { DedupeStore } from '../store/types.ts';

/** What {@link startChannels} needs from the process. */
export interface ChannelsDeps {
  config: Config;
  /** Where relative paths (the SQLite file) resolve from. */
  baseDir: string;
  conversation: Client<typeof conversationContract>;
  dedupe: DedupeStore;
  /** The API key check of `/v1/messages`, reused by `/v1/deliveries`. */
  auth: ApiKeyCheck;
  logger: Logger;
  metrics?: Metrics;
  /** A connected node-redis client, for `channels.limiter: redis` and the pairing state of a Redis store. */
  redis?: () => Promise<unknown>;
  /** The `pg` pool, for the pairing state of a PostgreSQL store. */
  postgres?: () => Promise<unknown>;
  /** The channels to consider (default: the registry's {@link CHANNELS}). */
  channels?: readonly ChannelDefinition[];
  /** The backoff of a channel's start while its platform cannot be reached (1 s doubling to 60 s). */
  startRetry?: BackgroundStartOptions;
}

/** The running channels of a gateway. */
export interface Channels {
  /** Each known channel, on or off (and what is missing). */
  readonly statuses: readonly ChannelStatus[];
  /** The adapters running, by name. */
  readonly adapters: ReadonlyMap<string, ChannelAdapter>;
  readonly delivery: Delivery;
  readonly inbox: InboxStore;
  readonly pairing: PairingStore;
  /**
   * One check per running channel (`channel:<name>`) that fails until the channel has started:
   * for `/readyz`, where it does not make the process unready (the HTTP API still serves).
   */
  readonly checks: readonly ReadinessCheck[];
  /** Stops polling, lets turns and sends in flight finish (up to `timeoutMs`), closes the inbox. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Largest webhook body the channel routes take. */
const CHANNEL_BODY_LIMIT = 1024 * 1024;
/** Finished inbox entries are kept this long (failed ones until retried or removed by hand). */
const DONE_RETENTION_MS = 7 * 24 * 3600_000;

/**
 * Starts the messaging channels of a gateway: builds each channel whose secrets are set, the
 * inbox and pairing state (SQLite beside the conversation store, or memory), access, routing and
 * the delivery pipeline; mounts the webhook routes and `/v1/deliveries`; starts each channel
 * (`getMe`, the webhook, polling) in the background, so a platform that cannot be reached never
 * holds the process's start; and resumes inbox entries a previous process left unfinished.
 *
 * @example
 * const channels = await startChannels(http, { config, baseDir, conversation, dedupe, auth, logger });
 * // …
 * await channels.stop();
 */
export async function startChannels(app: FastifyInstance, deps: ChannelsDeps): Promise<Channels> {
  const { config, logger } = deps;
  const definitions = deps.channels ?? CHANNELS;
  const statuses = channelStatuses(config.channels, definitions);
  const enabled = definitions.filter((definition) => statuses.find((s) => s.name === definition.name)?.on);
  const router = createChannelRouter(
    config.channels.bindings,
    config.agents.map((agent) => agent.id),
  );

  // With no channel on there is nothing to keep: no file is opened (the routes answer from memory).
  const { inbox, pairing } = await openState(config, deps.baseDir, enabled.length > 0, deps);
  const closeState = async () => {
    await inbox.close().catch(() => undefined);
    await pairing.close().catch(() => undefined);
  };
  try {
    const adapters = new Map<string, ChannelAdapter>();
    const access = new Map<string, ChannelAccessConfig>();
    for (const definition of enabled) {
      const adapter = await definition.create({ config: config.channels, logger });
      adapters.set(adapter.name, adapter);
      access.set(adapter.name, definition.access(config.channels));
    }
    const redis = config.channels.limiter === 'redis' && deps.redis ? await deps.redis() : undefined;
    let limitStoreWarnedAt = 0;
    const limits = createChannelRateLimits({
      limits: new Map([...access].map(([name, settings]) => [name, settings.rateLimit])),
      // Under the deployment's key prefix, as every other Redis key: two deployments sharing a
      // Redis keep their counters apart.
      ...(redis ? { redis, keyPrefix: `${config.redis.keyPrefix}rl` } : {}),
      onStoreFailure: (err) => {
        // Once a minute at most: every message of an outage comes through here.
        if (Date.now() - limitStoreWarnedAt < 60_000) return;
        limitStoreWarnedAt = Date.now();
        deps.logger.warn(
          { err: err.message },
          'channel rate limits: Redis failed or did not answer; counting per process until it does',
        );
      },
    });
    const metrics = createChannelMetrics(deps.metrics?.registry);
    const longestTurn = Math.max(...config.agents.map((agent) => agent.turnTimeoutMs));
    const delivery = createDelivery({
      adapters,
      dedupe: deps.dedupe,
      inbox,
      access: createAccess({ channels: access, pairing, limits }),
      router,
      defaultAgentId: config.defaultAgent ?? config.agents[0]!.id,
      conversation: deps.conversation,
      logger,
      metrics,
      retry: config.channels.delivery,
      concurrency: config.channels.delivery.concurrency,
      turnTimeoutMs: longestTurn + 5000,
    });
    registerChannelRoutes(app, {
      adapters: [...adapters.values()],
      delivery,
      metrics,
      logger,
      bodyLimitBytes: CHANNEL_BODY_LIMIT,
    });
    registerDeliveriesRoutes(app, { auth: deps.auth, inbox, delivery });

    const running = new AbortController();
    const starts = [...adapters.values()].map((adapter) => ({
      adapter,
      start: startInBackground(
        adapter,
        {
          sink: { accept: (messages) => delivery.accept(adapter, messages) },
          logger,
          signal: running.signal,
        },
        logger,
        deps.startRetry,
      ),
    }));
    const checks: ReadinessCheck[] = starts.map(({ adapter, start }) => ({
      name: `channel:${adapter.name}`,
      optional: true,
      check: start.check,
    }));
    const on = statuses.filter((s) => s.on).map((s) => s.name);
    if (on.length > 0) logger.info({ channels: on }, `channels on: ${on.join(', ')}`);
    for (const status of statuses.filter((s) => !s.on)) {
      logger.debug({ channel: status.name, missing: status.missing }, `channel ${status.name} is off`);
    }

    await inbox.prune(Date.now() - DONE_RETENTION_MS).catch(() => 0);
    const pruning = setInterval(() => {
      inbox.prune(Date.now() - DONE_RETENTION_MS).catch(() => 0);
    }, 3600_000);
    pruning.unref();
    void delivery.recover().catch((err: unknown) => {
      logger.error({ err: (err as Error)?.message }, 'could not resume unfinished channel deliveries');
    });

    let stopping: Promise<void> | undefined;
    return {
      statuses,
      adapters,
      delivery,
      inbox,
      pairing,
      checks,
      stop(timeoutMs = config.shutdownTimeoutMs) {
        stopping ??= (async () => {
          clearInterval(pruning);
          running.abort();
          // A start still trying gives up on the abort; then the adapters stop what it started.
          await Promise.all(starts.map(({ start }) => start.done));
          await Promise.all(
            [...adapters.values()].map((adapter) =>
              adapter.stop?.().catch((err: unknown) => {
                logger.warn({ channel: adapter.name, err: (err as Error)?.message }, 'channel stop failed');
              }),
            ),
          );
          if (!(await settlesWithin(delivery.stop(), timeoutMs))) {
            logger.warn(
              { inFlight: delivery.inFlight },
              'channel deliveries still running at shutdown; they resume at next start',
            );
          }
          await closeState();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await closeState();
    throw err;
  }
}

/**
 * Opens the inbox and the pairing store: SQLite at the store's file (its own connections) unless
 * `channels.state` (or, under `auto`, a memory store) says memory. Under `auto` with a Redis or
 * PostgreSQL store the pairing state goes there, shared by every gateway replica; the inbox stays
 * in each gateway's file, as it is the crash journal of the process that accepted the messages.
 */
async function openState(
  config: Config,
  baseDir: string,
  durable: boolean,
  connections: Pick<ChannelsDeps, 'redis' | 'postgres'>,
): Promise<{ inbox: InboxStore; pairing: PairingStore }> {
  const path = durable ? channelStatePath(config, baseDir) : undefined;
  if (path === undefined)
    return { inbox: createInboxStore({ kind: 'memory' }), pairing: createMemoryPairingStore() };
  const shared = sharedPairing(config);
  const pairing =
    shared === 'redis' && connections.redis
      ? createRedisPairingStore({
          client: (await connections.redis()) as RedisCommandClient,
          prefix: config.redis.keyPrefix,
        })
      : shared === 'postgres' && connections.postgres
        ? createPostgresPairingStore({
            pool: (await connections.postgres()) as Pool,
            schema: config.postgres.schema,
            tablePrefix: config.postgres.tablePrefix,
          })
        : undefined;
  const inbox = createInboxStore({ kind: 'sqlite', path });
  try {
    return { inbox, pairing: pairing ?? createSqlitePairingStore({ path }) };
  } catch (err) {
    void inbox.close();
    throw err;
  }
}

/**
 * Where the pairing state is shared by every gateway: the Redis or PostgreSQL store under
 * `channels.state: auto`; `undefined` when it is in the SQLite file (or memory).
 */
export function sharedPairing(config: Config): 'redis' | 'postgres' | undefined {
  if (config.channels.state !== 'auto') return undefined;
  return config.store.kind === 'redis' || config.store.kind === 'postgres' ? config.store.kind : undefined;
}

/** The SQLite file of the channels' state (inbox, pairing), or `undefined` when it lives in memory. */
export function channelStatePath(config: Config, baseDir: string): string | undefined {
  const state = config.channels.state;
  if (state === 'memory' || (state === 'auto' && config.store.kind === 'memory')) return undefined;
  return config.store.path === ':memory:' ? ':memory:' : resolve(baseDir, config.store.path);
}
