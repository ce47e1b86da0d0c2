import { ClawmeshError } from '../../core/errors.ts';

/** The error an aborted signal stands for: its reason when typed, else a cancellation. */
export function reasonOf(signal: AbortSignal): ClawmeshError {
  const reason: unknown = signal.reason;
  if (reason instanceof ClawmeshError) return reason;
  return new ClawmeshError('UNAVAILABLE', 'the model call was cancelled', {
    cause: reason,
    retryable: false,
  });
}

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(reasonOf(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(reasonOf(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
