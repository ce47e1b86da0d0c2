import type { CallContext } from '../core/context.ts';
import type { InboundMessage, TurnReply } from '../core/contracts/conversation.ts';
import { callLogger, type Logger } from '../observability/logger.ts';
import type { LeaseHandle } from '../store/lease-types.ts';
import type { ClaimResult, ConversationRecord, ConversationStore, DedupeStore } from '../store/types.ts';
import { createTurnJournal, type JournalEntry } from './turn-journal.ts';

/** What {@link createTurnOnce} is built from. */
export interface TurnOnceDeps {
  store: ConversationStore;
  /** Where each message's claim and reply are kept, and the turn journal. */
  turns: DedupeStore;
  /** How long a turn's reply (and a journal entry) is kept, in milliseconds. */
  replyTtlMs: number;
  logger: Logger;
  /**
   * Runs the turn of a journaled message again, holding the conversation's lease: the message a
   * replica that died was running.
   */
  rerun(
    message: InboundMessage,
    conversationId: string,
    ctx: CallContext,
    held?: LeaseHandle,
  ): Promise<TurnReply>;
}

/** The reads a turn starts with: its conversation, its message's claim and the turn journal. */
export interface TurnReads {
  record: Promise<ConversationRecord | undefined>;
  claim: Promise<ClaimResult>;
  orphan: Promise<JournalEntry | undefined>;
}

/** A turn run once per message id, and the recording of its reply (awaited after the lease is released). */
export type TurnOnce = (
  key: string,
  message: InboundMessage,
  conversationId: string,
  ctx: CallContext,
  held: LeaseHandle | undefined,
  turn: (prefetched?: Promise<ConversationRecord | undefined>) => Promise<TurnReply>,
  /** The reads, when they were sent already (with the lease's acquire); else they are sent now. */
  reads?: TurnReads,
) => Promise<{ reply: TurnReply; recorded?: Promise<unknown> }>;

/** {@link TurnOnce}, and the reads it starts with, for a caller that sends them early. */
export interface TurnOnceRunner {
  run: TurnOnce;
  /** Sends a turn's reads (in one tick: on one connection they go out together). */
  read(key: string, conversationId: string): TurnReads;
  /**
   * Forgets reads sent before the lease was held that cannot be used: gives back the message's
   * claim if they took it. Call it only when the turn will not run (the lease was not granted);
   * a turn that reads again once it holds the lease finds its own claim pending, which it runs.
   */
  drop(key: string, reads: TurnReads): void;
}

/**
 * Runs each message's turn once, across conversation replicas. Called holding the conversation's
 * lease, so a claim still pending belongs to a turn whose replica lost the lease (it died, or its
 * writes are fenced off), or is this replica's own, taken with reads sent before a lease it then
 * had to wait for: either way this turn takes over. (A claim taken that way, without the lease,
 * only ever turns an absent claim into a pending one, which every holder treats as its own to
 * run, so it changes nothing for them.) The journal names the turn running, so that the next
 * holder of the lease runs it first if this replica dies.
 */
export function createTurnOnce(deps: TurnOnceDeps): TurnOnceRunner {
  const { turns, replyTtlMs } = deps;
  const journal = createTurnJournal(turns, replyTtlMs);

  const read = (key: string, conversationId: string): TurnReads => {
    const reads = {
      record: deps.store.get(conversationId),
      claim: turns.claim(key, replyTtlMs),
      orphan: journal.read(conversationId),
    };
    // Awaited later, or never when the reads are dropped: not unhandled meanwhile.
    for (const pending of Object.values(reads)) pending.catch(() => undefined);
    return reads;
  };

  /**
   * Runs the journaled turn of a replica that died holding the lease, when its reply was never
   * recorded: the message it was running was sent before the one now waiting, so it goes first,
   * and its reply is kept for the gateway's retry of it. `true` when it ran.
   */
  const recoverOrphan = async (
    orphan: JournalEntry,
    conversationId: string,
    ctx: CallContext,
    held?: LeaseHandle,
  ): Promise<boolean> => {
    const claim = await turns.claim(orphan.key, replyTtlMs);
    // Done: its holder died after answering. Claimed now: its turn failed and was released.
    if (claim.state !== 'pending') {
      if (claim.state === 'claimed') await turns.release(orphan.key);
      return false;
    }
    const log = callLogger(deps.logger, ctx, { conversationId, messageId: orphan.message.messageId });
    try {
      log.info('running first the turn of a replica that stopped before answering it');
      const reply = await deps.rerun(orphan.message, conversationId, ctx, held);
      await turns.complete(orphan.key, reply, replyTtlMs);
    } catch (err) {
      await turns.release(orphan.key).catch(() => undefined);
      log.warn({ err: String(err) }, 'could not run the turn of a replica that stopped; its retry will');
    }
    return true;
  };

  const run: TurnOnce = async (key, message, conversationId, ctx, held, turn, reads) => {
    // A child logger costs a serialization of its bindings: made only when a line is written.
    const log = () => callLogger(deps.logger, ctx);
    // The conversation, the claim and the journal are read together: one round trip.
    const sent = reads ?? read(key, conversationId);
    let prefetched: Promise<ConversationRecord | undefined> | undefined = sent.record;
    const [claim, orphan] = await Promise.all([sent.claim, sent.orphan]);
    if (orphan && orphan.key !== key && (await recoverOrphan(orphan, conversationId, ctx, held))) {
      // The orphan wrote to the conversation: read it again.
      prefetched = undefined;
    }
    if (claim.state === 'done') return { reply: claim.value as TurnReply };
    journal.begin(conversationId, { key, message }, log);
    let reply: TurnReply;
    try {
      reply = await turn(prefetched);
    } catch (err) {
      await turns.release(key).catch(() => undefined);
      // A turn fenced off leaves the journal to the lease's new holder.
      if (!held?.lost) await journal.end(conversationId, log);
      throw err;
    }
    // Sent before the lease is released (the caller awaits it after): on one connection the two
    // go out together and the record lands first, so a retry that gets the lease sees it.
    const recorded = Promise.all([
      turns.complete(key, reply, replyTtlMs).catch((err: unknown) => {
        log().warn({ key, err: String(err) }, 'could not record a turn as done');
      }),
      journal.end(conversationId, log),
    ]);
    return { reply, recorded };
  };

  return {
    run,
    read,
    drop(key, reads) {
      reads.claim
        .then(
          (claim) => (claim.state === 'claimed' ? turns.release(key) : undefined),
          () => undefined,
        )
        .catch(() => undefined);
    },
  };
}
