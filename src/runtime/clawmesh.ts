import type { FastifyInstance } from 'fastify';
import { createEventPublisher } from '../bus/publisher.ts';
import { type LoadConfigOptions, loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import type { CallMiddleware, Client } from '../core/contract.ts';
import { conversationContract } from '../core/contracts/conversation.ts';
import { ClawmeshError } from '../core/errors.ts';
import { createInFlight } from '../core/in-flight.ts';
import { settlesWithin } from '../core/wait.ts';
import { registerApiRoutes } from '../gateway/api-routes.ts';
import { createApiKeyCheck } from '../gateway/auth.ts';
import { registerWebChatFromConfig } from '../gateway/channels/webchat/settings.ts';
import { conversationFailover } from '../gateway/failover.ts';
import { createIdempotency } from '../gateway/idempotency.ts';
import { createRateLimit } from '../gateway/rate-limit.ts';
import { registerOpsRoutes } from '../http/ops-routes.ts';
import { createHttpServer } from '../http/server.ts';
import { registerOpenAIRoutes } from '../models/api/routes.ts';
import { registerProcessDashboard } from '../observability/dashboard/process.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { keepRoleMetrics } from '../observability/metric-roles.ts';
import { createMetrics, type Metrics } from '../observability/metrics.ts';
import { tracingEnv } from '../observability/otel-env.ts';
import { rpcMetrics } from '../observability/rpc-metrics.ts';
import { secretValuesOf } from '../observability/secrets.ts';
import { initTracing } from '../observability/tracing.ts';
import { type Channels, startChannels } from './channels.ts';
import { redact } from './connections.ts';
import { INSTANCE_ID, serviceNameOf } from './instance.ts';
import { buildServices, type ServiceExtras, type Services } from './services.ts';

/** Options of {@link createClawmesh}. */
export interface ClawmeshOptions {
  /** A validated config; loaded with {@link loadConfig} from `configOptions` when absent. */
  config?: Config;
  configOptions?: LoadConfigOptions;
  /** Where relative paths resolve from (default: the config file's directory, or the cwd). */
  baseDir?: string;
  logger?: Logger;
  /** Skills given as objects (made with `defineSkill`), served beside the configured ones. */
  skills?: ServiceExtras['skills'];
  /** Plugins given as objects, run beside the configured ones. */
  plugins?: ServiceExtras['plugins'];
}

/** A running (or ready to run) Clawmesh process. */
export interface Clawmesh {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly services: Services;
  /** A client of the Conversation Manager, for in-process use (the CLI chat, tests). */
  readonly conversation: Client<typeof conversationContract>;
  /** The HTTP server (API, health, metrics); not listening until {@link Clawmesh.listen}. */
  readonly http: FastifyInstance;
  /**
   * Turns in flight in this process: those the Conversation Manager runs or queues, and those
   * the gateway is waiting on from a conversation role elsewhere.
   */
  readonly inFlight: number;
  /** Starts listening; resolves with the base URL. */
  listen(): Promise<string>;
  /** Stops taking requests, lets turns in flight finish, then releases everything. */
  stop(): Promise<void>;
}

/**
 * Builds a Clawmesh monolith: the four services over the local transport and the HTTP API.
 *
 * @example
 * const app = await createClawmesh();
 * const url = await app.listen();
 */
export async function createClawmesh(options: ClawmeshOptions = {}): Promise<Clawmesh> {
  const loaded = options.config ? undefined : loadConfig(options.configOptions);
  const config = options.config ?? loaded!.config;
  const baseDir = options.baseDir ?? loaded?.baseDir ?? process.cwd();
  const service = serviceNameOf(config.roles);
  const logger =
    options.logger ??
    createLogger({
      level: config.log.level,
      service,
      instance: INSTANCE_ID,
      includeText: config.log.includeText,
      secrets: secretValuesOf(config, process.env),
    });
  const otel = tracingEnv();
  for (const warning of otel.warnings) logger.warn(warning);
  if (otel.off) logger.info(`tracing: off (${otel.off})`);
  const traces = await initTracing({
    serviceName: service,
    instanceId: INSTANCE_ID,
    url: otel.url,
    resource: otel.resource,
    warn: (message) => logger.warn(message),
    // Once per change: a collector that is down or refuses the spans is said once, not per batch.
    onExportState: (failure) => {
      const url = otel.url ? redact(otel.url) : undefined;
      if (failure)
        logger.warn(
          { url, err: failure },
          'tracing: spans cannot be exported; they are dropped until the endpoint takes them',
        );
      else logger.info({ url }, 'tracing: spans are exported again');
    },
  });
  if (traces.export) {
    const { url, protocol } = traces.export;
    logger.info({ url: redact(url), protocol }, 'tracing: exporting spans over OTLP');
  }
  const metrics = createMetrics();
  keepRoleMetrics(metrics, config.roles);
  // `metrics.enabled: false`: nothing on the turn path records; `/metrics` still answers.
  const hot = config.metrics.enabled ? metrics : undefined;
  const gateway = config.gateway;
  // Before the services: the http transport serves `POST /rpc/...` on this server.
  const http = createHttpServer({ logger, metrics: hot, bodyLimitBytes: gateway.bodyLimitBytes });
  const services = await buildServices(
    config,
    baseDir,
    logger,
    metrics,
    {
      ...(options.skills ? { skills: options.skills } : {}),
      ...(options.plugins ? { plugins: options.plugins } : {}),
    },
    { http },
  );
  // Across processes a conversation replica may die mid-turn: the gateway then sends the
  // message again, and the conversation role runs each message id once.
  const failover =
    services.transport.kind === 'local'
      ? []
      : [conversationFailover({ attemptTimeoutMs: config.gateway.attemptTimeoutMs, logger })];
  const metered = hot ? [rpcMetrics(hot, services.transport.kind)] : [];
  // The calls this process is waiting on (a gateway's turns run in another process, the OpenAI-
  // compatible API's completions): shutdown waits for them as it does for the turns the
  // Conversation Manager runs here.
  const calls = createInFlight();
  const counted: CallMiddleware = (_service, next) => (method, input, ctx) => {
    calls.enter();
    return next(method, input, ctx).finally(() => calls.leave());
  };
  // In one process the Conversation Manager counts its own turns.
  const conversation = services.transport.client(conversationContract, [
    ...(services.conversation ? [] : [counted]),
    ...metered,
    ...failover,
  ]);

  const auth = createApiKeyCheck(gateway.apiKeys);
  registerOpsRoutes(http, {
    metrics,
    processMetricsOnly: !hot,
    checks: services.checks,
    identity: { service, instance: INSTANCE_ID, roles: config.roles },
  });
  await registerProcessDashboard(http, { config, baseDir, services, auth });
  let channels: Channels | undefined;
  if (services.roles.has('gateway')) {
    const longestTurn = Math.max(...config.agents.map((agent) => agent.turnTimeoutMs));
    const requestTimeoutMs = longestTurn + 5000;
    registerApiRoutes(http, {
      conversation,
      auth,
      rateLimit: createRateLimit(gateway.rateLimit),
      // A repeat reaching another gateway replica waits for the first run as long as a request may last.
      idempotency: createIdempotency(
        services.dedupe!,
        gateway.idempotencyTtlSeconds * 1000,
        longestTurn + 10_000,
        requestTimeoutMs,
      ),
      requestTimeoutMs,
      logger,
      // In one process the conversation service logs a failed turn itself, with its conversation.
      logFailures: !services.roles.has('conversation'),
      defaultAgentId: config.defaultAgent ?? config.agents[0]!.id,
    });
    registerWebChatFromConfig(http, config, {
      conversation,
      auth,
      logger,
      dedupe: services.dedupe!,
      store: services.conversations,
    });
    channels = await startChannels(http, {
      config,
      baseDir,
      conversation,
      dedupe: services.dedupe!,
      auth,
      logger,
      metrics,
      redis: () => services.connections.redis(),
      postgres: () => services.connections.postgres(),
    });
    // `/readyz` and the dashboard read the list at each request: the channels' checks join it.
    services.checks.push(...channels.checks);
  }
  if (services.models) {
    // The Model Gateway's OpenAI-compatible API (POST /v1/chat/completions, GET /v1/models).
    registerOpenAIRoutes(http, {
      models: services.models,
      auth,
      // Only when the operator sets one: a shared key (or no key) would otherwise hold every
      // client of the API to one count. The budgets bound what callers spend.
      ...(config.models.apiRateLimit
        ? { rateLimit: createRateLimit(config.models.apiRateLimit, 'requests') }
        : {}),
      forwardUser: config.models.forwardUser,
      events: createEventPublisher(services.bus, logger, hot),
      ...(hot ? { metrics: hot } : {}),
      inFlight: calls,
    });
  }

  let stopping: Promise<void> | undefined;
  return {
    config,
    logger,
    metrics,
    services,
    conversation,
    http,
    get inFlight() {
      return Math.max(services.conversation?.inFlight ?? 0, services.served, calls.count);
    },
    async listen() {
      // Roles without a public API (conversation, skills) listen where configured: their
      // health, metrics and RPC endpoints are for the deployment's own network.
      const publicApi = services.roles.has('gateway') || services.roles.has('models');
      const host = auth.enabled || !publicApi ? gateway.host : '127.0.0.1';
      if (!auth.enabled && publicApi) {
        logger.warn(
          'no API keys configured (gateway.apiKeys or CLAWMESH_API_KEYS): the HTTP API is open, so it listens on 127.0.0.1 only',
        );
      }
      await http.listen({ port: gateway.port, host }).catch((err: unknown) => {
        throw listenError(err, host, gateway.port);
      });
      const address = http.server.address();
      const port = typeof address === 'object' && address ? address.port : gateway.port;
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
      logger.info(
        {
          url,
          roles: [...services.roles],
          transport: services.transport.kind,
          store: config.store.kind,
          // The default model is the models role's: a conversation role asks whichever one
          // answers, so naming its own config's default there misled (it said "local").
          ...(services.roles.has('models') ? { model: config.models.default } : {}),
        },
        `Clawmesh ${services.roles.size === 4 ? '' : `(${[...services.roles].join(', ')}) `}listening on ${url}`,
      );
      return url;
    },
    stop() {
      stopping ??= (async () => {
        const closed = http.close();
        await channels?.stop();
        await settlesWithin(Promise.all([services.drain(), calls.idle()]), config.shutdownTimeoutMs);
        http.server.closeIdleConnections();
        // Past the shutdown timeout, connections still open are cut.
        await settlesWithin(closed, 1000);
        http.server.closeAllConnections();
        await closed;
        await services.close();
        await traces.shutdown().catch(() => undefined);
      })();
      return stopping;
    },
  };
}

/**
 * What a failed listen tells the operator: a port in use (most often two roles started on one
 * host without a `PORT` each) or one this user may not bind, with the setting that changes it.
 * Other errors pass unchanged.
 */
function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as { code?: unknown } | undefined)?.code;
  const where = `${host}:${port}`;
  if (code === 'EADDRINUSE') {
    return new ClawmeshError(
      'UNAVAILABLE',
      `port ${where} is already in use by another process: set PORT (or gateway.port) to a free port; each role started on one host needs a port of its own`,
      { cause: err, retryable: false },
    );
  }
  if (code === 'EACCES') {
    return new ClawmeshError(
      'UNAVAILABLE',
      `not allowed to listen on ${where}: ports below 1024 need privileges; set PORT (or gateway.port) to 1024 or above`,
      { cause: err, retryable: false },
    );
  }
  return err;
}
