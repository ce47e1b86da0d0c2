import type { RedisClientType } from 'redis';
import type { Config } from '../config/schema.ts';
import type { DeploymentConfig } from '../config/schema-models.ts';
import { ClawmeshError } from '../core/errors.ts';
import { type Budgets, createBudgets } from '../models/accounting/budgets.ts';
import { createMemoryUsageStore, createRedisUsageStore } from '../models/accounting/usage-store.ts';
import { createMemoryCache } from '../models/cache/memory.ts';
import { createRedisCache } from '../models/cache/redis.ts';
import type { ResponseCache } from '../models/cache/types.ts';
import { createLocalProvider } from '../models/providers/local/provider.ts';
import { createOutboundHttp, type OutboundHttp } from '../models/providers/outbound.ts';
import type { ChainOptions } from '../models/resilience/chain.ts';
import { createModelsService, type ModelsService } from '../models/service.ts';
import type { Deployment, ModelProvider } from '../models/types.ts';
import { callFields, type Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';

/** What {@link buildModels} needs besides the config. */
export interface BuildModelsDeps {
  logger: Logger;
  metrics?: Metrics;
  /** The process's Redis client, opened on first use; needed for `cache.kind: redis` and `budgets.store: redis`. */
  redis?: () => Promise<RedisClientType>;
  /**
   * The SDK providers' outbound HTTP client: `node-fetch` over keep-alive agents (default, see
   * `createOutboundHttp`; Node's global `fetch` when node-fetch cannot be loaded), or `fetch`,
   * Node's global fetch (benchmarks compare the two).
   */
  outboundHttp?: 'node-fetch' | 'fetch';
}

/** The Model Gateway of a process. */
export interface BuiltModels {
  /** The service: the models contract's handlers, `stream`, `describe`, `usage`. */
  service: ModelsService;
  /** Names an agent's `model` may start with: providers, deployment ids and tiers. */
  providers: string[];
}

type ProviderKind = 'openai' | 'anthropic';

/** The SDK providers, loaded only when configured: each SDK costs megabytes of RSS and tens of ms of start-up. */
async function sdkProvider(
  kind: ProviderKind,
  settings: { apiKey: string; baseUrl?: string | undefined; model: string; timeoutMs: number },
  outbound: OutboundHttp | undefined,
): Promise<ModelProvider> {
  const common = {
    apiKey: settings.apiKey,
    model: settings.model,
    timeoutMs: settings.timeoutMs,
    ...(settings.baseUrl ? { baseURL: settings.baseUrl } : {}),
  };
  if (kind === 'openai') {
    const { createOpenAIProvider } = await import('../models/providers/openai/provider.ts');
    return createOpenAIProvider({ ...common, ...(outbound ? { http: outbound } : {}) });
  }
  const { createAnthropicProvider } = await import('../models/providers/anthropic/provider.ts');
  return createAnthropicProvider({ ...common, ...(outbound ? { http: outbound } : {}) });
}

/** One named deployment: its own provider instance (key, base URL) over the provider's shortcut settings. */
async function deploymentOf(
  id: string,
  entry: DeploymentConfig,
  config: Config['models'],
  local: ModelProvider,
  outbound: () => Promise<OutboundHttp | undefined>,
): Promise<Deployment> {
  if (entry.provider === 'local') return { id, provider: local, model: entry.model ?? local.defaultModel };
  const shortcut = config[entry.provider];
  const apiKey = entry.apiKey ?? shortcut.apiKey;
  if (!apiKey) {
    const variable = entry.provider === 'openai' ? 'OPENAI_API_KEY' : 'ANTHROPIC_API_KEY';
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `invalid configuration:\n  models.deployments.${id}.apiKey: the ${entry.provider} deployment needs an API key (or set ${variable})`,
    );
  }
  const model = entry.model ?? shortcut.model;
  const provider = await sdkProvider(
    entry.provider,
    {
      apiKey,
      baseUrl: entry.baseUrl ?? shortcut.baseUrl,
      model,
      timeoutMs: entry.timeoutMs ?? shortcut.timeoutMs,
    },
    await outbound(),
  );
  return { id, provider, model };
}

