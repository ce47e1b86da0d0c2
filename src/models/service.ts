import type { RoutingRule } from '../config/schema-models.ts';
import { type CallContext, elapsedMs } from '../core/context.ts';
import type { Handlers } from '../core/contract.ts';
import type { ModelRequest, ModelResponse, modelsContract, Route, Usage } from '../core/contracts/models.ts';
import { ClawmeshError } from '../core/errors.ts';
import { callLogger, type Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Budgets, UsageReport } from './accounting/budgets.ts';
import { calledAttempts, createCharges, qualifiedName, type StreamedCall } from './accounting/charges.ts';
import { createPriceTable, type Price } from './accounting/prices.ts';
import { createModelMetricsRecorder } from './accounting/recorder.ts';
import { cacheKey, isCacheable } from './cache/key.ts';
import type { CachedAnswer, ResponseCache } from './cache/types.ts';
import { asGatewayError } from './gateway-errors.ts';
import type { ChainOptions, ChainResult, DeploymentChain, StreamProgress } from './resilience/chain.ts';
import { createRouter, type RouteDecision } from './router/router.ts';
import { createTargets } from './router/targets.ts';
import type { Deployment, ModelProvider } from './types.ts';

/** What {@link ModelsServiceOptions.onCompleted} hears after each successful completion. */
export interface CompletionInfo {
  /** `provider/model` that answered. */
  model: string;
  usage: Usage;
  latencyMs: number;
  request: ModelRequest;
  /** The whole response, with its route, cache and cost fields. */
  response: ModelResponse;
}

/** Options of {@link createModelsService}. */
export interface ModelsServiceOptions {
  /** The providers to route to, each by its unique name. */
  providers: ModelProvider[];
  /** The target of requests that name none and are not routed to a tier: `provider/model`, a bare provider, a deployment id or a tier. */
  defaultModel: string;
  /** Called after each successful completion, for metrics and cost; its errors are ignored. */
  onCompleted?: (info: CompletionInfo) => void;
  /** Named deployments (ids without `/`), usable in tiers and by name. */
  deployments?: Deployment[];
  /** Tiers: ordered fallback chains of `provider/model` or deployment ids. `fast` and `capable` default to the default model. */
  tiers?: Record<string, string[]>;
  routing?: { rules?: RoutingRule[]; auto?: boolean; difficultyThreshold?: number };
  /** Timeouts, retries and breakers of every chain. */
  resilience?: ChainOptions;
  /** The answer cache; none when absent. */
  cache?: ResponseCache;
  /** Cache requests with a temperature above 0 too. */
  cacheNonZeroTemperature?: boolean;
  /** Prices per model in US dollars per 1M tokens. */
  prices?: Record<string, Price>;
  /** Usage counting and budgets per user and conversation. */
  budgets?: Budgets;
  metrics?: Metrics;
  logger?: Logger;
}

/**
 * One event of {@link ModelsService.stream}: text deltas, then the whole response, last. The
 * first text event names the `provider/model` streaming it (`model`): the one the response will
 * name, since a stream that has sent text never falls back to another deployment.
 */
export type ModelStreamEvent =
  | { type: 'text'; text: string; model?: string }
  | { type: 'done'; response: ModelResponse };

/** The Model Gateway: the contract's handlers, plus streaming and introspection for the HTTP API. */
export interface ModelsService extends Handlers<typeof modelsContract> {
  /**
   * One completion, with its route, cache, fallback and cost fields. Aborting `signal` (the
   * caller went away) stops the upstream call and any retry or fallback.
   */
  complete(request: ModelRequest, ctx: CallContext, signal?: AbortSignal): Promise<ModelResponse>;
  /**
   * One completion as a stream: text deltas, then `done` with the whole response. Breaking out
   * of the loop (or aborting `signal`) stops the upstream call.
   */
  stream(request: ModelRequest, ctx: CallContext, signal?: AbortSignal): AsyncIterable<ModelStreamEvent>;
  /** The default target, tiers (with their chains) and the models this gateway routes to. */
  describe(): { default: string; tiers: { name: string; models: string[] }[]; models: string[] };
  /** Names a model name may start with: providers, deployment ids and tiers. */
  names(): string[];
  /** What a user (today) and a conversation have used, from the budgets' counters. */
  usage(ctx: Pick<CallContext, 'userId' | 'conversationId'>): Promise<UsageReport>;
}

type ChainRequest = Omit<ModelRequest, 'model'>;

/**
 * The request the chain gets: the caller's own (each attempt copies its fields for the provider,
 * with the deployment's model in place of the caller's), or, when it sends an empty tool list,
 * a copy without it: providers get no `tools` rather than none of them.
 */
