import { type CallContext, remainingMs } from '../../core/context.ts';
import { ClawmeshError } from '../../core/errors.ts';
import { streamCut, streamOf } from '../providers/stream.ts';
import type { ModelProvider, ProviderCallOptions, ProviderRequest, ProviderResponse } from '../types.ts';
import { cancel, type Expiring, schedule } from './attempt-clock.ts';
import { reasonOf } from './timing.ts';
import type { StreamProgress } from './types.ts';

/** The per-attempt limits, resolved once per chain. */
export interface AttemptLimits {
  connectTimeoutMs: number;
  firstTokenTimeoutMs: number;
  callTimeoutMs: number;
}

/** What one streamed call of the chain has delivered so far, across its attempts. */
export type Progress = StreamProgress;

/** One attempt: a provider, its request and where its deltas go. */
export interface AttemptInput {
  provider: ModelProvider;
  request: ProviderRequest;
  ctx: CallContext;
  limits: AttemptLimits;
  /** The caller's signal; its abort ends the attempt with its reason. */
  signal: AbortSignal | undefined;
  /** When present, the attempt streams and hands each text delta here. */
  onDelta: ((text: string) => void) | undefined;
  progress: Progress;
  now: () => number;
  /** Options handed to the provider on each call (the connect timeout), built once per chain. */
  providerOptions: ProviderCallOptions;
}

function callTimeout(provider: string, ms: number): ClawmeshError {
  return new ClawmeshError('UNAVAILABLE', `${provider}: no complete answer within ${ms} ms`, {
    details: { timeout: 'call' },
  });
}

function firstTokenTimeout(provider: string, ms: number): ClawmeshError {
  return new ClawmeshError('UNAVAILABLE', `${provider}: no first token within ${ms} ms`, {
    details: { timeout: 'first-token' },
  });
}

function deadlinePassed(provider: string): ClawmeshError {
  return new ClawmeshError('DEADLINE_EXCEEDED', `${provider}: no answer before the deadline`);
}

/** What every attempt of a chain shares, resolved once per chain. */
export interface AttemptPlan {
  limits: AttemptLimits;
  now: () => number;
  /** Options handed to the provider on each call (the connect timeout). */
  providerOptions: ProviderCallOptions;
}

/**
 * The settling of one attempt: the first of the provider's answer, its time on the attempt clock
 * and the caller's abort wins. A class rather than closures: one object per attempt on the hot
 * path, its own `abort` listener (`handleEvent`) and its own entry on the clock.
 */
class AttemptRace implements Expiring {
  private settled = false;
  expiresAt = 0;
  clockIndex = -1;

  constructor(
    /** The provider's own signal; absent when it gets the caller's and ends itself at its timeout. */
    private readonly controller: AbortController | undefined,
    private readonly parent: AbortSignal | undefined,
    private readonly resolve: (response: ProviderResponse) => void,
    private readonly reject: (reason: unknown) => void,
    private readonly provider: string,
    /** The call timeout the attempt's timer stands for; 0 when it is the deadline's. */
    private readonly callTimeoutMs: number,
  ) {}

  /** Marks the race settled; false when it already was. */
  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    cancel(this);
    this.parent?.removeEventListener('abort', this);
    return true;
  }

  /** Ends the attempt with a typed reason, aborting the provider's signal. */
  fail(reason: ClawmeshError): void {
    if (!this.finish()) return;
    this.controller?.abort(reason);
    this.reject(reason);
  }

  /** The attempt's time ran out: the deadline passed, or the call timeout. */
  expire(): void {
    this.fail(
      this.callTimeoutMs === 0
        ? deadlinePassed(this.provider)
        : callTimeout(this.provider, this.callTimeoutMs),
    );
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.fail(reasonOf(this.parent as AbortSignal));
  }

  answered(response: ProviderResponse): void {
    if (this.finish()) this.resolve(response);
  }

  failed(err: unknown): void {
    if (this.finish()) this.reject(err);
  }
}

/**
 * Runs one attempt under its timeouts: the whole call (capped by the deadline), the first token
 * of a stream, and the connect timeout the provider's SDK applies to the response headers. A
 * timeout aborts the provider's signal with a typed reason and settles the attempt at once, even
 * when the provider ignores its signal. With `onDelta` the attempt streams and hands each text
 * delta to it. One entry on the attempt clock and one small object on the plain path (and a
 * controller for a provider that does not end its own request): this runs on every model call.
 */