/** The resilience chain's options from `models.resilience`. */
export function chainOptionsOf(resilience: Config['models']['resilience']): ChainOptions {
  return {
    connectTimeoutMs: resilience.timeouts.connectMs,
    firstTokenTimeoutMs: resilience.timeouts.firstTokenMs,
    callTimeoutMs: resilience.timeouts.totalMs,
    retry: {
      maxAttempts: resilience.retries.max + 1,
      baseDelayMs: resilience.retries.baseDelayMs,
      maxDelayMs: Math.max(resilience.retries.maxDelayMs, resilience.retries.baseDelayMs),
    },
    breaker: {
      failureThreshold: resilience.breaker.failureThreshold,
      cooldownMs: resilience.breaker.cooldownMs,
    },
  };
}

function needRedis(deps: BuildModelsDeps, key: string): () => Promise<RedisClientType> {
  if (!deps.redis) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `invalid configuration:\n  ${key}: redis needs a Redis connection (redis.url)`,
    );
  }
  return deps.redis;
}

/**
 * Builds the Model Gateway from `config.models`: the `local` provider always, `openai` and
 * `anthropic` when their keys are set, the named deployments, tiers and routing rules, the
 * resilience chain's options, the answer cache (memory or Redis), prices and budgets.
 *
 * @example
 * const { service } = await buildModels(config, { logger, metrics });
 * await transport.serve(modelsContract, service);
 */
export async function buildModels(config: Config, deps: BuildModelsDeps): Promise<BuiltModels> {
  const models = config.models;
  const local = createLocalProvider();
  const providers: ModelProvider[] = [local];
  // One outbound HTTP client (keep-alive agents) for every SDK provider, made on first need; its
  // new connections get `resilience.timeouts.connectMs`.
  let outboundHttp: Promise<OutboundHttp | undefined> | undefined;
  const outbound = () => {
    outboundHttp ??=
      deps.outboundHttp === 'fetch'
        ? Promise.resolve(undefined)
        : createOutboundHttp({ connectTimeoutMs: models.resilience.timeouts.connectMs });
    return outboundHttp;
  };
  for (const kind of ['openai', 'anthropic'] as const) {
    const shortcut = models[kind];
    if (shortcut.apiKey)
      providers.push(await sdkProvider(kind, { ...shortcut, apiKey: shortcut.apiKey }, await outbound()));
  }
  const deployments = await Promise.all(
    Object.entries(models.deployments).map(([id, entry]) => deploymentOf(id, entry, models, local, outbound)),
  );

  let cache: ResponseCache | undefined;
  if (models.cache.enabled) {
    const ttlMs = models.cache.ttlSeconds * 1000;
    cache =
      models.cache.kind === 'redis'
        ? createRedisCache({
            client: needRedis(deps, 'models.cache.kind'),
            prefix: `${config.redis.keyPrefix}model-cache:`,
            ttlMs,
            maxBytes: models.cache.maxBytes,
            onError: (err, ctx) =>
              deps.logger.warn(
                { ...(ctx ? callFields(ctx) : {}), err: (err as Error)?.message },
                'model cache: Redis error',
              ),
          })
        : createMemoryCache({ maxEntries: models.cache.maxEntries, maxBytes: models.cache.maxBytes, ttlMs });
  }
  const budgets: Budgets = createBudgets({
    limits: models.budgets,
    store:
      models.budgets.store === 'redis'
        ? createRedisUsageStore({
            client: needRedis(deps, 'models.budgets.store'),
            prefix: `${config.redis.keyPrefix}model-usage:`,
          })
        : createMemoryUsageStore(),
  });

  const service = createModelsService({
    providers,
    defaultModel: models.default,
    deployments,
    tiers: models.tiers,
    routing: models.routing,
    resilience: chainOptionsOf(models.resilience),
    ...(cache ? { cache } : {}),
    cacheNonZeroTemperature: models.cache.cacheNonZeroTemperature,
    prices: models.prices,
    budgets,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    logger: deps.logger,
  });
  return { service, providers: service.names() };
}
