import { type CallContext, withContext } from '../../core/context.ts';
import type { Client } from '../../core/contract.ts';
import type { conversationContract, TurnReply } from '../../core/contracts/conversation.ts';
import { ClawmeshError } from '../../core/errors.ts';
import { sessionConversationId } from '../../core/ids.ts';
import { callFields, type Logger } from '../../observability/logger.ts';
import type { InboxEntry, InboxReply, InboxStore } from '../../store/inbox-types.ts';
import type { Access, DenyReason } from '../access/policy.ts';
import type { ChannelMetrics } from './metrics.ts';
import { type ChannelRouter, sessionPeer } from './routing.ts';
import { splitText } from './split.ts';
import type { ChannelAdapter, ChannelMessage } from './types.ts';

/** What {@link runChannelTurn} needs. */
export interface TurnDeps {
  inbox: InboxStore;
  access: Access;
  router: ChannelRouter;
  /**
   * The agent that answers a message no binding routes (the conversation service's default): with
   * it the turn's lines name its conversation from the start, a failed turn's included.
   */
  defaultAgentId?: string;
  conversation: Client<typeof conversationContract>;
  logger: Logger;
  metrics: ChannelMetrics;
  turnTimeoutMs: number;
}

/** The longest text `conversation.handle` takes. */
const MAX_TEXT = 32_000;

/** What a message that must be answered ({@link ChannelMessage.mustAnswer}) gets when access refuses it. */
export const DENIED_NOTICES: Record<DenyReason, string> = {
  'not-mentioned': 'Mention me to get an answer here.',
  'dm-disabled': 'Direct messages are turned off for this assistant.',
  'not-allowed': 'You are not allowed to use this assistant.',
  pairing: 'This assistant answers approved people only.',
  'pairing-full': 'Too many people are waiting for approval; please try again later.',
  'rate-limited': 'Too many messages; please try again in a minute.',
};

/** What a message that must be answered gets when the turn gave no reply. */
export const NO_ANSWER_NOTICE = 'No answer to that message.';

/**
 * Runs the turn of a `pending` inbox entry: access (group mention rule, DM policy, rate limits),
 * routing to an agent, `conversation.handle` with a typing indicator, and stores the reply split
 * at the channel's limit. Returns the entry, now `sending`, when there is something to send;
 * `undefined` when the entry is finished (denied without an answer, no reply, or the turn failed —
 * recorded as `failed`). `ctx` is the delivery's (its trace and request id, the turn's deadline):
 * the turn runs in it and its log lines carry its ids.
 */
export async function runChannelTurn(
  entry: InboxEntry,
  adapter: ChannelAdapter,
  deps: TurnDeps,
  ctx: CallContext,
): Promise<InboxEntry | undefined> {
  const message = entry.message as ChannelMessage;
  const agentId = deps.router.agentFor(message);
  const peer = sessionPeer(message);
  const finish = async (outcome: string) => {
    await deps.inbox.finish(entry.id, outcome);
    deps.metrics.deliveries.inc({ channel: adapter.name, outcome });
  };
  const stored = async (reply: InboxReply): Promise<InboxEntry> => {
    await deps.inbox.setReply(entry.id, reply);
    return { ...entry, status: 'sending', reply, partsSent: 0 };
  };
  /** Ends without a turn's reply: silently, or with a notice when the platform waits for one. */
  const end = async (outcome: string, notice: string): Promise<InboxEntry | undefined> => {
    if (message.mustAnswer) return stored({ parts: splitText(notice, adapter.textLimit), outcome });
    await finish(outcome);
    return undefined;
  };

  const decision = await deps.access.check({
    channel: message.channel,
    userId: message.userId,
    isGroup: message.isGroup,
    mentioned: message.mentioned,
    ...(message.userName ? { userName: message.userName } : {}),
  });
  if (!decision.allowed) {
    const outcome = `denied:${decision.reason}`;
    if (decision.reason !== 'not-mentioned') {
      deps.logger.info(
        { ...callFields(ctx), channel: message.channel, userId: message.userId, reason: decision.reason },
        'channel message denied',
      );
    }
    if (!decision.reply) return end(outcome, DENIED_NOTICES[decision.reason]);
    return stored({ parts: splitText(decision.reply, adapter.textLimit), outcome });
  }
  if (message.fixedReply)
    return stored({ parts: splitText(message.fixedReply, adapter.textLimit), outcome: 'fixed' });

  const text = message.text.trim().slice(0, MAX_TEXT);
  if (!text) return end('no-reply', NO_ANSWER_NOTICE);
  let reply: TurnReply;
  const stopTyping = startTyping(adapter, message, deps.logger, ctx);
  try {
    reply = await deps.conversation.handle(
      {
        channel: message.channel,
        userId: peer,
        text,
        messageId: entry.id,
        ...(agentId ? { agentId } : {}),
        metadata: {
          account: message.account,
          chatId: message.chatId,
          senderId: message.userId,
          isGroup: message.isGroup,
          ...(message.userName ? { senderName: message.userName } : {}),
        },
      },
      withContext(ctx, { userId: peer }),
    );
  } catch (err) {
    const error = ClawmeshError.from(err);
    await deps.inbox.fail(entry.id, `turn: ${error.code}: ${error.message}`);
    deps.metrics.failed.inc({ channel: adapter.name });
    deps.metrics.deliveries.inc({ channel: adapter.name, outcome: 'failed' });
    deps.logger.error(
      { ...callFields(ctx), channel: adapter.name, inboxId: entry.id, code: error.code, err: error.message },
      'channel turn failed; recorded as failed (GET /v1/deliveries?status=failed)',
    );
    return undefined;
  } finally {
    stopTyping();
  }
  const parts = reply.dropped ? [] : splitText(reply.text, adapter.textLimit);
  if (parts.length === 0) return end(reply.dropped ? 'dropped' : 'no-reply', NO_ANSWER_NOTICE);
  return stored({ parts, conversationId: reply.conversationId, ...(agentId ? { agentId } : {}) });
}

/**
 * The conversation a channel message belongs to, as the conversation service names it (by its
 * agent, channel and peer); `undefined` when no binding routes it and the default agent is unknown.
 */
export function conversationOfMessage(
  message: ChannelMessage,
  deps: Pick<TurnDeps, 'router' | 'defaultAgentId'>,
): string | undefined {
  const agentId = deps.router.agentFor(message) ?? deps.defaultAgentId;
  return agentId ? sessionConversationId(agentId, message.channel, sessionPeer(message)) : undefined;
}

/** Shows the adapter's typing indicator now and every interval until the returned function is called. */
function startTyping(
  adapter: ChannelAdapter,
  message: ChannelMessage,
  logger: Logger,
  ctx: CallContext,
): () => void {
  const typing = adapter.typing;
  if (!typing) return () => undefined;
  const controller = new AbortController();
  const show = () => {
    typing.call(adapter, message.replyTo, controller.signal).catch((err: unknown) => {
      if (!controller.signal.aborted) {
        logger.debug(
          { ...callFields(ctx), channel: adapter.name, err: (err as Error)?.message ?? String(err) },
          'typing indicator failed',
        );
      }
    });
  };
  show();
  const timer = setInterval(show, adapter.typingIntervalMs ?? 4000);
  timer.unref();
  return () => {
    clearInterval(timer);
    controller.abort();
  };
}
