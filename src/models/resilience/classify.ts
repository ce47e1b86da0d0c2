import type { ClawmeshError } from '../../core/errors.ts';

/** What a failed attempt means for the chain. */
export type FailureKind =
  /** A transient failure of this deployment: try it again after a backoff. */
  | 'retry'
  /** The deployment said 429: skip it until its Retry-After, move on at once. */
  | 'rate-limited'
  /** This deployment can't answer this (a refused key, a 4xx): move on, no retry. */
  | 'next'
  /** Nobody can answer in time: stop the whole chain. */
  | 'stop';

/** Classifies a provider failure. */
export function classify(error: ClawmeshError): FailureKind {
  switch (error.code) {
    case 'RATE_LIMITED':
      return 'rate-limited';
    case 'DEADLINE_EXCEEDED':
      return 'stop';
    case 'UNAVAILABLE':
      return error.retryable ? 'retry' : 'next';
    default:
      return 'next';
  }
}

/**
 * Whether a failure counts against the deployment's circuit: transient failures and refused
 * credentials do; a request the upstream found invalid, a 429 or a deadline do not.
 */
export function countsAgainstDeployment(error: ClawmeshError): boolean {
  switch (error.code) {
    case 'UNAVAILABLE':
    case 'UNAUTHENTICATED':
    case 'PERMISSION_DENIED':
    case 'INTERNAL':
      return true;
    default:
      return false;
  }
}

/** Upstream statuses that say the request itself is wrong, whoever sends it. */
const CALLERS_STATUSES = new Set([400, 413, 422]);

/**
 * Whether a provider refused the request as invalid for what it asks (a parameter the model does
 * not take, a context too long, a format the provider cannot honour): the caller's fault, which
 * no other deployment of the same request would fix by the gateway's doing. An upstream 404
 * (the deployment's model is unknown there) or 401/403 (the gateway's key) is the operator's.
 */
export function isCallersFault(error: ClawmeshError): boolean {
  if (error.code !== 'INVALID_ARGUMENT') return false;
  const status = error.details?.status;
  return typeof status !== 'number' || CALLERS_STATUSES.has(status);
}

const DEFAULT_RETRY_AFTER_MS = 1000;

/** How long a rate-limited deployment is left alone: its Retry-After, or one second. */
export function retryAfterOf(error: ClawmeshError): number {
  const ms = error.details?.retryAfterMs;
  if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) return ms;
  const seconds = error.details?.retryAfterSeconds;
  if (typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  return DEFAULT_RETRY_AFTER_MS;
}