export function runAttempt(
  plan: AttemptPlan,
  provider: ModelProvider,
  request: ProviderRequest,
  ctx: CallContext,
  signal: AbortSignal | undefined,
  onDelta: ((text: string) => void) | undefined,
  progress: Progress,
): Promise<ProviderResponse> {
  const { limits } = plan;
  const left = remainingMs(ctx);
  if (left <= 0) return Promise.reject(deadlinePassed(provider.name));
  if (provider.settlesAtOnce && !onDelta) {
    // Nothing to time out or abort: the answer comes before any timer could fire.
    if (signal?.aborted) return Promise.reject(reasonOf(signal));
    try {
      return provider.complete(request, ctx, signal, plan.providerOptions);
    } catch (err) {
      return Promise.reject(err);
    }
  }
  // A provider that ends its own request at the call timeout and the deadline gets the caller's
  // signal as it is: no controller, no listener of its own on every call.
  const controller = provider.endsAtTimeout && !onDelta ? undefined : new AbortController();
  const byDeadline = left <= limits.callTimeoutMs;
  // No executor closure, timer or context holding this function's variables: the promise's
  // settle functions are taken by a shared executor, the race waits on the attempt clock, and
  // the race alone is kept by the two callbacks on the provider's promise.
  const settled = new Promise<ProviderResponse>(capture);
  const race = new AttemptRace(
    controller,
    signal,
    resolveNext as (response: ProviderResponse) => void,
    rejectNext as (reason: unknown) => void,
    provider.name,
    byDeadline ? 0 : limits.callTimeoutMs,
  );
  schedule(race, byDeadline ? left : limits.callTimeoutMs);
  let work: Promise<ProviderResponse>;
  try {
    if (signal) {
      if (signal.aborted) race.handleEvent();
      else signal.addEventListener('abort', race, { once: true });
    }
    work = onDelta
      ? streamAttempt(
          {
            provider,
            request,
            ctx,
            limits,
            signal,
            onDelta,
            progress,
            now: plan.now,
            providerOptions: plan.providerOptions,
          },
          onDelta,
          controller as AbortController, // always made for a stream
          Math.min(left, limits.firstTokenTimeoutMs),
        )
      : provider.complete(request, ctx, controller ? controller.signal : signal, plan.providerOptions);
  } catch (err) {
    // A provider that throws before returning its promise.
    work = Promise.reject(err);
  }
  settleBy(race, work);
  return settled;
}

/** The settle functions of the promise {@link capture} last ran for. */
let resolveNext: ((response: ProviderResponse) => void) | undefined;
let rejectNext: ((reason: unknown) => void) | undefined;

/** A promise executor that hands its settle functions over (it runs before `new Promise` returns). */
function capture(resolve: (response: ProviderResponse) => void, reject: (reason: unknown) => void): void {
  resolveNext = resolve;
  rejectNext = reject;
}

/** Settles the race with the provider's outcome; the callbacks keep the race alone. */
function settleBy(race: AttemptRace, work: Promise<ProviderResponse>): void {
  work.then(
    (response) => race.answered(response),
    (err: unknown) => race.failed(err),
  );
}

/**
 * Steps an async iterator, each step rejecting with the signal's reason as soon as it aborts: a
 * provider that ignores its signal still cannot hold the attempt. One listener per stream, not
 * one per step.
 */
function abortableSteps<T>(
  iterator: AsyncIterator<T>,
  signal: AbortSignal,
): () => Promise<IteratorResult<T>> {
  let rejectStep: ((reason: ClawmeshError) => void) | undefined;
  signal.addEventListener('abort', () => rejectStep?.(reasonOf(signal)), { once: true });
  return () => {
    if (signal.aborted) return Promise.reject(reasonOf(signal));
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      rejectStep = reject;
      iterator.next().then(resolve, reject);
    });
  };
}

async function streamAttempt(
  input: AttemptInput,
  onDelta: (text: string) => void,
  controller: AbortController,
  firstTokenMs: number,
): Promise<ProviderResponse> {
  const { provider, progress } = input;
  const signal = controller.signal;
  const iterator = streamOf(provider, input.request, input.ctx, signal, input.providerOptions)[
    Symbol.asyncIterator
  ]();
  const next = abortableSteps(iterator, signal);
  let firstTimer: NodeJS.Timeout | undefined =
    firstTokenMs < input.limits.callTimeoutMs
      ? setTimeout(() => controller.abort(firstTokenTimeout(provider.name, firstTokenMs)), firstTokenMs)
      : undefined;
  let finished = false;
  try {
    for (;;) {
      const step = await next();
      if (firstTimer) {
        clearTimeout(firstTimer);
        firstTimer = undefined;
      }
      if (step.done) {
        finished = true;
        throw streamCut(provider.name, 'the stream ended without its final event');
      }
      const event = step.value;
      if (event.type === 'done') return event.response;
      if (!event.text) continue;
      if (progress.delivered === 0) progress.firstDeltaAt = input.now();
      progress.delivered++;
      progress.chars += event.text.length;
      try {
        onDelta(event.text);
      } catch {
        // A sink that throws must not be taken for a failing provider.
      }
    }
  } finally {
    if (firstTimer) clearTimeout(firstTimer);
    // Stop the provider's stream (it may be mid-answer or waiting); never wait for it.
    if (!finished) iterator.return?.()?.catch(() => undefined);
  }
}
