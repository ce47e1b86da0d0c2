import { CircuitState, type IBackoff, type IBackoffFactory } from 'cockatiel';
import { type CallContext, remainingMs, roundMs } from '../../core/context.ts';
import { ClawmeshError } from '../../core/errors.ts';
import type { ProviderCallOptions, ProviderRequest, ProviderResponse } from '../types.ts';
import { type AttemptLimits, type Progress, runAttempt } from './attempt.ts';
import { classify, isCallersFault, retryAfterOf } from './classify.ts';
import { providerRequestOf } from './provider-request.ts';
import { type DeploymentSlot, isCircuitRefusal, recordFailure, recordSuccess } from './slot.ts';
import { sleep } from './timing.ts';
import type { Attempt, ChainHooks, ChainRequest, ChainResult, RetryOptions, SkipReason } from './types.ts';

/** Everything a failover run needs, resolved once per chain. */
export interface FailoverPlan {
  slots: readonly DeploymentSlot[];
  limits: AttemptLimits;
  /** What each provider call gets: the connect timeout. */
  providerOptions: ProviderCallOptions;
  retry: RetryOptions;
  /** Decorrelated-jitter exponential backoff (cockatiel), shared: each call walks its own sequence. */
  backoff: IBackoffFactory<unknown>;
  hooks: ChainHooks;
  now: () => number;
}

const MESSAGE_LIMIT = 200;

function shorten(message: string): string {
  return message.length > MESSAGE_LIMIT ? `${message.slice(0, MESSAGE_LIMIT - 1)}…` : message;
}

function describe(attempt: Attempt): string {
  if (attempt.skipped) return `${attempt.deployment} skipped (${attempt.skipped})`;
  return `${attempt.deployment} ${attempt.code}: ${attempt.message} (${attempt.durationMs} ms)`;
}

function report(plan: FailoverPlan, attempts: Attempt[], attempt: Attempt): void {
  attempts.push(attempt);
  notify(plan, attempt);
}

function notify(plan: FailoverPlan, attempt: Attempt): void {
  const hook = plan.hooks.onAttempt;
  if (!hook) return;
  try {
    hook(attempt);
  } catch {
    // An observer must never fail the call it observes.
  }
}

function skip(plan: FailoverPlan, attempts: Attempt[], slot: DeploymentSlot, reason: SkipReason): void {
  const code = reason === 'rate-limited' ? 'RATE_LIMITED' : 'UNAVAILABLE';
  const message = reason === 'rate-limited' ? 'rate limited, waiting for its Retry-After' : 'circuit open';
  report(plan, attempts, {
    deployment: slot.deployment.id,
    ok: false,
    code,
    message,
    durationMs: 0,
    skipped: reason,
  });
}

/**
 * Every option failed: `UNAVAILABLE` listing the attempts — or, when every deployment called
 * refused the request itself as invalid ({@link isCallersFault}), the last refusal as the
 * caller's `INVALID_ARGUMENT`, with the attempts.
 */
function exhausted(plan: FailoverPlan, attempts: Attempt[], failures: ClawmeshError[]): ClawmeshError {
  const last = failures[failures.length - 1];
  if (last && failures.every(isCallersFault)) return withAttempts(last, attempts);
  const details: Record<string, unknown> = { attempts };
  const now = plan.now();
  let soonest = Number.POSITIVE_INFINITY;
  for (const slot of plan.slots) if (slot.limitedUntil > now) soonest = Math.min(soonest, slot.limitedUntil);
  if (soonest !== Number.POSITIVE_INFINITY)
    details.retryAfterSeconds = Math.max(1, Math.ceil((soonest - now) / 1000));
  // Worth trying later when anything failed for a passing reason: a 429, a 5xx, an open circuit.
  const retryable =
    attempts.some((a) => a.skipped !== undefined) ||
    failures.some((e) => e.code === 'RATE_LIMITED' || (e.retryable && e.code === 'UNAVAILABLE'));
  return new ClawmeshError('UNAVAILABLE', `no deployment answered: ${attempts.map(describe).join('; ')}`, {
    cause: failures[failures.length - 1],
    retryable,
    details,
  });
}

