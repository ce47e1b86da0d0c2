import type { CallContext } from '../../core/context.ts';
import { elapsedMs } from '../../core/context.ts';
import type { ModelRequest, ModelResponse, Route } from '../../core/contracts/models.ts';
import { callLogger, type Logger } from '../../observability/logger.ts';
import type { Attempt, DeploymentChain, StreamProgress } from '../resilience/chain.ts';
import type { RouteDecision } from '../router/router.ts';
import type { Deployment } from '../types.ts';
import type { Budgets } from './budgets.ts';
import { estimateUsage } from './estimate.ts';
import type { PriceTable } from './prices.ts';
import type { ModelMetricsRecorder } from './recorder.ts';
import { COUNTED } from './usage-store.ts';

/** `provider/model` of a deployment, built once per deployment rather than once per call. */
const qualifiedNames = new WeakMap<Deployment, string>();

/** The `provider/model` name a deployment answers as. */
export function qualifiedName(deployment: Deployment): string {
  let name = qualifiedNames.get(deployment);
  if (name === undefined) {
    name = `${deployment.provider.name}/${deployment.model}`;
    qualifiedNames.set(deployment, name);
  }
  return name;
}

/** Provider calls made (skipped deployments are not calls). */
export function calledAttempts(attempts: readonly Attempt[]): number {
  let called = 0;
  for (const attempt of attempts) if (!attempt.skipped) called++;
  return called;
}

/** What a call's answer carries into its charge. */
export type Answer = Pick<ModelResponse, 'content' | 'toolCalls' | 'finishReason' | 'usage'>;

/** Options of {@link createCharges}. */
export interface ChargesOptions {
  prices: PriceTable;
  budgets: Budgets | undefined;
  recorder: ModelMetricsRecorder;
  logger: Logger | undefined;
  /** The shared `route` object of a decision. */
  routeOf: (decision: RouteDecision) => Route;
}

/** Where a call's usage becomes a charge: its response, cost and budget count. */
export interface Charges {
  /**
   * The response of a call `deployment` answered (or was charged for): its route, tier and cost
   * from the price table, counted against the context's budgets. The one place a call's usage
   * becomes a charge, whether the provider reported it or the gateway estimated it.
   */
  accounted(
    ctx: CallContext,
    decision: RouteDecision,
    deployment: Deployment,
    answer: Answer,
    started: number,
    fallbackUsed: boolean,
    attempts: number | undefined,
  ): ModelResponse;
  /**
   * Accounting of a streamed call that ended without its answer after the upstream had sent
   * text (the caller left, the deadline passed, the upstream broke off): the provider's usage
   * never arrived, so the prompt and the text streamed so far are charged as an estimate — to
   * the budgets and the token and cost metrics. The upstream stopped when the call did, so this
   * is about what it bills for a cancelled stream. Returns the response the charge stands for,
   * marked `finishReason: 'error'`, for `model.completed`.
   */
  chargeCut(call: StreamedCall, attempts: unknown): ModelResponse;
}

/** A streamed call in flight: what it asked, where it was routed, and what it has sent so far. */
export interface StreamedCall {
  request: ModelRequest;
  ctx: CallContext;
  decision: RouteDecision;
  chain: DeploymentChain;
  progress: StreamProgress;
  /** `performance.now()` when the call started. */
  started: number;
}

/** Creates the gateway's {@link Charges}. */
export function createCharges(options: ChargesOptions): Charges {
  const { prices, budgets, recorder, logger, routeOf } = options;

  /** Counts a response's tokens and cost against the context's user and conversation budgets. */
  const count = (ctx: CallContext, response: ModelResponse) => {
    const tokens = response.usage.inputTokens + response.usage.outputTokens;
    const counted = budgets!.record(ctx, tokens, response.costUsd ?? 0);
    // The memory store counts at once: no handler (and no promise) to attach on every call.
    if (counted === COUNTED) return;
    counted.catch((err: unknown) => {
      if (logger)
        callLogger(logger, ctx).warn({ err: (err as Error)?.message }, 'could not count model usage');
    });
  };

  const accounted: Charges['accounted'] = (
    ctx,
    decision,
    deployment,
    answer,
    started,
    fallbackUsed,
    attempts,
  ) => {
    const model = qualifiedName(deployment);
    const response: ModelResponse = {
      content: answer.content,
      toolCalls: answer.toolCalls,
      finishReason: answer.finishReason,
      usage: answer.usage,
      model,
      latencyMs: elapsedMs(started),
      cached: false,
      route: routeOf(decision),
      deployment: deployment.id,
      fallbackUsed,
    };
    if (attempts !== undefined) response.attempts = attempts;
    if (decision.tier !== undefined) response.tier = decision.tier;
    const costUsd = prices.costOf(model, answer.usage);
    if (costUsd !== undefined) response.costUsd = costUsd;
    if (budgets && (ctx.userId || ctx.conversationId)) count(ctx, response);
    return response;
  };

  const chargeCut: Charges['chargeCut'] = (call, attempts) => {
    const { request, ctx, decision, chain, progress, started } = call;
    const deployment = progress.deployment as Deployment;
    const usage = estimateUsage(request, progress.chars);
    const response = accounted(
      ctx,
      decision,
      deployment,
      { content: '', toolCalls: [], finishReason: 'error', usage },
      started,
      deployment !== chain.deployments[0],
      Array.isArray(attempts) ? calledAttempts(attempts as Attempt[]) : undefined,
    );
    recorder.charged(response, ctx.agentId);
    if (logger) {
      callLogger(logger, ctx).info(
        {
          model: response.model,
          inputTokens: usage.inputTokens,
          outputTokens: usage.outputTokens,
          estimated: true,
        },
        'model stream ended before its usage: charged an estimate',
      );
    }
    return response;
  };

  return { accounted, chargeCut };
}
