import type { ChatMessage } from '../core/messages.ts';

/** A conversation's identity: the session key (agent + channel + peer) and when it began. */
export interface ConversationRecord {
  id: string;
  agentId: string;
  channel: string;
  /** The user on the channel. */
  peer: string;
  /** Epoch milliseconds. */
  createdAt: number;
  /** Epoch milliseconds of the latest write. */
  updatedAt: number;
  /** Messages stored so far. */
  messageCount: number;
}

/** A stored message: a chat message with its position and time. */
export interface StoredMessage extends ChatMessage {
  /** 1-based position in the conversation, assigned by the store. */
  seq: number;
  /** Epoch milliseconds. */
  at: number;
}

/** Options of {@link ConversationStore.append}. */
export interface AppendOptions {
  /**
   * The turn lease's fencing token. The store remembers the highest token written to each
   * conversation and rejects a write that carries a lower one with `CONFLICT`
   * (`details.reason: 'STALE_FENCE'`, with `fence` and `storedFence`).
   */
  fence?: number;
  /**
   * The id of the turn these messages belong to (the inbound message id). When a turn with this
   * id was already appended to this conversation, the append writes nothing and fails with
   * `CONFLICT` whose details are {@link TurnAlreadyStoredDetails} (`reason: 'TURN_ALREADY_STORED'`
   * and the messages the first append stored, with their seq and time); see `isTurnAlreadyStored`.
   * The check and the write are atomic, so concurrent appends of one turn store it once.
   *
   * Checks run in this order: unknown conversation (`NOT_FOUND`), then a stored turn, then the
   * fence. A duplicate turn carrying a stale fence reports the duplicate: the turn is stored,
   * which is what its sender needs to know. Turn ids are kept as long as the conversation. An
   * append with no messages records no turn (there is nothing to store twice). A non-empty
   * string of at most 512 characters; anything else is `INVALID_ARGUMENT`.
   */
  turnId?: string;
}

/** The `details` of the `CONFLICT` an append fails with when its {@link AppendOptions.turnId} is stored. */
export interface TurnAlreadyStoredDetails {
  reason: 'TURN_ALREADY_STORED';
  conversationId: string;
  turnId: string;
  /** The messages the first append of the turn stored, oldest first, with their seq and time. */
  messages: StoredMessage[];
}

/**
 * The conversation store port. Every adapter (memory, SQLite, Redis, PostgreSQL) passes the
 * one conformance suite in `conformance.ts`.
 */
export interface ConversationStore {
  readonly kind: string;
  /** Creates the conversation when it does not exist yet; returns the stored record either way. */
  ensure(conversation: {
    id: string;
    agentId: string;
    channel: string;
    peer: string;
  }): Promise<ConversationRecord>;
  /** The conversation, or `undefined`. */
  get(id: string): Promise<ConversationRecord | undefined>;
  /** Appends the messages of one turn atomically, in order; returns them with seq and time. */
  append(id: string, messages: readonly ChatMessage[], options?: AppendOptions): Promise<StoredMessage[]>;
  /** The newest `limit` messages (all when absent), oldest first. */
  messages(id: string, limit?: number): Promise<StoredMessage[]>;
  /** The most recently updated conversations, newest first. */
  recent(limit: number): Promise<ConversationRecord[]>;
  /** Resolves when the store answers; rejects otherwise (for `/readyz`). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** What {@link DedupeStore.claim} found. */
export type ClaimResult = { state: 'claimed' } | { state: 'pending' } | { state: 'done'; value: unknown };

/**
 * The dedupe store port: remembers platform message ids and idempotency keys, with the reply
 * of the first attempt, so a retry gets the same answer without a second turn.
 */
export interface DedupeStore {
  readonly kind: string;
  /** Claims a key for `ttlMs`: `claimed` the first time, then `pending` or `done` with the value. */
  claim(key: string, ttlMs: number): Promise<ClaimResult>;
  /** Stores the value of a claimed key (kept for `ttlMs`). */
  complete(key: string, value: unknown, ttlMs: number): Promise<void>;
  /** Forgets a claim whose work failed, so a retry may run it again. */
  release(key: string): Promise<void>;
  close(): Promise<void>;
}
