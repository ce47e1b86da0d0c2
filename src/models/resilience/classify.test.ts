import { describe, expect, it } from 'vitest';
import { ClawmeshError } from '../../core/errors.ts';
import { classify, countsAgainstDeployment, retryAfterOf } from './classify.ts';

describe('failure classification', () => {
  it('retries transient failures only', () => {
    expect(classify(new ClawmeshError('UNAVAILABLE', '503'))).toBe('retry');
    expect(classify(new ClawmeshError('UNAVAILABLE', 'key refused', { retryable: false }))).toBe('next');
    expect(classify(new ClawmeshError('INVALID_ARGUMENT', '400'))).toBe('next');
    expect(classify(new ClawmeshError('UNAUTHENTICATED', '401'))).toBe('next');
    expect(classify(new ClawmeshError('RATE_LIMITED', '429'))).toBe('rate-limited');
    expect(classify(new ClawmeshError('DEADLINE_EXCEEDED', 'late'))).toBe('stop');
  });

  it('counts transient and credential failures against the circuit, not the request or a 429', () => {
    expect(countsAgainstDeployment(new ClawmeshError('UNAVAILABLE', '503'))).toBe(true);
    expect(countsAgainstDeployment(new ClawmeshError('UNAVAILABLE', 'key', { retryable: false }))).toBe(true);
    expect(countsAgainstDeployment(new ClawmeshError('PERMISSION_DENIED', '403'))).toBe(true);
    expect(countsAgainstDeployment(new ClawmeshError('INVALID_ARGUMENT', '400'))).toBe(false);
    expect(countsAgainstDeployment(new ClawmeshError('RATE_LIMITED', '429'))).toBe(false);
    expect(countsAgainstDeployment(new ClawmeshError('DEADLINE_EXCEEDED', 'late'))).toBe(false);
  });

  it('reads the Retry-After in ms or seconds, one second when absent', () => {
    expect(retryAfterOf(new ClawmeshError('RATE_LIMITED', '', { details: { retryAfterMs: 2500 } }))).toBe(
      2500,
    );
    expect(retryAfterOf(new ClawmeshError('RATE_LIMITED', '', { details: { retryAfterSeconds: 3 } }))).toBe(
      3000,
    );
    expect(retryAfterOf(new ClawmeshError('RATE_LIMITED', ''))).toBe(1000);
  });
});