function withAttempts(
  error: ClawmeshError,
  attempts: Attempt[],
  extra: Record<string, unknown> = {},
): ClawmeshError {
  return new ClawmeshError(error.code, error.message, {
    cause: error,
    retryable: error.retryable,
    details: { ...error.details, ...extra, attempts },
  });
}

/**
 * An attempt through cockatiel's `execute` (an open circuit past its cooldown: the half-open
 * probe). Its own function so that `failover` captures nothing in a closure: V8 would otherwise
 * keep its loop variables in a heap context allocated on every call.
 */
function throughBreaker(
  slot: DeploymentSlot,
  plan: FailoverPlan,
  request: ProviderRequest,
  ctx: CallContext,
  signal: AbortSignal | undefined,
  onDelta: ((text: string) => void) | undefined,
  progress: Progress,
): Promise<ProviderResponse> {
  return slot.breaker.execute(() =>
    runAttempt(plan, slot.deployment.provider, request, ctx, signal, onDelta, progress),
  );
}

/** Waits out a retry's backoff; an abort meanwhile fails the call with the attempts so far. */
function backOff(ms: number, signal: AbortSignal | undefined, attempts: Attempt[]): Promise<void> {
  return sleep(ms, signal).catch((abort: unknown) => {
    throw withAttempts(ClawmeshError.from(abort), attempts);
  });
}

/** The progress of a call that does not stream: nothing is ever delivered (never written). */
const NOT_STREAMING: Progress = Object.freeze({ delivered: 0, chars: 0 });

/**
 * One call through the chain: each deployment in order, skipping the rate-limited and the open;
 * retries of transient failures with backoff inside the deadline; a 429 moves on at once.
 *
 * While a deployment's circuit is closed the provider is called directly and the outcome is
 * reported to the breaker afterwards ({@link recordSuccess}, {@link recordFailure}); an open
 * circuit past its cooldown is tried through cockatiel's `execute`, which runs the half-open
 * probe. The plain path allocates the attempt list only when it is returned. A streamed call
 * keeps its deliveries in `tracked` when given: what a caller left or cut mid-answer was sent.
 */
export function failover(
  plan: FailoverPlan,
  request: ChainRequest,
  ctx: CallContext,
  onDelta: ((text: string) => void) | undefined,
  signal: AbortSignal | undefined,
  tracked?: Progress,
): Promise<ChainResult> {
  const slot = plan.slots[0] as DeploymentSlot;
  if (onDelta) return failoverLoop(plan, request, ctx, onDelta, signal, tracked, undefined);
  // One reading of the clock: whether the deployment is rate limited, and when the attempt began.
  const begun = plan.now();
  if (slot.limitedUntil > begun || slot.breaker.state !== CircuitState.Closed)
    return failoverLoop(plan, request, ctx, onDelta, signal, tracked, undefined);
  // The plain path (no stream, the first deployment ready): its first attempt is awaited by no
  // async frame of its own, and the loop takes over only when it fails.
  const { deployment } = slot;
  const providerRequest = providerRequestOf(request, deployment.model);
  let attempt: Promise<ProviderResponse>;
  try {
    attempt = runAttempt(plan, deployment.provider, providerRequest, ctx, signal, undefined, NOT_STREAMING);
  } catch (err) {
    attempt = Promise.reject(err);
  }
  return attempt.then(
    (response) => firstAnswered(plan, slot, response, begun),
    (error: unknown) => failoverLoop(plan, request, ctx, undefined, signal, tracked, { error, begun }),
  );
}

/** A first attempt made on a closed circuit, outside the loop, that failed. */
interface FirstFailure {
  error: unknown;
  /** When it began (`plan.now()`). */
  begun: number;
}

/** The result of a call its first attempt answered. */
function firstAnswered(
  plan: FailoverPlan,
  slot: DeploymentSlot,
  response: ProviderResponse,
  begun: number,
): ChainResult {
  recordSuccess(slot);
  const success: Attempt = {
    deployment: slot.deployment.id,
    ok: true,
    durationMs: roundMs(plan.now() - begun),
  };
  notify(plan, success);
  return { response, deployment: slot.deployment, attempts: [success], fallbackUsed: false };
}

