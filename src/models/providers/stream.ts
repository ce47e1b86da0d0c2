import type { CallContext } from '../../core/context.ts';
import { ClawmeshError } from '../../core/errors.ts';
import type {
  ModelProvider,
  ProviderCallOptions,
  ProviderRequest,
  ProviderResponse,
  ProviderStreamEvent,
} from '../types.ts';

/**
 * Streams from any provider: its own `stream`, or, for a provider with `complete` alone, the whole
 * answer as one `text` event followed by `done`.
 *
 * @example
 * for await (const event of streamOf(provider, request, ctx, signal)) {
 *   if (event.type === 'text') process.stdout.write(event.text);
 * }
 */
export function streamOf(
  provider: ModelProvider,
  request: ProviderRequest,
  ctx: CallContext,
  signal?: AbortSignal,
  options?: ProviderCallOptions,
): AsyncIterable<ProviderStreamEvent> {
  if (provider.stream) return provider.stream(request, ctx, signal, options);
  return completeAsStream(provider, request, ctx, signal, options);
}

async function* completeAsStream(
  provider: ModelProvider,
  request: ProviderRequest,
  ctx: CallContext,
  signal: AbortSignal | undefined,
  options: ProviderCallOptions | undefined,
): AsyncGenerator<ProviderStreamEvent> {
  const response = await provider.complete(request, ctx, signal, options);
  if (response.content) yield { type: 'text', text: response.content };
  yield { type: 'done', response };
}

/** Drains a provider stream into its final response, handing each text delta to `onText`. */
export async function collectStream(
  events: AsyncIterable<ProviderStreamEvent>,
  onText?: (text: string) => void,
): Promise<ProviderResponse> {
  for await (const event of events) {
    if (event.type === 'done') return event.response;
    onText?.(event.text);
  }
  throw new ClawmeshError('UNAVAILABLE', 'the model stream ended without its final event', {
    details: { streamCut: true },
  });
}

/**
 * The error of a stream that ended before its terminal event, or broke off mid-answer: retryable
 * `UNAVAILABLE`, marked `details.streamCut`, so it is never mistaken for a complete answer.
 */
export function streamCut(provider: string, what: string, cause?: unknown): ClawmeshError {
  return new ClawmeshError('UNAVAILABLE', `${provider}: the stream was cut: ${what}`, {
    cause,
    details: { streamCut: true },
  });
}

/** The error to raise when `signal` aborted: its reason when it is a ClawmeshError. */
export function abortError(
  provider: string,
  signal: AbortSignal | undefined,
  cause?: unknown,
): ClawmeshError {
  const reason: unknown = signal?.reason;
  if (reason instanceof ClawmeshError) return reason;
  return new ClawmeshError('DEADLINE_EXCEEDED', `${provider}: the request was aborted`, {
    cause,
    retryable: false,
  });
}
