import { Worker } from 'node:worker_threads';
import { ClawmeshError } from '../../core/errors.ts';
import type { ConversationStore, DedupeStore } from '../types.ts';
import type { ThreadData, ThreadRequest, ThreadResponse } from './protocol.ts';

/** The SQLite stores served by their own thread, with a close for both. */
export interface ThreadedSqliteStores {
  conversations: ConversationStore;
  dedupe: DedupeStore;
  close(): Promise<void>;
}

/** The thread's entry, compiled beside this file. */
const THREAD_ENTRY = new URL('./thread.js', import.meta.url);

/** Whether this build can start the SQLite thread (not when running from TypeScript sources). */
export const canThreadSqlite = import.meta.url.endsWith('.js');

/**
 * Opens the SQLite stores in a worker thread: every call is a message to it, so the
 * database's work (and a checkpoint's fsync) runs beside the event loop, not on it. The
 * stores behave exactly as the in-thread ones; a thread that dies fails calls with `UNAVAILABLE`.
 */
export function createThreadedSqliteStores(path: string): ThreadedSqliteStores {
  const worker = new Worker(THREAD_ENTRY, { workerData: { path } satisfies ThreadData });
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: unknown) => void }>();
  let nextId = 0;
  let down: ClawmeshError | undefined;

  worker.on('message', (response: ThreadResponse) => {
    const call = pending.get(response.id);
    if (!call) return;
    pending.delete(response.id);
    if (response.ok) call.resolve(response.value);
    else call.reject(ClawmeshError.fromJSON(response.error));
  });
  const fail = (err: ClawmeshError) => {
    down ??= err;
    for (const call of pending.values()) call.reject(err);
    pending.clear();
  };
  worker.on('error', (err) =>
    fail(new ClawmeshError('UNAVAILABLE', `the SQLite thread failed: ${err.message}`, { cause: err })),
  );
  worker.on('exit', () =>
    fail(new ClawmeshError('UNAVAILABLE', 'the SQLite store is closed', { retryable: false })),
  );

  const call = (store: ThreadRequest['store'], method: string, args: unknown[]): Promise<never> => {
    if (down) return Promise.reject(down);
    return new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage({ id, store, method, args } satisfies ThreadRequest);
    });
  };
  const proxy = <T extends object>(store: ThreadRequest['store'], methods: readonly string[]): T => {
    const target: Record<string, unknown> = { kind: 'sqlite' };
    for (const method of methods) target[method] = (...args: unknown[]) => call(store, method, args);
    return target as T;
  };

  const conversations = proxy<ConversationStore>('conversations', [
    'ensure',
    'get',
    'append',
    'messages',
    'recent',
    'ping',
  ]);
  const dedupe = proxy<DedupeStore>('dedupe', ['claim', 'complete', 'release']);
  let closing: Promise<void> | undefined;
  // Ends the thread after the calls made before it; a thread already down has nothing to close.
  const close = () => {
    closing ??= (async () => {
      if (down) return;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      await call('conversations', 'close', []).catch(() => undefined);
      await exited;
    })();
    return closing;
  };
  return {
    conversations: { ...conversations, close },
    dedupe: { ...dedupe, close: async () => {} },
    close,
  };
}
