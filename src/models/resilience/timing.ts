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

/**
 * Settles with `work`, or rejects with the signal's reason as soon as it aborts, whichever comes
 * first; a provider that ignores its signal cannot hold the chain past a timeout.
 */
export function guard<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(reasonOf(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(reasonOf(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
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
