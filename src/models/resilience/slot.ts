import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  IsolatedCircuitError,
} from 'cockatiel';
import { ClawmeshError } from '../../core/errors.ts';
import type { Deployment } from '../types.ts';
import { countsAgainstDeployment } from './classify.ts';
import type { BreakerOptions, ChainHooks, CircuitStateName, DeploymentState } from './types.ts';

/** One deployment with its resilience state, shared by every chain that lists it. */
export interface DeploymentSlot {
  readonly deployment: Deployment;
  /** The deployment's circuit breaker (cockatiel), created once. */
  readonly breaker: CircuitBreakerPolicy;
  /** The breaker's consecutive-failure count (cockatiel's `ConsecutiveBreaker`, read by {@link recordOutcome}). */
  readonly failures: ConsecutiveBreaker;
  /** Epoch ms (chain clock) before which the deployment is not tried; 0 when not limited. */
  limitedUntil: number;
}

const STATE_NAMES: Record<CircuitState, CircuitStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'open',
};

/** The breaker's state as metrics name it. */
export function circuitName(state: CircuitState): CircuitStateName {
  return STATE_NAMES[state];
}

/** Whether an error is the breaker refusing a call (open, or held open). */
export function isCircuitRefusal(err: unknown): boolean {
  return err instanceof BrokenCircuitError || err instanceof IsolatedCircuitError;
}

const countsAgainst = handleWhen((err) =>
  err instanceof ClawmeshError ? countsAgainstDeployment(err) : true,
);

/** A slot for one deployment: a consecutive-failure breaker with a cooldown and a half-open probe. */
export function createSlot(
  deployment: Deployment,
  options: BreakerOptions,
  hooks: ChainHooks,
): DeploymentSlot {
  const failures = new ConsecutiveBreaker(options.failureThreshold);
  const breaker = circuitBreaker(countsAgainst, { halfOpenAfter: options.cooldownMs, breaker: failures });
  const onChange = hooks.onCircuitChange;
  if (onChange) {
    breaker.onStateChange((state) => {
      try {
        onChange(deployment.id, circuitName(state));
      } catch {
        // An observer must never break the breaker.
      }
    });
  }
  return { deployment, breaker, failures, limitedUntil: 0 };
}

const rethrow = (error: unknown) => () => Promise.reject(error);

/**
 * On the hot path the chain calls the provider directly while a deployment's circuit is closed
 * (cockatiel's `execute` would add two async frames and several objects to every call) and
 * reports the outcome here. A success resets the consecutive-failure count, as cockatiel does
 * for a call that succeeds on a closed circuit. See {@link recordFailure}.
 */
export function recordSuccess(slot: DeploymentSlot): void {
  if (slot.failures.state > 0 && slot.breaker.state === CircuitState.Closed) slot.failures.success();
}

/**
 * A failure of a call made on a closed circuit without cockatiel's `execute`: replayed through
 * the breaker's own `execute`, so cockatiel applies its filter, counts it and opens the circuit
 * at the threshold. A failure that lands once the circuit is no longer closed is dropped: the
 * open circuit and its half-open probe decide from then on.
 */
export async function recordFailure(slot: DeploymentSlot, error: unknown): Promise<void> {
  if (slot.breaker.state !== CircuitState.Closed) return;
  await slot.breaker.execute(rethrow(error)).catch(() => undefined);
}
/** A slot's state for metrics. */
export function slotState(slot: DeploymentSlot, now: number): DeploymentState {
  const { deployment } = slot;
  const state: DeploymentState = {
    deployment: deployment.id,
    provider: deployment.provider.name,
    model: deployment.model,
    circuit: circuitName(slot.breaker.state),
  };
  if (slot.limitedUntil > now) state.rateLimitedUntil = slot.limitedUntil;
  return state;
}
