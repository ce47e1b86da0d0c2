import type { CallContext } from '../core/context.ts';
import type { InboundMessage, TurnReply } from '../core/contracts/conversation.ts';
import { callLogger, type Logger } from '../observability/logger.ts';
import type { LeaseHandle } from '../store/lease-types.ts';
import type { ConversationRecord, ConversationStore, DedupeStore } from '../store/types.ts';
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

/** A turn run once per message id, and the recording of its reply (awaited after the lease is released). */
export type TurnOnce = (
  key: string,
  message: InboundMessage,
  conversationId: string,
  ctx: CallContext,
  held: LeaseHandle | undefined,
  turn: (prefetched?: Promise<ConversationRecord | undefined>) => Promise<TurnReply>,
) => Promise<{ reply: TurnReply; recorded?: Promise<unknown> }>;

/**
 * Runs each message's turn once, across conversation replicas. Called holding the conversation's
 * lease, so a claim still pending belongs to a turn whose replica lost the lease (it died, or its
 * writes are fenced off): this turn takes over. The journal names the turn running, so that the
 * next holder of the lease runs it first if this replica dies.
 */
export function createTurnOnce(deps: TurnOnceDeps): TurnOnce {
  const { turns, replyTtlMs } = deps;
  const journal = createTurnJournal(turns, replyTtlMs);

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

  return async (key, message, conversationId, ctx, held, turn) => {
    // A child logger costs a serialization of its bindings: made only when a line is written.
    const log = () => callLogger(deps.logger, ctx);
    // The conversation, the claim and the journal are read together: one round trip.
    let prefetched: Promise<ConversationRecord | undefined> | undefined = deps.store.get(conversationId);
    prefetched.catch(() => undefined);
    const [claim, orphan] = await Promise.all([turns.claim(key, replyTtlMs), journal.read(conversationId)]);
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
}
