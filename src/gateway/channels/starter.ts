import { ClawmeshError } from '../../core/errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { ChannelAdapter, ChannelStartContext } from './types.ts';

/** Options of {@link startInBackground}. */
export interface BackgroundStartOptions {
  /** The first wait after a failed start, in milliseconds (1000); it doubles after each failure. */
  initialDelayMs?: number;
  /** The longest wait between two attempts, in milliseconds (60 000). */
  maxDelayMs?: number;
}

/** A channel starting, or started, in the background. */
export interface BackgroundStart {
  /** `starting` until `start` succeeds (`started`) or fails with an error a retry cannot fix (`failed`). */
  readonly state: 'starting' | 'started' | 'failed';
  /** Resolves once the channel has started; rejects with why it has not yet (or never will). */
  check(): Promise<void>;
  /** Settles when the attempts are over: started, failed for good, or given up as `signal` aborted. */
  readonly done: Promise<void>;
}

/**
 * Runs `adapter.start` without holding the caller: a platform that cannot be reached (a `getMe`
 * refused, a Bot API that never answers) must not keep the gateway from serving HTTP. A start
 * that fails is tried again with backoff (1 s doubling to 60 s) until it succeeds or
 * `context.signal` aborts; the first failure is logged as a warning naming the channel, the
 * later ones at debug, and a start that succeeds after failures at info. An error that says a
 * retry cannot help (`retryable: false`, such as a token the platform refuses) is logged as an
 * error and ends the attempts.
 *
 * @example
 * const starting = startInBackground(adapter, { sink, logger, signal }, logger);
 * checks.push({ name: `channel:${adapter.name}`, check: starting.check });
 */
export function startInBackground(
  adapter: ChannelAdapter,
  context: ChannelStartContext,
  logger: Logger,
  options: BackgroundStartOptions = {},
): BackgroundStart {
  const initialDelayMs = options.initialDelayMs ?? 1000;
  const maxDelayMs = options.maxDelayMs ?? 60_000;
  const channel = adapter.name;
  let state: BackgroundStart['state'] = adapter.start ? 'starting' : 'started';
  let lastError: string | undefined;

  const run = async () => {
    if (!adapter.start) return;
    const { signal } = context;
    for (let failures = 0; !signal.aborted; failures += 1) {
      try {
        await adapter.start(context);
        if (signal.aborted) return;
        state = 'started';
        if (failures > 0) logger.info({ channel, attempts: failures + 1 }, `channel ${channel} started`);
        return;
      } catch (err) {
        if (signal.aborted) return;
        const error = ClawmeshError.from(err, 'UNAVAILABLE');
        lastError = error.message;
        if (!error.retryable) {
          state = 'failed';
          logger.error(
            { channel, err: error.message },
            `channel ${channel} could not start and will not retry: ${error.message}`,
          );
          return;
        }
        const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** failures);
        if (failures === 0) {
          logger.warn(
            { channel, err: error.message, retryInMs: delay },
            `channel ${channel} could not reach its platform; it keeps trying in the background: ${error.message}`,
          );
        } else {
          logger.debug(
            { channel, err: error.message, retryInMs: delay },
            `channel ${channel} start failed again`,
          );
        }
        await pause(delay, signal);
      }
    }
  };

  const done = run().catch((err: unknown) => {
    // run() catches what start throws; this is a bug's last resort, never an unhandled rejection.
    state = 'failed';
    lastError = err instanceof Error ? err.message : String(err);
    logger.error({ channel, err: lastError }, `channel ${channel} start failed`);
  });
  return {
    get state() {
      return state;
    },
    done,
    async check() {
      if (state === 'started') return;
      const why = lastError ?? 'its first attempt is still running';
      throw new Error(state === 'failed' ? `not started: ${why}` : `starting: ${why}`);
    },
  };
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
