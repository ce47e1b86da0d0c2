import { ClawmeshError } from '../core/errors.ts';
import type { AcquireOptions, LeaseDefaults, LeaseHandle } from './lease-types.ts';

/*
 * What every lease adapter shares: argument checks, the errors of a wait that ends without the
 * lease, and the handle of a held lease (renewal every TTL / 3, lost-lease detection).
 */

/** How a handle talks to its adapter. */
export interface HandleSpec {
  conversationId: string;
  token: number;
  ttlMs: number;
  /** Renew every `ttlMs / 3` while held. */
  autoRenew: boolean;
  /** Epoch ms when the grant was asked for: the lease is surely held until this plus `ttlMs`. */
  askedAt: number;
  /**
   * Mark the lease lost when no renewal has confirmed it by the time it would expire (for a
   * remote lease, whose expiry the adapter cannot watch). Otherwise the adapter calls `markLost`.
   */
  watchdog: boolean;
  /** Extends the lease by `ttlMs` if this handle still holds it. */
  renewOnce(): Promise<boolean>;
  /** Gives the lease up if this handle still holds it. */
  releaseOnce(): Promise<void>;
  /** Called once when the lease is lost. */
  onLost?(): void;
  /** See {@link LeaseHandle.grantedAtOnce}. */
  grantedAtOnce?: boolean;
}

/** A handle with the adapter's side of it. */
export interface InternalHandle extends LeaseHandle {
  /** Marks the lease lost (it expired or changed owner). */
  markLost(): void;
  /** Stops the timers without releasing (the lease is closing). */
  dispose(): void;
}

/** Resolved options of one acquire. */
export interface AcquireSpec {
  ttlMs: number;
  waitMs: number;
  renew: boolean;
  signal: AbortSignal | undefined;
}

/** The longest delay `setTimeout` holds (about 24.8 days); a longer one would fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** Checks an acquire's arguments against the lease's defaults. */
export function acquireSpec(
  conversationId: string,
  options: AcquireOptions,
  defaults: LeaseDefaults,
): AcquireSpec {
  if (typeof conversationId !== 'string' || conversationId.length === 0) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'a turn lease needs a non-empty conversation id');
  }
  const ttlMs = options.ttlMs ?? defaults.ttlMs ?? 10_000;
  const waitMs = options.waitMs ?? defaults.waitMs ?? 30_000;
  if (!(Number.isFinite(ttlMs) && ttlMs >= 3 && ttlMs <= MAX_TIMER_MS)) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `lease ttlMs must be a number from 3 to ${MAX_TIMER_MS}, got ${ttlMs}`,
    );
  }
  if (!(waitMs >= 0)) {
    throw new ClawmeshError('INVALID_ARGUMENT', `lease waitMs must be a non-negative number, got ${waitMs}`);
  }
  return { ttlMs: Math.ceil(ttlMs), waitMs, renew: options.renew ?? true, signal: options.signal };
}

/** The error of an acquire that waited `waitMs` in vain. */
export function busyError(conversationId: string, waitMs: number): ClawmeshError {
  return new ClawmeshError(
    'UNAVAILABLE',
    `the turn lease of conversation "${conversationId}" stayed busy for ${waitMs} ms`,
    { details: { conversationId, waitMs } },
  );
}

/** The error of an acquire whose signal aborted. */
export function abortError(signal: AbortSignal): ClawmeshError {
  const reason: unknown = signal.reason;
  if (reason instanceof ClawmeshError) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new ClawmeshError('DEADLINE_EXCEEDED', 'the wait for a turn lease timed out', { cause: reason });
  }
  // About this replica (stopping), not the message: another replica can run the turn.
  return new ClawmeshError('UNAVAILABLE', 'the wait for a turn lease was aborted', { cause: reason });
}

/** The error of a closed lease. */
export function closedError(): ClawmeshError {
  return new ClawmeshError('UNAVAILABLE', 'the turn lease is closed');
}

/** Creates the handle of a granted lease and starts its renewals. */
export function createLeaseHandle(spec: HandleSpec): InternalHandle {
  const { conversationId, token, ttlMs } = spec;
  // Made when `signal` is first read: a turn rarely reads it, and an AbortController with its
  // signal costs about 5 µs a turn, 8 with a listener.
  let controller: AbortController | undefined;
  let lostError: ClawmeshError | undefined;
  let lost = false;
  let released = false;
  const held = () => !lost && !released;
  let renewTimer: NodeJS.Timeout | undefined;
  let watchdogTimer: NodeJS.Timeout | undefined;

  const stop = () => {
    clearTimeout(renewTimer);
    clearTimeout(watchdogTimer);
  };
  const markLost = () => {
    if (!held()) return;
    lost = true;
    stop();
    lostError = new ClawmeshError('CONFLICT', `the turn lease of conversation "${conversationId}" was lost`, {
      details: { conversationId, token },
    });
    controller?.abort(lostError);
    spec.onLost?.();
  };
  const watchUntil = (validUntil: number) => {
    if (!spec.watchdog) return;
    clearTimeout(watchdogTimer);
    watchdogTimer = setTimeout(markLost, Math.max(0, validUntil - Date.now()));
    watchdogTimer.unref();
  };
  const renewNow = async (): Promise<boolean> => {
    if (!held()) return false;
    const askedAt = Date.now();
    const stillOurs = await spec.renewOnce();
    if (!held()) return false;
    if (!stillOurs) {
      markLost();
      return false;
    }
    watchUntil(askedAt + ttlMs);
    return true;
  };
  const scheduleRenewal = (delayMs: number) => {
    renewTimer = setTimeout(() => {
      renewNow().then(
        (renewed) => {
          if (renewed) scheduleRenewal(ttlMs / 3);
        },
        // Unreachable for now: try again soon; the watchdog marks the lease lost at its expiry.
        () => {
          if (held()) scheduleRenewal(Math.max(5, ttlMs / 10));
        },
      );
    }, delayMs);
    renewTimer.unref();
  };

  if (spec.autoRenew) scheduleRenewal(ttlMs / 3);
  watchUntil(spec.askedAt + ttlMs);

  return {
    conversationId,
    token,
    ...(spec.grantedAtOnce === undefined ? {} : { grantedAtOnce: spec.grantedAtOnce }),
    get lost() {
      return lost;
    },
    get signal() {
      if (!controller) {
        controller = new AbortController();
        if (lostError) controller.abort(lostError);
      }
      return controller.signal;
    },
    assertHeld() {
      if (lostError) throw lostError;
    },
    renew: renewNow,
    async release() {
      if (released) return;
      released = true;
      stop();
      // Safe when lost too: the adapter gives the lease up only if this handle still holds it.
      await spec.releaseOnce();
    },
    markLost,
    dispose: stop,
  };
}