/** The chain's loop; `first`, when given, is the failure of the first deployment's first attempt. */
async function failoverLoop(
  plan: FailoverPlan,
  request: ChainRequest,
  ctx: CallContext,
  onDelta: ((text: string) => void) | undefined,
  signal: AbortSignal | undefined,
  tracked: Progress | undefined,
  first: FirstFailure | undefined,
): Promise<ChainResult> {
  const { now } = plan;
  const started = now();
  let attempts: Attempt[] | undefined;
  let failures: ClawmeshError[] | undefined;
  const progress: Progress = onDelta ? (tracked ?? { delivered: 0, chars: 0 }) : NOT_STREAMING;
  let prior = first;
  for (let index = 0; index < plan.slots.length; index++) {
    const slot = plan.slots[index] as DeploymentSlot;
    const { deployment } = slot;
    if (!prior && slot.limitedUntil > now()) {
      attempts ??= [];
      skip(plan, attempts, slot, 'rate-limited');
      continue;
    }
    let backoff: IBackoff<unknown> | undefined;
    for (let tries = 1; ; tries++) {
      // The first attempt, already made, was made on a closed circuit.
      const state = prior ? CircuitState.Closed : slot.breaker.state;
      if (state === CircuitState.HalfOpen) {
        // Another call is the single half-open probe; don't queue behind it.
        attempts ??= [];
        skip(plan, attempts, slot, 'circuit-open');
        break;
      }
      const begun = prior ? prior.begun : now();
      const closed = state === CircuitState.Closed;
      if (onDelta) progress.deployment = deployment;
      const providerRequest = providerRequestOf(request, deployment.model);
      try {
        if (prior) {
          const { error } = prior;
          prior = undefined;
          throw error;
        }
        const response = await (closed
          ? runAttempt(plan, deployment.provider, providerRequest, ctx, signal, onDelta, progress)
          : throughBreaker(slot, plan, providerRequest, ctx, signal, onDelta, progress));
        if (closed) recordSuccess(slot);
        const success: Attempt = { deployment: deployment.id, ok: true, durationMs: roundMs(now() - begun) };
        if (attempts) report(plan, attempts, success);
        else {
          attempts = [success];
          notify(plan, success);
        }
        const result: ChainResult = { response, deployment, attempts, fallbackUsed: index > 0 };
        if (progress.firstDeltaAt !== undefined) result.firstTokenMs = progress.firstDeltaAt - started;
        return result;
      } catch (err) {
        attempts ??= [];
        if (isCircuitRefusal(err)) {
          skip(plan, attempts, slot, 'circuit-open');
          break;
        }
        // A failure the caller caused by going away says nothing about the deployment.
        if (closed && !signal?.aborted) await recordFailure(slot, err);
        const error = ClawmeshError.from(err);
        failures ??= [];
        failures.push(error);
        report(plan, attempts, {
          deployment: deployment.id,
          ok: false,
          code: error.code,
          message: shorten(error.message),
          durationMs: roundMs(now() - begun),
        });
        if (progress.delivered > 0) {
          // Text already reached the caller: another try would repeat it.
          throw new ClawmeshError('UNAVAILABLE', `${deployment.id} failed mid-answer: ${error.message}`, {
            cause: error,
            retryable: false,
            details: { partial: true, deployment: deployment.id, attempts },
          });
        }
        if (signal?.aborted) throw withAttempts(error, attempts);
        const kind = classify(error);
        if (kind === 'stop' || remainingMs(ctx) <= 0) {
          throw error.code === 'DEADLINE_EXCEEDED'
            ? withAttempts(error, attempts)
            : new ClawmeshError('DEADLINE_EXCEEDED', `no answer before the deadline: ${error.message}`, {
                cause: error,
                details: { attempts },
              });
        }
        if (kind === 'rate-limited') {
          slot.limitedUntil = now() + retryAfterOf(error);
          break;
        }
        if (kind !== 'retry' || tries >= plan.retry.maxAttempts) break;
        backoff = backoff ? backoff.next(undefined) : plan.backoff.next(undefined);
        // No time left for the wait and a try: move on rather than sleep into the deadline.
        if (backoff.duration >= remainingMs(ctx)) break;
        await backOff(backoff.duration, signal, attempts);
      }
    }
  }
  throw exhausted(plan, attempts ?? [], failures ?? []);
}
