import { ClawmeshError } from '../../core/errors.ts';
import type { ChainResult, ChainStreamEvent } from './types.ts';

/** A push-based run: it hands deltas to `onDelta` and settles with the result. */
export type PushRun = (onDelta: (text: string) => void, signal: AbortSignal) => Promise<ChainResult>;

/**
 * Turns a push-based run into an async iterable of text events and a final `done`. Deltas wait in
 * a queue until the consumer pulls them; a consumer that leaves early aborts the run (and with it
 * the upstream request).
 */
export async function* bridge(
  run: PushRun,
  parent: AbortSignal | undefined,
): AsyncGenerator<ChainStreamEvent> {
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(parent?.reason);
  if (parent) {
    if (parent.aborted) onParentAbort();
    else parent.addEventListener('abort', onParentAbort, { once: true });
  }
  const queue: string[] = [];
  let head = 0;
  let wake: (() => void) | undefined;
  let settled = false;
  let result: ChainResult | undefined;
  let failure: unknown;
  const notify = () => {
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  run((text) => {
    queue.push(text);
    notify();
  }, controller.signal).then(
    (value) => {
      result = value;
      settled = true;
      notify();
    },
    (err: unknown) => {
      failure = err;
      settled = true;
      notify();
    },
  );
  try {
    for (;;) {
      while (head < queue.length) {
        const text = queue[head] as string;
        queue[head++] = '';
        yield { type: 'text', text };
      }
      if (settled) {
        if (result) {
          yield { type: 'done', result };
          return;
        }
        throw failure;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    parent?.removeEventListener('abort', onParentAbort);
    if (!settled) {
      controller.abort(
        new ClawmeshError('UNAVAILABLE', 'the stream consumer went away', { retryable: false }),
      );
    }
  }
}
