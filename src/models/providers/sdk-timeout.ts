import { type CallContext, remainingMs } from '../../core/context.ts';
import { ClawmeshError } from '../../core/errors.ts';
import { redactUrlsIn } from '../../core/redact-url.ts';
import type { ProviderCallOptions } from '../types.ts';

/**
 * The timeout an SDK provider hands to one request, and what its expiry means. The SDKs apply
 * their `timeout` to the response headers. A plain call's headers come with the whole answer, so
 * its timeout is the provider's own limit for an answer; a stream's headers come before the first
 * token, so the chain's connect timeout also caps it. The call context's deadline caps both.
 */
export interface SdkTimeout {
  /** Milliseconds handed to the SDK as the request's `timeout`. */
  readonly ms: number;
  /** Whether the call context's deadline set it (its expiry is then `DEADLINE_EXCEEDED`). */
  readonly deadlineBound: boolean;
  /** What the SDK waits for under it: a plain call's whole answer, or a stream's response headers. */
  readonly waitsFor: 'answer' | 'headers';
}

/**
 * The SDK timeout of one request: the provider's `timeoutMs`, at most the chain's limit for what
 * the request waits for (`callTimeoutMs` for a plain call's answer, `connectTimeoutMs` for a
 * stream's headers), and never past the deadline. A deadline already passed is
 * `DEADLINE_EXCEEDED` before any request.
 */
export function sdkTimeout(
  provider: string,
  ctx: CallContext,
  timeoutMs: number,
  waitsFor: SdkTimeout['waitsFor'],
  options: ProviderCallOptions | undefined,
): SdkTimeout {
  const left = remainingMs(ctx);
  if (left <= 0)
    throw new ClawmeshError('DEADLINE_EXCEEDED', `${provider}: the deadline passed before the call`);
  const limit = waitsFor === 'answer' ? options?.callTimeoutMs : options?.connectTimeoutMs;
  const own = limit === undefined ? timeoutMs : Math.min(timeoutMs, limit);
  return { ms: Math.min(left, own), deadlineBound: left < own, waitsFor };
}

/**
 * What the SDK's timeout error means for the caller: the deadline passed (`DEADLINE_EXCEEDED`),
 * no answer in the provider's time, or no stream headers within the connect timeout (both
 * `UNAVAILABLE`, retried and then failed over). Without the request's timeout (an error after the
 * headers), the connect timeout.
 */
export function sdkTimeoutError(
  provider: string,
  cause: unknown,
  timeout: SdkTimeout | undefined,
): ClawmeshError {
  if (timeout?.deadlineBound)
    return new ClawmeshError('DEADLINE_EXCEEDED', `${provider}: no answer before the deadline`, { cause });
  if (timeout?.waitsFor === 'answer') {
    return new ClawmeshError('UNAVAILABLE', `${provider}: no complete answer within ${timeout.ms} ms`, {
      cause,
      details: { timeout: 'call' },
    });
  }
  return new ClawmeshError('UNAVAILABLE', `${provider}: no response within the connect timeout`, {
    cause,
    details: { timeout: 'connect' },
  });
}

/**
 * The message of an SDK connection error with what caused it: the SDKs say only "Connection
 * error." and keep the reason (refused, reset, the outbound client's connect limit) in `cause`.
 */
export function connectionErrorMessage(provider: string, err: Error): string {
  const cause = (err as Error & { cause?: unknown }).cause;
  const reason = cause instanceof Error ? cause.message : undefined;
  const message = reason ? `${provider}: ${err.message} ${reason}` : `${provider}: ${err.message}`;
  // The reason names the URL it requested: credentials in a base URL must not reach the caller.
  return redactUrlsIn(message);
}
