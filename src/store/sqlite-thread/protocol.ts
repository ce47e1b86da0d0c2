import type { ClawmeshErrorJSON } from '../../core/errors.ts';

/** A call from the main thread to the SQLite thread. */
export interface ThreadRequest {
  id: number;
  store: 'conversations' | 'dedupe';
  method: string;
  args: unknown[];
}

/** The SQLite thread's answer to one {@link ThreadRequest}. */
export type ThreadResponse =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: ClawmeshErrorJSON };

/** What the SQLite thread is started with. */
export interface ThreadData {
  path: string;
}
