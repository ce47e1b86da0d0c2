import type { CallContext } from '../../core/context.ts';
import { ClawmeshError } from '../../core/errors.ts';
import type { Deployment } from '../types.ts';
import type { AttemptLimits } from './attempt.ts';
import { createBackoff } from './backoff.ts';
import { type FailoverPlan, failover } from './failover.ts';
import { createSlot, type DeploymentSlot, slotState } from './slot.ts';
import { bridge } from './stream-bridge.ts';
import type {
  BreakerOptions,
  ChainHooks,
  ChainOptions,
  ChainRequest,
  ChainResult,
  ChainStreamEvent,
  DeploymentChain,
  DeploymentPool,
  DeploymentState,
  RetryOptions,
  StreamProgress,
} from './types.ts';

export type { Deployment } from '../types.ts';
export type {
  Attempt,
  BreakerOptions,
  ChainHooks,
  ChainOptions,
  ChainRequest,
  ChainResult,
  ChainStreamEvent,
  CircuitStateName,
  DeploymentChain,
  DeploymentPool,
  DeploymentState,
  RetryOptions,
  SkipReason,
  StreamProgress,
} from './types.ts';

const DEFAULT_LIMITS: AttemptLimits = {
  connectTimeoutMs: 10_000,
  firstTokenTimeoutMs: 30_000,
  callTimeoutMs: 120_000,
};
const DEFAULT_RETRY: RetryOptions = { maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 2_000 };
const DEFAULT_BREAKER: BreakerOptions = { failureThreshold: 5, cooldownMs: 30_000 };

function positive(value: number | undefined, fallback: number, field: string, integer = false): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    const what = integer ? 'a positive integer' : 'a positive number';
    throw new ClawmeshError('INVALID_ARGUMENT', `chain option ${field} must be ${what}, got ${value}`, {
      details: { field },
    });
  }
  return value;
}

interface Resolved {
  limits: AttemptLimits;
  retry: RetryOptions;
  breaker: BreakerOptions;
  now: () => number;
}

function resolveOptions(options: ChainOptions): Resolved {
  const retry = options.retry ?? DEFAULT_RETRY;
  const breaker = options.breaker ?? DEFAULT_BREAKER;
  const resolved: Resolved = {
    limits: {
      connectTimeoutMs: positive(
        options.connectTimeoutMs,
        DEFAULT_LIMITS.connectTimeoutMs,
        'connectTimeoutMs',
      ),
      firstTokenTimeoutMs: positive(
        options.firstTokenTimeoutMs,
        DEFAULT_LIMITS.firstTokenTimeoutMs,
        'firstTokenTimeoutMs',
      ),
      callTimeoutMs: positive(options.callTimeoutMs, DEFAULT_LIMITS.callTimeoutMs, 'callTimeoutMs'),
    },
    retry: {
      maxAttempts: positive(retry.maxAttempts, DEFAULT_RETRY.maxAttempts, 'retry.maxAttempts', true),
      baseDelayMs: positive(retry.baseDelayMs, DEFAULT_RETRY.baseDelayMs, 'retry.baseDelayMs'),
      maxDelayMs: positive(retry.maxDelayMs, DEFAULT_RETRY.maxDelayMs, 'retry.maxDelayMs'),
    },
    breaker: {
      failureThreshold: positive(
        breaker.failureThreshold,
        DEFAULT_BREAKER.failureThreshold,
        'breaker.failureThreshold',
        true,
      ),
      cooldownMs: positive(breaker.cooldownMs, DEFAULT_BREAKER.cooldownMs, 'breaker.cooldownMs'),
    },
    now: options.now ?? Date.now,
  };
  if (resolved.retry.maxDelayMs < resolved.retry.baseDelayMs) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      'chain option retry.maxDelayMs must be at least retry.baseDelayMs',
      {
        details: { field: 'retry.maxDelayMs' },
      },
    );
  }
  return resolved;
}

function checkDeployment(deployment: Deployment, seen: ReadonlyMap<string, unknown>): void {
  if (!deployment.id) throw new ClawmeshError('INVALID_ARGUMENT', 'a deployment needs an id');
  if (seen.has(deployment.id)) {
    throw new ClawmeshError('INVALID_ARGUMENT', `two deployments have the id ${deployment.id}`, {
      details: { deployment: deployment.id },
    });
  }
  if (typeof deployment.provider?.complete !== 'function') {
    throw new ClawmeshError('INVALID_ARGUMENT', `deployment ${deployment.id} has no provider`, {
      details: { deployment: deployment.id },
    });
  }
  if (!deployment.model) {
    throw new ClawmeshError('INVALID_ARGUMENT', `deployment ${deployment.id} names no model`, {
      details: { deployment: deployment.id },
    });
  }
}

