import { type CallContext, createCallContext } from '../../core/context.ts';
import type { Client } from '../../core/contract.ts';
import type { conversationContract } from '../../core/contracts/conversation.ts';
import { ClawmeshError } from '../../core/errors.ts';
import { callFields, type Logger } from '../../observability/logger.ts';
import { inEdgeSpan } from '../../observability/tracing.ts';
import type { InboxEntry, InboxStore } from '../../store/inbox-types.ts';
import type { DedupeStore } from '../../store/types.ts';
import type { Access } from '../access/policy.ts';
import type { ChannelMetrics } from './metrics.ts';
import type { ChannelRouter } from './routing.ts';
import { createKeyedScheduler } from './scheduler.ts';
import { type RetrySettings, sendReply } from './sender.ts';
import { conversationOfMessage, runChannelTurn } from './turn.ts';
import type { ChannelAdapter, ChannelMessage } from './types.ts';

/** What the delivery pipeline is built from. */
export interface DeliveryDeps {
  /** The running adapters, by channel name. */
  adapters: ReadonlyMap<string, ChannelAdapter>;
  dedupe: DedupeStore;
  inbox: InboxStore;
  access: Access;
  router: ChannelRouter;
  /** The agent of messages no binding routes: the turn's lines then name its conversation. */
  defaultAgentId?: string;
  conversation: Client<typeof conversationContract>;
  logger: Logger;
  metrics: ChannelMetrics;
  retry: RetrySettings;
  /** Turns (and their sends) running at once. */
  concurrency: number;
  /** The time budget of one turn, in milliseconds (the longest agent turn plus a margin). */
  turnTimeoutMs: number;
}

/** The delivery pipeline: accepted messages in, turns run, replies out, nothing lost or doubled. */
export interface Delivery {
  /**
   * Dedupes the messages by update id and records new ones in the inbox; resolves once they
   * are stored (then the platform may get its 2xx) and runs their turns in the background.
   * Rejects (and forgets the claims) when the inbox cannot take them, so the platform retries.
   */
  accept(adapter: ChannelAdapter, messages: readonly ChannelMessage[]): Promise<void>;
  /** Runs the inbox's unfinished entries again (after a restart); resolves with how many. */
  recover(): Promise<number>;
  /** Runs a failed entry again; `false` when it was not failed. Throws `NOT_FOUND` for an unknown id. */
  retry(id: string): Promise<boolean>;
  /** Entries queued or running. */
  readonly inFlight: number;
  /** Resolves once no entry is queued or running. */
  idle(): Promise<void>;
  /**
   * Stops taking messages and ends waits between send tries; turns and sends in flight finish.
   * Resolves when nothing runs (unfinished entries stay in the inbox for the next start).
   */
  stop(): Promise<void>;
}

/** The inbox id (and dedupe key suffix) of a message: `<channel>:<account>:<update id>`. */
export function inboxIdOf(message: Pick<ChannelMessage, 'channel' | 'account' | 'updateId'>): string {
  return `${message.channel}:${message.account}:${message.updateId}`;
}

/**
 * Creates the delivery pipeline (DESIGN.md §4, step 1): dedupe → durable inbox → (2xx) →
 * access → route → turn → send with retries → done or failed.
 *
 * @example
 * const delivery = createDelivery({ adapters, dedupe, inbox, access, router, conversation, logger, metrics, retry, concurrency: 16, turnTimeoutMs: 65_000 });
 * await delivery.accept(adapter, [message]); // now answer the platform 200
 */
