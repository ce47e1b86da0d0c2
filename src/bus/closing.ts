import { settlesWithin } from '../core/wait.ts';
import type { Logger } from '../observability/logger.ts';

/**
 * Closing a broker subscription: waits up to `timeoutMs` for the handlers still running on
 * `held` to finish; past that, logs and `release`s each one unacknowledged, so the broker gives
 * its event to another member of the group.
 */
export async function awaitHeldHandlers<T>(
  held: Set<T>,
  timeoutMs: number,
  release: (item: T) => void,
  logger: Logger | undefined,
  where: Record<string, unknown>,
): Promise<void> {
  if (held.size === 0) return;
  const done = new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (held.size === 0) {
        clearInterval(check);
        resolve();
      }
    }, 5);
  });
  if (await settlesWithin(done, timeoutMs)) return;
  logger?.warn(
    { ...where, abandoned: held.size },
    'closing with handlers still running: their events go to another member',
  );
  for (const item of [...held]) release(item);
}

/**
 * Closing a broker bus: drains first (a failure to drain is logged, not thrown, since closing
 * must go on), then runs `shut`.
 */
export async function closeAfterDrain(
  name: string,
  drain: () => Promise<void>,
  logger: Logger | undefined,
  shut: () => Promise<void>,
): Promise<void> {
  try {
    await drain();
  } catch (err) {
    logger?.warn({ err: (err as Error).message }, `closing the ${name} bus before it drained`);
  }
  await shut();
}