function buildChain(slots: DeploymentSlot[], plan: Omit<FailoverPlan, 'slots'>): DeploymentChain {
  const full: FailoverPlan = { ...plan, slots };
  return {
    deployments: slots.map((slot) => slot.deployment),
    complete(request, ctx, onDelta, signal, progress): Promise<ChainResult> {
      return failover(full, request, ctx, onDelta, signal, progress);
    },
    stream(
      request: ChainRequest,
      ctx: CallContext,
      signal?: AbortSignal,
      progress?: StreamProgress,
    ): AsyncIterable<ChainStreamEvent> {
      return {
        [Symbol.asyncIterator]: () =>
          bridge((onDelta, bridged) => failover(full, request, ctx, onDelta, bridged, progress), signal),
      };
    },
    state(): DeploymentState[] {
      const now = plan.now();
      return slots.map((slot) => slotState(slot, now));
    },
  };
}

/**
 * Deployments with shared resilience state, from which chains are built. A deployment listed in
 * several chains (tiers, fallbacks) has one circuit breaker and one rate-limit window.
 *
 * @example
 * const pool = createDeploymentPool([
 *   { id: 'openai-eu', provider: openaiEu, model: 'gpt-4o-mini' },
 *   { id: 'openai-us', provider: openaiUs, model: 'gpt-4o-mini' },
 *   { id: 'claude', provider: anthropic, model: 'claude-3-5-haiku-latest' },
 * ], { retry: { maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 1000 } });
 * const fast = pool.chain(['openai-eu', 'openai-us', 'claude']);
 * const { response, deployment } = await fast.complete({ messages }, ctx);
 */
export function createDeploymentPool(
  deployments: Deployment[],
  options: ChainOptions = {},
  hooks: ChainHooks = {},
): DeploymentPool {
  const resolved = resolveOptions(options);
  const slots = new Map<string, DeploymentSlot>();
  for (const deployment of deployments) {
    checkDeployment(deployment, slots);
    slots.set(deployment.id, createSlot(deployment, resolved.breaker, hooks));
  }
  const plan: Omit<FailoverPlan, 'slots'> = {
    limits: resolved.limits,
    providerOptions: {
      connectTimeoutMs: resolved.limits.connectTimeoutMs,
      callTimeoutMs: resolved.limits.callTimeoutMs,
    },
    retry: resolved.retry,
    backoff: createBackoff(resolved.retry),
    hooks,
    now: resolved.now,
  };
  return {
    chain(ids) {
      if (ids.length === 0)
        throw new ClawmeshError('INVALID_ARGUMENT', 'a chain needs at least one deployment');
      const chosen = ids.map((id) => {
        const slot = slots.get(id);
        if (!slot) {
          throw new ClawmeshError(
            'NOT_FOUND',
            `no deployment named ${id} (known: ${[...slots.keys()].join(', ')})`,
            {
              details: { deployment: id, known: [...slots.keys()] },
            },
          );
        }
        return slot;
      });
      return buildChain(chosen, plan);
    },
    state() {
      const now = resolved.now();
      return [...slots.values()].map((slot) => slotState(slot, now));
    },
    get: (id) => slots.get(id)?.deployment,
  };
}

/**
 * An ordered fallback chain over `deployments`, with its own state: per-deployment retries with
 * jittered exponential backoff on transient failures, a circuit breaker per deployment, 429s that
 * move on at once and skip the deployment until its Retry-After, and connect / first-token / call
 * timeouts, all inside the call context's deadline. When every option fails: `UNAVAILABLE` with
 * `details.attempts`.
 *
 * @example
 * const chain = createDeploymentChain([{ id: 'primary', provider: openai, model: 'gpt-4o-mini' }]);
 * for await (const event of chain.stream({ messages }, ctx)) {
 *   if (event.type === 'text') write(event.text);
 * }
 */
export function createDeploymentChain(
  deployments: Deployment[],
  options: ChainOptions = {},
  hooks: ChainHooks = {},
): DeploymentChain {
  const pool = createDeploymentPool(deployments, options, hooks);
  return pool.chain(deployments.map((deployment) => deployment.id));
}
