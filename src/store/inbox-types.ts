/**
 * The inbox: every message a channel accepted, recorded before the platform gets its 2xx, and
 * what became of it. A process that dies after accepting finds its unfinished entries at the
 * next start and runs them again; a reply that could not be sent stays visible as `failed`.
 */

/**
 * Where an entry stands:
 * - `pending`: accepted, its turn has not produced a reply yet;
 * - `sending`: the reply is stored and being sent (`partsSent` of it went out);
 * - `done`: answered, or finished without a reply (`outcome` says why);
 * - `failed`: the reply could not be sent after its retries (`error` says why).
 */
export type InboxStatus = 'pending' | 'sending' | 'done' | 'failed';

/** The statuses, for validation. */
export const INBOX_STATUSES: readonly InboxStatus[] = ['pending', 'sending', 'done', 'failed'];

/** A reply stored with its entry, so sending can resume without running the turn again. */
export interface InboxReply {
  /** The parts to send, in order (already split at the channel's length limit). */
  parts: string[];
  /** The agent that answered, when a turn ran. */
  agentId?: string;
  /** The conversation the turn was part of. */
  conversationId?: string;
  /** The outcome recorded once every part is sent (default `replied`; `denied:pairing` for a pairing code). */
  outcome?: string;
}

/** One accepted message and its state. */
export interface InboxEntry {
  /** Unique per channel delivery: `<channel>:<account>:<update id>`. */
  id: string;
  channel: string;
  /** The normalized message, as JSON (the channel's `ChannelMessage`). */
  message: unknown;
  status: InboxStatus;
  reply?: InboxReply;
  /** Reply parts sent so far. */
  partsSent: number;
  /** Send attempts made so far (over all parts). */
  attempts: number;
  /** Why the entry failed, or the last send error while it is still retried. */
  error?: string;
  /** How a `done` entry ended: `replied`, `no-reply`, `denied`, `dropped`, … */
  outcome?: string;
  /** Epoch milliseconds. */
  createdAt: number;
  /** Epoch milliseconds of the latest change. */
  updatedAt: number;
}

/** A filter of {@link InboxStore.list}. */
export interface InboxQuery {
  status?: InboxStatus;
  channel?: string;
  /** Most entries to return (default 100). */
  limit?: number;
}

/**
 * The inbox store port. Every adapter (memory, SQLite) passes the conformance suite in
 * `inbox-conformance.ts`. Updates to an unknown id reject with `NOT_FOUND`.
 */
export interface InboxStore {
  readonly kind: string;
  /**
   * Records a new `pending` entry. Resolves `true` when it was added, `false` when an entry
   * with this id exists already (which is left unchanged).
   */
  add(entry: { id: string; channel: string; message: unknown }): Promise<boolean>;
  /** The entry, or `undefined`. */
  get(id: string): Promise<InboxEntry | undefined>;
  /** Stores the turn's reply and moves the entry to `sending` with no part sent. */
  setReply(id: string, reply: InboxReply): Promise<void>;
  /** Records progress of sending: parts sent, attempts made, and the last error (cleared when absent). */
  progress(id: string, update: { partsSent: number; attempts: number; error?: string }): Promise<void>;
  /** Moves the entry to `done` with how it ended. */
  finish(id: string, outcome: string): Promise<void>;
  /** Moves the entry to `failed` with the error. */
  fail(id: string, error: string): Promise<void>;
  /** Moves a `failed` entry back to `sending` (or `pending` without a reply) to try again; `false` if it was not failed. */
  retry(id: string): Promise<boolean>;
  /** Entries matching the query, newest first. */
  list(query?: InboxQuery): Promise<InboxEntry[]>;
  /** `pending` and `sending` entries, oldest first: the work to resume at start. */
  unfinished(limit?: number): Promise<InboxEntry[]>;
  /** Deletes `done` entries last updated before `before` (epoch ms); resolves with how many. */
  prune(before: number): Promise<number>;
  /** Resolves when the store answers (for `/readyz`). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
