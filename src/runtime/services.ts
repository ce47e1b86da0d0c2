import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { type AuditLog, startAuditLog } from '../bus/audit.ts';
import { createBus, type ManagedBus } from '../bus/index.ts';
import { createEventPublisher } from '../bus/publisher.ts';
import { openEventSpool } from '../bus/spool.ts';
import type { Bus } from '../bus/types.ts';
import type { Config } from '../config/schema.ts';
import type { Role } from '../config/schema-topology.ts';
import { type ConversationService, createConversationService } from '../conversation/service.ts';
import type { CallMiddleware } from '../core/contract.ts';
import { conversationContract } from '../core/contracts/conversation.ts';
import { gatewayContract } from '../core/contracts/gateway.ts';
import { modelsContract } from '../core/contracts/models.ts';
import { ClawmeshError } from '../core/errors.ts';
import { settlesWithin } from '../core/wait.ts';
import { createGatewayHandlers } from '../gateway/service.ts';
import type { ReadinessCheck } from '../http/ops-routes.ts';
import type { ModelsService } from '../models/service.ts';
import { observeBus } from '../observability/bus-observer.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { meterTransport, rpcMetrics } from '../observability/rpc-metrics.ts';
import { serviceChecks } from '../observability/service-checks.ts';
import { createHookRunner } from '../plugins/hooks.ts';
import { loadPlugins } from '../plugins/loader.ts';
import type { ClawmeshPlugin, HookRunner } from '../plugins/types.ts';
import type { Skill } from '../skills/define.ts';
import { createSkillHost, type SkillHost } from '../skills/host.ts';
import { loadSkills } from '../skills/loader.ts';
import { createSkillRouter, skillServiceContract } from '../skills/router.ts';
import {
  createMemoryTurnLease,
  createStores,
  createTurnLease,
  type Stores,
  type TurnLease,
} from '../store/index.ts';
import { withReplyTimeout } from '../store/redis-script.ts';
import type { ConversationStore, DedupeStore } from '../store/types.ts';
import type { Transport } from '../transport/types.ts';
import { checkAgents } from './check-agents.ts';
import { type Connections, createConnections } from './connections.ts';
import { serviceNameOf } from './instance.ts';
import { buildModels } from './models.ts';
import { createServing } from './serving.ts';
import { skillNamesOf } from './skill-names.ts';
import { openTransport } from './transport.ts';

/** The longest closing the bus, the stores, the transport and the connections may take in all. */
const CLOSE_TIMEOUT_MS = 15_000;
/** What each closer still gets once that budget is spent, so the later ones (SQLite) can finish. */
const CLOSE_STEP_MIN_MS = 500;

/** The built-in example skills, beside `src/` (or `dist/src/`) in the package. */
export const BUILTIN_SKILLS = fileURLToPath(new URL('../../examples/skills', import.meta.url));

/** Everything a process runs, wired over one transport. What a role does not need is absent. */
export interface Services {
  /** The roles this process runs. */
  roles: ReadonlySet<Role>;
  transport: Transport;
  /** Server connections shared by the adapters (Redis, NATS, PostgreSQL), opened on use. */
  connections: Connections;
  bus: Bus;
  /** The conversation role's store. */
  conversations?: ConversationStore;
  /** The gateway role's dedupe store (idempotency keys, platform message ids). */
  dedupe?: DedupeStore;
  hooks?: HookRunner;
  /** The conversation role's service. */
  conversation?: ConversationService;
  /** The skills role's host. */
  skillHost?: SkillHost;
  /** The models role's Model Gateway (for the OpenAI-compatible API). */
  models?: ModelsService;
  /** Readiness checks of this process's dependencies, by name. */
  checks: ReadinessCheck[];
  /** Calls from other processes this process is running (turns, completions, tool calls). */
  readonly served: number;
  /**
   * Stops taking calls from other processes and resolves once those taken are done: first no
   * new turns (the conversation and gateway services leave the transport) and the turns in
   * flight finish, then no new completions or tool calls and those running here finish.
   */
  drain(): Promise<void>;
  /** Releases stores, the bus, the audit file and connections. */
  close(): Promise<void>;
}

