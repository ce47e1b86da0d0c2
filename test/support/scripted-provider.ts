import { expect } from 'vitest';
import { type CallContext, createCallContext } from '../../src/core/context.ts';
import { ClawmeshError } from '../../src/core/errors.ts';
import {
  type ChainOptions,
  createDeploymentChain,
  type DeploymentChain,
} from '../../src/models/resilience/chain.ts';
import type { Attempt } from '../../src/models/resilience/types.ts';
import type { ModelProvider, ProviderResponse, ProviderStreamEvent } from '../../src/models/types.ts';

/*
 * Scripted providers for the deployment chain's tests: each call follows the next step of a
 * script (answer, fail, hang, ignore the signal, stream then end), and every call is recorded.
 */

/** What a scripted provider does on one call. */
export type Step =
  | { ok: string }
  | { fail: ClawmeshError }
  /** Waits until the signal aborts, then rejects with its reason (as the SDKs do). */
  | { hang: true }
  /** Never settles and ignores its signal. */
  | { deaf: true }
  | { delayMs: number; next: Step }
  /** Streams `texts`, then ends: `done`, a clean end without done (`cut`) or an error. */
  | { stream: string[]; end: 'done' | 'cut' | ClawmeshError };

export interface Call {
  signal: AbortSignal | undefined;
  streamed: boolean;
  model: string;
}

export interface Scripted extends ModelProvider {
  calls: Call[];
  script(...steps: Step[]): void;
}

export const response = (content: string): ProviderResponse => ({
  content,
  toolCalls: [],
  finishReason: 'stop',
  usage: { inputTokens: 1, outputTokens: 1 },
});

export function untilAborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

export async function settle(step: Step, signal: AbortSignal | undefined): Promise<ProviderResponse> {
  if ('ok' in step) return response(step.ok);
  if ('fail' in step) throw step.fail;
  if ('hang' in step) return untilAborted(signal);
  if ('deaf' in step) return new Promise<never>(() => undefined);
  if ('delayMs' in step) {
    await new Promise((resolve) => setTimeout(resolve, step.delayMs));
    return settle(step.next, signal);
  }
  if (step.end === 'done') return response(step.stream.join(''));
  if (step.end === 'cut') throw new ClawmeshError('UNAVAILABLE', 'cut');
  throw step.end;
}

export function scripted(name: string): Scripted {
  const steps: Step[] = [];
  const calls: Call[] = [];
  const next = (): Step => steps.shift() ?? { ok: `answer from ${name}` };
  return {
    name,
    defaultModel: 'model',
    calls,
    script: (...more) => {
      steps.push(...more);
    },
    complete(request, _ctx, signal) {
      calls.push({ signal, streamed: false, model: request.model });
      return settle(next(), signal);
    },
    async *stream(request, _ctx, signal): AsyncGenerator<ProviderStreamEvent> {
      calls.push({ signal, streamed: true, model: request.model });
      const step = next();
      if (!('stream' in step)) {
        const answer = await settle(step, signal);
        if (answer.content) yield { type: 'text', text: answer.content };
        yield { type: 'done', response: answer };
        return;
      }
      for (const text of step.stream) {
        await new Promise((resolve) => setImmediate(resolve));
        yield { type: 'text', text };
      }
      if (step.end === 'done') yield { type: 'done', response: response(step.stream.join('')) };
      else if (step.end !== 'cut') throw step.end;
    },
  };
}

export const unavailable = (message = 'upstream 503') =>
  new ClawmeshError('UNAVAILABLE', message, { details: { status: 503 } });
export const rateLimited = (retryAfterMs: number) =>
  new ClawmeshError('RATE_LIMITED', 'slow down', { details: { status: 429, retryAfterMs } });
export const badRequest = () =>
  new ClawmeshError('INVALID_ARGUMENT', 'bad request', { retryable: false, details: { status: 400 } });
export const badKey = () =>
  new ClawmeshError('UNAVAILABLE', 'key refused', {
    retryable: false,
    details: { status: 401, upstreamCode: 'UNAUTHENTICATED' },
  });

export const FAST: ChainOptions = { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 } };
export const ask = { messages: [{ role: 'user' as const, content: 'hi' }] };
export const ctx = (timeoutMs = 5_000): CallContext => createCallContext({ timeoutMs });

export function chainOf(options: ChainOptions, ...providers: Scripted[]): DeploymentChain {
  return createDeploymentChain(
    providers.map((provider) => ({ id: provider.name, provider, model: `${provider.name}-model` })),
    options,
  );
}

export async function failure(promise: Promise<unknown>): Promise<ClawmeshError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ClawmeshError);
  return err as ClawmeshError;
}

export const summary = (attempts: Attempt[]) =>
  attempts.map((a) => `${a.deployment}:${a.ok ? 'ok' : (a.skipped ?? a.code)}`);
