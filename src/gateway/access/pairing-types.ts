/**
 * The pairing store port: one-time codes given to unknown senders, and the senders an operator
 * approved. The server issues codes; `clawmesh pairing approve` (another process) approves them,
 * so the SQLite adapter is the one a deployment uses.
 */

/** A code waiting for the operator. */
export interface PairingRequest {
  channel: string;
  /** The one-time code (upper case, unambiguous letters and digits). */
  code: string;
  userId: string;
  userName?: string;
  /** Epoch milliseconds. */
  createdAt: number;
  /** Epoch milliseconds after which the code no longer approves anyone. */
  expiresAt: number;
}

/** A sender allowed to send direct messages on a channel. */
export interface ApprovedSender {
  channel: string;
  userId: string;
  userName?: string;
  /** Epoch milliseconds. */
  approvedAt: number;
}

/** What {@link PairingStore.request} did. */
export interface IssuedCode {
  code: string;
  expiresAt: number;
  /** Whether the code is new (false: the sender's live code was returned again). */
  created: boolean;
}

/** The pairing store. Codes compare case-insensitively. */
export interface PairingStore {
  readonly kind: string;
  /**
   * The sender's live code, or a new one valid `ttlMs`. Rejects `RATE_LIMITED` when the
   * channel already has `maxPending` live codes (so strangers cannot fill the store).
   */
  request(
    channel: string,
    userId: string,
    options: { ttlMs: number; userName?: string; maxPending?: number },
  ): Promise<IssuedCode>;
  /**
   * Approves the sender of a live code and forgets the code. Rejects `NOT_FOUND` for a code
   * this channel never issued (or already used) and `DEADLINE_EXCEEDED` for an expired one.
   */
  approve(channel: string, code: string): Promise<ApprovedSender>;
  /** Whether the sender was approved on this channel. */
  isApproved(channel: string, userId: string): Promise<boolean>;
  /** Approved senders and live codes, of one channel or all, oldest first. */
  list(channel?: string): Promise<{ approved: ApprovedSender[]; pending: PairingRequest[] }>;
  /** Withdraws an approval; resolves whether there was one. */
  revoke(channel: string, userId: string): Promise<boolean>;
  close(): Promise<void>;
}

/** Letters and digits that cannot be mistaken for each other (no 0/O, 1/I/L, 5/S, 2/Z, 8/B). */
export const CODE_ALPHABET = 'ACDEFGHJKMNPQRTUVWXY34679';
/** Characters of a pairing code. */
export const CODE_LENGTH = 8;
