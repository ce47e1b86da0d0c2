import type { Api } from 'grammy';

/** grammY's Node build types signals with the abort-controller polyfill; it accepts native ones at run time. */
export function grammySignal(signal: AbortSignal | undefined): Parameters<Api['getMe']>[0] {
  return signal as Parameters<Api['getMe']>[0];
}

/**
 * Runs `call` with a signal that aborts after `ms`, or earlier when `signal` aborts. grammY's own
 * timeout is 500 s, so a Bot API that takes requests and never answers would otherwise hold a call
 * that long. The listener on `signal` is removed afterwards (the polling loop calls this for every
 * getUpdates on one long-lived signal).
 */
export async function withTimeout<T>(
  signal: AbortSignal | undefined,
  ms: number,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => controller.abort(new Error(`no answer within ${ms} ms`)), ms);
  try {
    return await call(controller.signal);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}
