import { ClawmeshError } from '../core/errors.ts';
import type { Attempt } from './resilience/chain.ts';
import { isCallersFault } from './resilience/classify.ts';

/** Upstream codes that say the gateway's own request or credentials were refused. */
const REFUSALS = new Set(['UNAUTHENTICATED', 'PERMISSION_DENIED', 'INVALID_ARGUMENT', 'NOT_FOUND']);

/** Whole seconds to wait before trying again (at least 1), from a failure's details. */
const retryAfterSecondsOf = (details: Record<string, unknown> | undefined): number => {
  const seconds = details?.retryAfterSeconds;
  if (typeof seconds === 'number') return Math.max(1, Math.ceil(seconds));
  const ms = details?.retryAfterMs;
  return typeof ms === 'number' ? Math.max(1, Math.ceil(ms / 1000)) : 1;
};

const rateLimited = (error: ClawmeshError, target: string): ClawmeshError =>
  new ClawmeshError('RATE_LIMITED', `model ${target} is rate limited: ${error.message}`, {
    cause: error,
    details: { ...error.details, retryAfterSeconds: retryAfterSecondsOf(error.details) },
  });

const refused = (error: ClawmeshError, target: string, upstreamCode: string): ClawmeshError =>
  new ClawmeshError('UNAVAILABLE', `model ${target} refused the request: ${error.message}`, {
    cause: error,
    retryable: false,
    details: { ...error.details, upstreamCode },
  });

/** The upstream's refusal of the request itself, as the caller's `INVALID_ARGUMENT` (a 400). */
const invalid = (error: ClawmeshError, target: string): ClawmeshError =>
  new ClawmeshError('INVALID_ARGUMENT', `model ${target} rejected the request: ${error.message}`, {
    cause: error,
    retryable: false,
    details: { ...error.details, upstreamCode: error.code },
  });

/**
 * A provider's failure as the caller should see it. A request every deployment refused as
 * invalid (an upstream 400, 413 or 422: a parameter the model does not take, a context too long)
 * is the caller's `INVALID_ARGUMENT`, with the upstream's message. The gateway's own credentials
 * or configuration refused (an upstream 401, 403, 404) is `UNAVAILABLE` here, never the caller's
 * `UNAUTHENTICATED`. When every deployment was rate limited the caller gets `RATE_LIMITED` with
 * the soonest `retryAfterSeconds`; any other mix of failures stays `UNAVAILABLE` with the
 * attempts listed.
 */
export function asGatewayError(error: ClawmeshError, target: string): ClawmeshError {
  const attempts = Array.isArray(error.details?.attempts) ? (error.details.attempts as Attempt[]) : undefined;
  if (isCallersFault(error)) return invalid(error, target);
  if (REFUSALS.has(error.code)) return refused(error, target, error.code);
  if (error.code === 'RATE_LIMITED') return rateLimited(error, target);
  if (error.code !== 'UNAVAILABLE' || !attempts || attempts.length === 0 || error.details?.partial)
    return error;
  if (attempts.every((a) => a.code === 'RATE_LIMITED' || a.skipped === 'rate-limited'))
    return rateLimited(error, target);
  const called = attempts.filter((a) => !a.skipped);
  if (called.length > 0 && called.every((a) => a.code !== undefined && REFUSALS.has(a.code)))
    return refused(error, target, called[0]!.code as string);
  return error;
}