function chainRequestOf(request: ModelRequest): ChainRequest {
  if (request.tools === undefined || request.tools.length > 0) return request;
  const { tools: _none, ...rest } = request;
  return rest;
}

const CACHEABLE_FINISH = new Set(['stop', 'tool_calls', 'length']);

/**
 * The Model Gateway's handlers. Each call: route (an exact model is never rerouted; otherwise
 * rules and a difficulty estimate pick a tier) → the target's deployment chain (retries,
 * fallback, breakers) → the answer cache → the budgets → the chain → accounting (tokens, cost,
 * metrics). With `ctx.onDelta` the answer's text is streamed to it as it is generated.
 *
 * The plain path (no cache, no budget limits) allocates little and awaits only the chain:
 * decisions and their `route` objects are shared between calls (read-only), the metrics'
 * label children are kept per label set, and nothing is serialized unless the cache is on.
 *
 * @example
 * const models = createModelsService({ providers: [createLocalProvider()], defaultModel: 'local' });
 * const reply = await models.complete({ messages: [{ role: 'user', content: 'hi' }] }, ctx);
 */
export function createModelsService(options: ModelsServiceOptions): ModelsService {
  const configured = options.tiers ?? {};
  if (
    (options.defaultModel === 'fast' || options.defaultModel === 'capable') &&
    !configured[options.defaultModel]
  ) {
    // `fast` and `capable` default to the default model: naming one of them as the default,
    // unconfigured, would make the tier its own chain.
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `defaultModel "${options.defaultModel}" is the tier ${options.defaultModel}, which is not configured ` +
        `(fast and capable default to the default model): set models.tiers.${options.defaultModel}, or name a model or deployment`,
    );
  }
  const defaultEntries = configured[options.defaultModel] ?? [options.defaultModel];
  const tiers: Record<string, string[]> = {
    fast: defaultEntries,
    capable: defaultEntries,
    ...configured,
  };
  // The names the config reaches, as answers and failures are labelled: every other name is
  // ad hoc, the caller's text, and gets a series only while the recorder has room.
  const configuredNames = new Set<string>([
    ...options.providers.map((provider) => `${provider.name}/${provider.defaultModel}`),
    ...(options.deployments ?? []).flatMap((d) => [d.id, `${d.provider.name}/${d.model}`]),
  ]);
  const recorder = createModelMetricsRecorder(options.metrics, configuredNames);
  let targets: ReturnType<typeof createTargets>;
  try {
    targets = createTargets({
      providers: options.providers,
      deployments: options.deployments ?? [],
      tiers,
      prepare: [options.defaultModel],
      ...(options.resilience ? { chain: options.resilience } : {}),
    });
  } catch (err) {
    const error = ClawmeshError.from(err);
    if (error.details?.where !== 'prepare') throw error;
    throw new ClawmeshError('INVALID_ARGUMENT', `defaultModel "${options.defaultModel}": ${error.message}`, {
      cause: err,
    });
  }
  for (const name of [...targets.names(), ...targets.models(), ...targets.tiers().flatMap((t) => t.models)])
    configuredNames.add(name);
  const router = createRouter({
    tiers: Object.keys(tiers),
    rules: options.routing?.rules ?? [],
    auto: options.routing?.auto ?? true,
    difficultyThreshold: options.routing?.difficultyThreshold ?? 0.5,
    defaultTarget: options.defaultModel,
  });
  const prices = createPriceTable(options.prices ?? {});
  const cache = options.cache;
  const cacheAll = options.cacheNonZeroTemperature ?? false;
  const budgets = options.budgets;
  const limited = budgets?.enabled === true;
  const logger = options.logger;
  if (options.metrics) {
    options.metrics.modelCircuits.add(() =>
      targets.state().map((s) => ({ deployment: s.deployment, open: s.circuit === 'open' })),
    );
  }

  const report = (request: ModelRequest, response: ModelResponse) => {
    if (!options.onCompleted) return;
    try {
      options.onCompleted({
        model: response.model,
        usage: response.usage,
        latencyMs: response.latencyMs,
        request,
        response,
      });
    } catch {
      // An observer must never fail the completion it observes.
    }
  };

  // Decisions are shared between calls that route alike; so is the `route` each answer carries.
  const routes = new WeakMap<RouteDecision, Route>();
  const routeOf = (decision: RouteDecision): Route => {
    let route = routes.get(decision);
    if (route === undefined) {
      route = Object.freeze({
        by: decision.by,
        reason: decision.reason,
        ...(decision.difficulty !== undefined ? { difficulty: decision.difficulty } : {}),
      });
      routes.set(decision, route);
    }
    return route;
  };

  /** The chain serving a decision's target; an unknown target is counted and thrown. */
  const chainOf = (decision: RouteDecision): DeploymentChain => {
    try {
      return targets.chainOf(decision.target);
    } catch (err) {
      const error = ClawmeshError.from(err);
      recorder.failed(decision.target, decision.tier, decision.by, error.code);
      throw error;
    }
  };

  /**
   * The cache lookup and the budget check, when either is on: the cache key of a cacheable
   * request (undefined otherwise) and the cached answer, if any.
   */
  const admit = async (
    request: ModelRequest,
    ctx: CallContext,
    decision: RouteDecision,
    started: number,
  ): Promise<{ key: string | undefined; hit: ModelResponse | undefined }> => {
    let key: string | undefined;
    if (cache) {
      if (isCacheable(request, cacheAll)) {
        key = cacheKey(decision.target, request);
        const hit = await cache.get(key, ctx);
        recorder.cacheLookup(hit ? 'hit' : 'miss');
        if (hit) return { key, hit: fromCache(hit, decision, started) };
      } else {
        recorder.cacheLookup('skip');
      }
    }
    if (limited) {
      try {
        await budgets!.check(ctx);
      } catch (err) {
        const error = ClawmeshError.from(err);
        recorder.failed(decision.target, decision.tier, decision.by, error.code);
        throw error;
      }
    }
    return { key, hit: undefined };
  };

  const fromCache = (hit: CachedAnswer, decision: RouteDecision, started: number): ModelResponse => {
    const response: ModelResponse = {
      content: hit.content,
      toolCalls: hit.toolCalls,
      finishReason: hit.finishReason,
      usage: hit.usage,
      model: hit.model,
      latencyMs: elapsedMs(started),
      cached: true,
      route: routeOf(decision),
      fallbackUsed: false,
      attempts: 0,
      costUsd: 0,
    };
    if (decision.tier !== undefined) response.tier = decision.tier;
    return response;
  };

  const { accounted, chargeCut } = createCharges({ prices, budgets, recorder, logger, routeOf });

  /**
   * The error of a streamed call that failed: when the upstream had sent text, charged as
   * {@link chargeCut} says, with the charge under `details.charged` (see `chargedOf`).
   */
  const failedStream = (call: StreamedCall, err: unknown): ClawmeshError => {
    const error = failed(call.decision, err, call.ctx);
    if (call.progress.delivered === 0) return error;
    const charged = chargeCut(call, error.details?.attempts);
    return new ClawmeshError(error.code, error.message, {
      cause: error,
      retryable: error.retryable,
      details: { ...error.details, charged },
    });
  };

  /** Accounting after the chain answered: the response, cost, budgets, cache, metrics. */
  const finish = (
    request: ModelRequest,
    ctx: CallContext,
    decision: RouteDecision,
    key: string | undefined,
    result: ChainResult,
    started: number,
  ): ModelResponse => {
    const { deployment, response: answer } = result;
    const response = accounted(
      ctx,
      decision,
      deployment,
      // The provider's answer as it is (accounting reads its four fields), unless it left out
      // its tool calls.
      answer.toolCalls !== undefined
        ? answer
        : {
            content: answer.content,
            toolCalls: [],
            finishReason: answer.finishReason,
            usage: answer.usage,
          },
      started,
      result.fallbackUsed,
      calledAttempts(result.attempts),
    );
    const { model } = response;
    if (cache && key !== undefined && CACHEABLE_FINISH.has(response.finishReason)) {
      const stored: CachedAnswer = {
        content: response.content,
        toolCalls: response.toolCalls,
        finishReason: response.finishReason,
        usage: response.usage,
        model,
        ...(decision.tier !== undefined ? { tier: decision.tier } : {}),
      };
      cache.set(key, stored, ctx).catch(() => undefined);
    }
    recorder.completed(response, ctx.agentId, result.firstTokenMs);
    if (logger?.isLevelEnabled('debug')) {
      const { latencyMs, attempts, fallbackUsed } = response;
      callLogger(logger, ctx).debug({ model, latencyMs, attempts, fallbackUsed }, 'model call finished');
    }
    report(request, response);
    return response;
  };

  const hitDone = (request: ModelRequest, ctx: CallContext, response: ModelResponse) => {
    recorder.completed(response, ctx.agentId, undefined);
    if (logger?.isLevelEnabled('debug'))
      callLogger(logger, ctx).debug({ model: response.model, cached: true }, 'model call finished');
    report(request, response);
    return response;
  };

  const failed = (decision: RouteDecision, err: unknown, ctx?: CallContext): ClawmeshError => {
    const error = asGatewayError(ClawmeshError.from(err), decision.target);
    recorder.failed(decision.target, decision.tier, decision.by, error.code);
    if (logger && ctx) {
      callLogger(logger, ctx).warn(
        { target: decision.target, code: error.code, err: error.message },
        'model call failed',
      );
    }
    return error;
  };

  /** A completion through the cache and the budgets (either on): the plain path's steps around an admission. */
  const completeAdmitted = async (
    request: ModelRequest,
    ctx: CallContext,
    signal: AbortSignal | undefined,
  ): Promise<ModelResponse> => {
    const started = performance.now();
    const decision = router.decide(request, ctx);
    const chain = chainOf(decision);
    const admitted = await admit(request, ctx, decision, started);
    if (admitted.hit) {
      if (admitted.hit.content && ctx.onDelta) ctx.onDelta(admitted.hit.content);
      return hitDone(request, ctx, admitted.hit);
    }
    const key = admitted.key;
    // A streamed call keeps track of the text sent, charged if it ends without its answer.
    const progress: StreamProgress | undefined = ctx.onDelta ? { delivered: 0, chars: 0 } : undefined;
    let result: ChainResult;
    try {
      result = await chain.complete(chainRequestOf(request), ctx, ctx.onDelta, signal, progress);
    } catch (err) {
      throw progress
        ? failedStream({ request, ctx, decision, chain, progress, started }, err)
        : failed(decision, err, ctx);
    }
    return finish(request, ctx, decision, key, result, started);
  };

  return {
    complete(request, ctx, signal?: AbortSignal) {
      // The plain path (no cache, no budget limits) is not an async function: the chain's
      // promise is the one awaited, and only what the answer needs is kept while it runs.
      if (cache || limited) return completeAdmitted(request, ctx, signal);
      const started = performance.now();
      let decision: RouteDecision;
      let result: Promise<ChainResult>;
      try {
        // A streamed call keeps track of the text sent, charged if it ends without its answer.
        const progress: StreamProgress | undefined = ctx.onDelta ? { delivered: 0, chars: 0 } : undefined;
        decision = router.decide(request, ctx);
        const chain = chainOf(decision);
        try {
          result = chain.complete(chainRequestOf(request), ctx, ctx.onDelta, signal, progress);
        } catch (err) {
          result = Promise.reject(err);
        }
        return result.then(
          (answer) => finish(request, ctx, decision, undefined, answer, started),
          (err: unknown) => {
            throw progress
              ? failedStream({ request, ctx, decision, chain, progress, started }, err)
              : failed(decision, err, ctx);
          },
        );
      } catch (err) {
        return Promise.reject(err);
      }
    },

    async *stream(request, ctx, signal) {
      const started = performance.now();
      const decision = router.decide(request, ctx);
      const chain = chainOf(decision);
      let key: string | undefined;
      if (cache || limited) {
        const admitted = await admit(request, ctx, decision, started);
        if (admitted.hit) {
          const { content, model } = admitted.hit;
          if (content) yield { type: 'text', text: content, model };
          yield { type: 'done', response: hitDone(request, ctx, admitted.hit) };
          return;
        }
        key = admitted.key;
      }
      const progress: StreamProgress = { delivered: 0, chars: 0 };
      let result: ChainResult | undefined;
      let accounted = false;
      try {
        let named = false;
        for await (const event of chain.stream(chainRequestOf(request), ctx, signal, progress)) {
          if (event.type !== 'text') result = event.result;
          else if (named) yield event;
          else {
            named = true;
            yield { type: 'text', text: event.text, model: qualifiedName(progress.deployment as Deployment) };
          }
        }
      } catch (err) {
        accounted = true;
        throw failedStream({ request, ctx, decision, chain, progress, started }, err);
      } finally {
        // The consumer left the loop mid-answer: the upstream stopped, its usage never came.
        if (!result && !accounted && progress.delivered > 0)
          chargeCut({ request, ctx, decision, chain, progress, started }, undefined);
      }
      if (!result)
        throw failed(decision, new ClawmeshError('UNAVAILABLE', 'the model stream ended without an answer'));
      yield { type: 'done', response: finish(request, ctx, decision, key, result, started) };
    },

    async list() {
      return { default: options.defaultModel, models: targets.models(), tiers: targets.tiers() };
    },

    describe: () => ({ default: options.defaultModel, tiers: targets.tiers(), models: targets.models() }),
    names: () => targets.names(),
    usage: async (ctx) => (budgets ? budgets.usage(ctx) : {}),
  };
}
