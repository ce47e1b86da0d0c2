import type { CallContext } from '../../core/context.ts';
import type { ErrorCode } from '../../core/errors.ts';
import type { Deployment, ProviderRequest, ProviderResponse } from '../types.ts';

/** A request to a chain: a provider request without the model, which each deployment supplies. */
export type ChainRequest = Omit<ProviderRequest, 'model'>;

/** Retry policy of one deployment. */
export interface RetryOptions {
  /** Tries per deployment, the first included (1 = no retry). Default 2. */
  maxAttempts: number;
  /** The first backoff delay before jitter, in milliseconds. Default 100. */
  baseDelayMs: number;
  /** The longest backoff delay, in milliseconds. Default 2,000. */
  maxDelayMs: number;
}

/** Circuit breaker policy of each deployment. */
export interface BreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  failureThreshold: number;
  /** How long an open circuit refuses calls before one half-open probe, in milliseconds. Default 30,000. */
  cooldownMs: number;
}

/** Options of a deployment chain or pool. Every timeout is also capped by the call's deadline. */
export interface ChainOptions {
  /** Longest wait for the upstream's response headers, in milliseconds (default 10,000). */
  connectTimeoutMs?: number;
  /** Streams only: longest wait from the start of an attempt to its first event (default 30,000). */
  firstTokenTimeoutMs?: number;
  /** Longest one attempt may take, whole (default 120,000). */
  callTimeoutMs?: number;
  retry?: RetryOptions;
  breaker?: BreakerOptions;
  /** The clock of rate-limit windows and attempt durations (default `Date.now`), for tests. */
  now?: () => number;
}

/** Why a deployment was passed over without a call. */
export type SkipReason = 'rate-limited' | 'circuit-open';

/** One try of one deployment, as listed in results, errors and hooks. */
export interface Attempt {
  /** The deployment's id. */
  deployment: string;
  ok: boolean;
  /** On failure: the error's code. */
  code?: ErrorCode;
  /** On failure: the error's message. */
  message?: string;
  durationMs: number;
  /** Set when the deployment was not called at all (then `durationMs` is 0). */
  skipped?: SkipReason;
}

/** A successful chain call. */
export interface ChainResult {
  response: ProviderResponse;
  /** The deployment that answered. */
  deployment: Deployment;
  /** Every attempt, skips included, the successful one last. */
  attempts: Attempt[];
  /** Whether a deployment other than the chain's first answered. */
  fallbackUsed: boolean;
  /** Streamed calls: milliseconds from the start of the call to the first text delta. */
  firstTokenMs?: number;
}

/**
 * What a streamed chain call has handed over so far, filled in by the chain as it goes: a caller
 * that passes one can tell, after a stream ended without its answer (the caller left, the
 * deadline passed, the upstream broke off), how much text the upstream sent and which deployment
 * sent it.
 */
export interface StreamProgress {
  /** Text deltas handed over. */
  delivered: number;
  /** Characters of text handed over. */
  chars: number;
  /** When the first delta was handed over (chain clock). */
  firstDeltaAt?: number;
  /** The deployment of the attempt in progress; once text was handed over, the one that sent it. */
  deployment?: Deployment;
}

/** One event of {@link DeploymentChain.stream}: text deltas, then one `done`, last. */
export type ChainStreamEvent = { type: 'text'; text: string } | { type: 'done'; result: ChainResult };

/** A circuit's state, as metrics report it. */
export type CircuitStateName = 'closed' | 'open' | 'half-open';

/** A deployment's resilience state, for metrics and the dashboard. */
export interface DeploymentState {
  deployment: string;
  provider: string;
  model: string;
  circuit: CircuitStateName;
  /** Epoch milliseconds (of the chain's clock) before which it is not tried; only while limited. */
  rateLimitedUntil?: number;
}

/** An ordered fallback chain of deployments with retries, breakers, rate-limit windows and timeouts. */
export interface DeploymentChain {
  /** The deployments, in the order they are tried. */
  readonly deployments: readonly Deployment[];
  /**
   * One completion. With `onDelta`, streams from the provider and hands each text delta over as it
   * arrives; a stream that fails after a delta was handed over is not retried (no duplicate text).
   * `progress`, with `onDelta`, is kept up to date with what was handed over.
   */
  complete(
    request: ChainRequest,
    ctx: CallContext,
    onDelta?: (text: string) => void,
    signal?: AbortSignal,
    progress?: StreamProgress,
  ): Promise<ChainResult>;
  /**
   * The completion as text events and a final `done`; leaving the loop early aborts the upstream.
   * `progress` is kept up to date with the text the upstream sent (queued or taken).
   */
  stream(
    request: ChainRequest,
    ctx: CallContext,
    signal?: AbortSignal,
    progress?: StreamProgress,
  ): AsyncIterable<ChainStreamEvent>;
  /** The state of this chain's deployments. */
  state(): DeploymentState[];
}

/** Observers of a chain; their errors are swallowed. */
export interface ChainHooks {
  /** Every attempt, skips included, as it ends. */
  onAttempt?(attempt: Attempt): void;
  /** A deployment's circuit changed state. */
  onCircuitChange?(deployment: string, state: CircuitStateName): void;
}

/**
 * Deployments with their shared resilience state (breaker, rate-limit window), from which chains
 * are built: one deployment in several chains (tiers, fallbacks) keeps one state.
 */
export interface DeploymentPool {
  /** A chain over these deployment ids, in order. Build chains once, not per call. */
  chain(ids: readonly string[]): DeploymentChain;
  /** Every deployment's state. */
  state(): DeploymentState[];
  /** A deployment by id. */
  get(id: string): Deployment | undefined;
}