/** Skills and plugins given as objects by an embedder, beside those the config names. */
export interface ServiceExtras {
  skills?: Skill[];
  plugins?: ClawmeshPlugin[];
}

/** The services each role calls: a gateway its conversations, a conversation the models and skills. */
const CALLED_BY: Record<Role, readonly Role[]> = {
  gateway: ['conversation'],
  conversation: ['models', 'skills'],
  skills: [],
  models: [],
};

/**
 * Builds the services of the roles in `config.roles` (all four: the monolith) and serves them
 * on the configured transport. Everything that can fail to load (skills, providers, plugins)
 * loads before any state is opened.
 */
export async function buildServices(
  config: Config,
  baseDir: string,
  logger: Logger,
  metrics: Metrics,
  extras: ServiceExtras = {},
  runtime: { http?: FastifyInstance } = {},
): Promise<Services> {
  const roles = new Set<Role>(config.roles);
  const monolith = roles.size === 4;
  if (!monolith && config.transport.kind === 'local') {
    const fix = 'set CLAWMESH_TRANSPORT=nats (with NATS_URL) or http (with <SERVICE>_SERVICE_URL)';
    // What each role calls: only those missing here are out of reach.
    const missing = [...new Set([...roles].flatMap((role) => CALLED_BY[role]))].filter(
      (role) => !roles.has(role),
    );
    if (missing.length > 0) {
      logger.warn(
        { roles: [...roles], unreachable: missing },
        `the local transport only reaches services in this process, so ${missing.join(', ')} cannot be called: ${fix}`,
      );
    } else {
      logger.warn(
        { roles: [...roles] },
        `over the local transport no other process can call the ${[...roles].join(', ')} this process serves: ${fix}`,
      );
    }
  }
  // With `metrics.enabled: false` nothing on the turn path records (the registry still serves).
  const hot = config.metrics.enabled ? metrics : undefined;
  const middleware: CallMiddleware[] = hot ? [rpcMetrics(hot, config.transport.kind)] : [];

  const skillHost = roles.has('skills')
    ? await buildSkillHost(config, baseDir, logger, hot, extras)
    : undefined;
  // The Redis client is asked for on first use only, once the connections below exist.
  const redis = () => connections.redis();
  const models = roles.has('models')
    ? await buildModels(config, { logger, ...(hot ? { metrics: hot } : {}), redis })
    : undefined;
  if (skillHost && models && monolith) {
    checkAgents(
      config,
      skillHost.skills.map((skill) => skill.name),
      models.providers,
    );
  }
  let hooks: HookRunner | undefined;
  if (roles.has('conversation')) {
    const plugins = [...(await loadPlugins(config.plugins, { baseDir, logger })), ...(extras.plugins ?? [])];
    hooks = createHookRunner({ plugins, logger, metrics, defaultTimeoutMs: config.pluginTimeoutMs });
    if (plugins.length > 0) logger.info({ plugins: plugins.map((p) => p.name) }, 'plugins loaded');
  }

  // State last: nothing above can fail with a store, a connection or a file left open.
  const connections = createConnections(config, logger);
  const closers: (() => Promise<unknown>)[] = [() => connections.close()];
  // A server that stops answering without closing the connection (a hung host, a partition)
  // would hold its client's close, and the shutdown, forever: past the budget, go on without it.
  const closeAll = async () => {
    const until = Date.now() + CLOSE_TIMEOUT_MS;
    for (const close of closers.reverse()) {
      const within = Math.max(until - Date.now(), CLOSE_STEP_MIN_MS);
      if (
        !(await settlesWithin(
          close().catch(() => undefined),
          within,
        ))
      )
        logger.error(
          { timeoutMs: within },
          'a server did not close within the shutdown budget: going on without it',
        );
    }
  };
  try {
    const checks: Services['checks'] = [];
    let stores: Stores | undefined;
    if (roles.has('conversation') || roles.has('gateway')) {
      stores = await openStores(config, baseDir, connections);
      closers.push(() => stores!.close());
      checks.push({ name: `store:${config.store.kind}`, check: () => stores!.conversations.ping() });
    }
    const bus = observeBus(await openBus(config, baseDir, connections, logger, metrics), {
      metrics: hot,
      maxAttempts: config.bus.maxAttempts,
    });
    checks.push({ name: `bus:${config.bus.kind}`, check: () => bus.ping() });
    const events = createEventPublisher(bus, logger, hot);
    let audit: AuditLog | undefined;
    if (config.audit.enabled && roles.has('conversation')) {
      audit = await startAuditLog(bus, resolve(baseDir, config.audit.path), logger);
    }
    closers.push(async () => {
      await bus.drain();
      await audit?.close();
      await bus.close();
    });

    const opened = await openTransport(config, { connections, logger, ...runtime });
    const transport = hot ? meterTransport(opened, hot) : opened;
    closers.push(() => transport.close());
    if (transport.kind !== 'local')
      checks.push({ name: `transport:${transport.kind}`, check: () => connections.ping() });

    const serving = createServing(transport);
    if (models) await serving.serve(modelsContract, models.service);
    for (const skill of skillHost?.skills ?? []) {
      await serving.serve(skillServiceContract(skill.name), skillHost!.handlers);
    }
    let conversation: ConversationService | undefined;
    if (roles.has('conversation')) {
      const lease = await openLease(config, transport.kind, connections);
      if (lease) closers.push(() => lease.close());
      conversation = createConversationService({
        agents: config.agents,
        defaultAgentId: config.defaultAgent ?? config.agents[0]!.id,
        store: stores!.conversations,
        models: transport.client(modelsContract, middleware),
        skills: createSkillRouter({
          transport,
          middleware,
          skills: skillHost ? skillHost.skills.map((skill) => skill.name) : skillNamesOf(config),
          logger,
        }),
        hooks: hooks!,
        events,
        logger,
        includeText: config.log.includeText,
        ...(hot ? { metrics: hot } : {}),
        ...(lease ? { lease } : {}),
        // Across processes the gateway may send a message again: run each message id once.
        ...(transport.kind === 'local' ? {} : { turns: stores!.dedupe }),
        // The Redis lease and stores share the one client of `connections.redis()`: its commands
        // run in the order they are sent.
        readsAfterLease: lease?.kind === 'redis' && config.store.kind === 'redis',
      });
      await serving.serve(conversationContract, conversation.handlers);
    }
    if (roles.has('gateway')) await serving.serve(gatewayContract, createGatewayHandlers());
    const skills = skillHost ? [] : skillNamesOf(config);
    checks.push(...serviceChecks({ roles, transport, skills }));

    return {
      roles,
      transport,
      connections,
      bus,
      ...(roles.has('conversation') && stores ? { conversations: stores.conversations } : {}),
      ...(roles.has('gateway') && stores ? { dedupe: stores.dedupe } : {}),
      ...(hooks ? { hooks } : {}),
      ...(conversation ? { conversation } : {}),
      ...(skillHost ? { skillHost } : {}),
      ...(models ? { models: models.service } : {}),
      checks,
      get served() {
        return serving.count;
      },
      async drain() {
        await serving.stop([conversationContract.name, gatewayContract.name]);
        await conversation?.drain();
        await serving.stop();
        await serving.idle();
      },
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** Loads the configured skills (and the embedder's) into a host. */
async function buildSkillHost(
  config: Config,
  baseDir: string,
  logger: Logger,
  metrics: Metrics | undefined,
  extras: ServiceExtras,
): Promise<SkillHost> {
  const skills = [
    ...(await loadSkills(config.skills.load, { baseDir, builtinDir: BUILTIN_SKILLS })),
    ...(extras.skills ?? []),
  ];
  return createSkillHost({
    skills,
    secrets: (skill) => {
      const fromEnv: Record<string, string> = {};
      for (const name of skill.secrets ?? []) {
        const value = process.env[name];
        if (value !== undefined) fromEnv[name] = value;
      }
      return { ...fromEnv, ...config.skills.secrets[skill.name] };
    },
    defaultTimeoutMs: config.skills.timeoutMs,
    logger,
    includeText: config.log.includeText,
    ...(metrics ? { metrics } : {}),
  });
}

/** Opens the stores of `config.store.kind`, failing at start (naming the store) when unusable. */
async function openStores(config: Config, baseDir: string, connections: Connections): Promise<Stores> {
  const kind = config.store.kind;
  const stores = createStores({
    kind,
    path: config.store.path === ':memory:' ? ':memory:' : resolve(baseDir, config.store.path),
    thread: config.store.thread,
    ...(kind === 'redis'
      ? {
          redis: withReplyTimeout(await connections.redis(), config.redis.commandTimeoutMs),
          prefix: config.redis.keyPrefix,
        }
      : {}),
    ...(kind === 'postgres'
      ? {
          postgres: await connections.postgres(),
          schema: config.postgres.schema,
          tablePrefix: config.postgres.tablePrefix,
        }
      : {}),
  });
  await stores.conversations.ping().catch(async (err: unknown) => {
    await stores.close().catch(() => undefined);
    const where = kind === 'sqlite' ? ` at ${config.store.path}` : '';
    throw new ClawmeshError(
      'UNAVAILABLE',
      `the ${kind} store${where} is not usable: ${String((err as Error).message ?? err)}`,
      { cause: err },
    );
  });
  return stores;
}

/** The bus of `config.bus.kind`, sharing the process's Redis client or NATS connection. */
async function openBus(
  config: Config,
  baseDir: string,
  connections: Connections,
  logger: Logger,
  metrics: Metrics,
): Promise<ManagedBus> {
  const kind = config.bus.kind;
  const prefix = config.nats.subjectPrefix;
  const spool =
    kind !== 'memory' && config.bus.spoolDir !== false
      ? openEventSpool(resolve(baseDir, config.bus.spoolDir), serviceNameOf(config.roles), logger)
      : undefined;
  try {
    return await createBus({
      kind,
      logger,
      metrics,
      maxAttempts: config.bus.maxAttempts,
      ...(spool ? { buffer: { spool } } : {}),
      ...(kind === 'redis'
        ? { redis: { client: await connections.redis(), prefix: `${config.redis.keyPrefix}events:` } }
        : {}),
      ...(kind === 'nats'
        ? {
            nats: {
              connection: await connections.nats(),
              subjectPrefix: `${prefix}.events`,
              streamName: `${prefix.toUpperCase().replace(/[^A-Z0-9_-]/g, '_')}_EVENTS`,
            },
          }
        : {}),
      ...(kind === 'rabbitmq'
        ? { rabbitmqUrl: config.rabbitmq.url, rabbitmq: { exchange: `${prefix}.events` } }
        : {}),
    });
  } catch (err) {
    spool?.close(true);
    throw err;
  }
}

/**
 * The conversation role's turn lease and turn dedupe. `auto`: a Redis lease when turns of one
 * conversation can reach several processes (a remote transport, or a shared store), else none —
 * the in-process queue orders them.
 */
async function openLease(
  config: Config,
  transport: string,
  connections: Connections,
): Promise<TurnLease | undefined> {
  const shared = transport !== 'local' || config.store.kind === 'redis' || config.store.kind === 'postgres';
  const kind = config.store.lease === 'auto' ? (shared ? 'redis' : undefined) : config.store.lease;
  const ttlMs = config.store.leaseTtlMs;
  if (kind === 'memory') return createMemoryTurnLease({ ttlMs });
  if (kind === 'redis') {
    // The store and the bus may need no Redis: say what this one is for, and how to do without.
    const redis = await connections.redis().catch((err: unknown) => {
      throw new ClawmeshError(
        'UNAVAILABLE',
        `${(err as Error).message}; needed for the turn lease across conversation replicas (store.lease: ${config.store.lease}). A single conversation process can set CLAWMESH_STORE__LEASE=memory instead`,
        { cause: err },
      );
    });
    return createTurnLease({
      kind: 'redis',
      redis: withReplyTimeout(redis, config.redis.commandTimeoutMs),
      prefix: config.redis.keyPrefix,
      ttlMs,
    });
  }
  return undefined;
}