export function createDelivery(deps: DeliveryDeps): Delivery {
  const scheduler = createKeyedScheduler(deps.concurrency);
  const stopping = new AbortController();
  const scheduled = new Set<string>();

  const schedule = (id: string, message: ChannelMessage) => {
    if (scheduled.has(id) || stopping.signal.aborted) return;
    scheduled.add(id);
    const chat = `${message.channel}:${message.account}:${message.chatId}`;
    void scheduler
      .run(chat, () => process(id))
      .catch((err: unknown) => {
        deps.logger.error(
          { inboxId: id, err: (err as Error)?.message ?? String(err) },
          'channel delivery crashed',
        );
      })
      .finally(() => scheduled.delete(id));
  };

  const process = async (id: string): Promise<void> => {
    if (stopping.signal.aborted) return;
    const entry = await deps.inbox.get(id);
    if (!entry || entry.status === 'done' || entry.status === 'failed') return;
    const adapter = deps.adapters.get(entry.channel);
    if (!adapter) {
      deps.logger.warn(
        { inboxId: id, channel: entry.channel },
        'channel is off: its inbox entry waits for it',
      );
      return;
    }
    // The message enters the platform here: the root span of its trace, around its turn and the
    // sending of its reply, whose log lines all carry the trace's ids.
    const channel = entry.channel;
    // Its lines name its conversation from the start: a failed turn's and a crash's too.
    const conversationId =
      entry.reply?.conversationId ?? conversationOfMessage(entry.message as ChannelMessage, deps);
    await inEdgeSpan(
      `channel ${channel}`,
      createCallContext({
        timeoutMs: deps.turnTimeoutMs,
        channel,
        ...(conversationId ? { conversationId } : {}),
      }),
      () => ({ 'clawmesh.channel': channel, 'messaging.system': channel }),
      async (ctx) => {
        try {
          await deliver(entry!, adapter, ctx);
        } catch (err) {
          // The inbox failing mid-delivery: the line names the message's trace, as its others do.
          deps.logger.error(
            { ...callFields(ctx), channel, inboxId: id, err: (err as Error)?.message ?? String(err) },
            'channel delivery crashed',
          );
        }
      },
    );
  };

  const deliver = async (accepted: InboxEntry, adapter: ChannelAdapter, ctx: CallContext): Promise<void> => {
    let entry = accepted;
    if (entry.status === 'pending') {
      const next = await runChannelTurn(entry, adapter, deps, ctx);
      if (!next) return;
      entry = next;
    }
    const result = await sendReply(entry, adapter, { ...deps, signal: stopping.signal }, ctx);
    if (result !== 'sent') return;
    const outcome = entry.reply?.outcome ?? 'replied';
    await deps.inbox.finish(entry.id, outcome);
    deps.metrics.deliveries.inc({ channel: adapter.name, outcome });
  };

  const acceptOne = async (adapter: ChannelAdapter, message: ChannelMessage): Promise<void> => {
    const id = inboxIdOf(message);
    const key = `channel:${id}`;
    const claim = await deps.dedupe.claim(key, adapter.dedupeTtlMs);
    if (claim.state !== 'claimed') {
      deps.metrics.received.inc({ channel: adapter.name, result: 'duplicate' });
      return;
    }
    let added: boolean;
    try {
      added = await deps.inbox.add({ id, channel: message.channel, message });
    } catch (err) {
      await deps.dedupe.release(key).catch(() => undefined);
      throw err;
    }
    deps.metrics.received.inc({ channel: adapter.name, result: added ? 'accepted' : 'duplicate' });
    if (added) schedule(id, message);
    // The message is in the inbox: a dedupe write failing now must not make the platform retry.
    await deps.dedupe.complete(key, { inbox: id }, adapter.dedupeTtlMs).catch((err: unknown) => {
      deps.logger.warn(
        { inboxId: id, err: (err as Error)?.message ?? String(err) },
        'dedupe complete failed',
      );
    });
  };

  return {
    async accept(adapter, messages) {
      if (stopping.signal.aborted) throw new ClawmeshError('UNAVAILABLE', 'the gateway is stopping');
      // One at a time: a batch (WhatsApp, polling) keeps its order in the inbox.
      for (const message of messages) await acceptOne(adapter, message);
    },
    async recover() {
      const entries: InboxEntry[] = await deps.inbox.unfinished();
      for (const entry of entries) schedule(entry.id, entry.message as ChannelMessage);
      if (entries.length > 0)
        deps.logger.info({ count: entries.length }, 'resuming unfinished channel deliveries');
      return entries.length;
    },
    async retry(id) {
      const entry = await deps.inbox.get(id);
      if (!entry) throw new ClawmeshError('NOT_FOUND', `no delivery "${id}"`);
      if (!(await deps.inbox.retry(id))) return false;
      schedule(id, entry.message as ChannelMessage);
      return true;
    },
    get inFlight() {
      return scheduler.size;
    },
    idle: () => scheduler.idle(),
    async stop() {
      stopping.abort();
      await scheduler.idle();
    },
  };
}
