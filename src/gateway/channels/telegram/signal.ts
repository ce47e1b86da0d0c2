import type { Api } from 'grammy';

/** grammY's Node build types signals with the abort-controller polyfill; it accepts native ones at run time. */
export function grammySignal(signal: AbortSignal | undefined): Parameters<Api['getMe']>[0] {
  return signal as Parameters<Api['getMe']>[0];
}
