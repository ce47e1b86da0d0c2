import { createKeyedQueue } from '../../../conversation/turn-queue.ts';
import { type CallContext, createCallContext, withContext } from '../../../core/context.ts';
import type { Client } from '../../../core/contract.ts';
import type { conversationContract, TurnReply } from '../../../core/contracts/conversation.ts';
import { ClawmeshError } from '../../../core/errors.ts';
import { createInFlight } from '../../../core/in-flight.ts';
import { callFields, type Logger } from '../../../observability/logger.ts';
import { inEdgeSpan } from '../../../observability/tracing.ts';
import type { DedupeStore } from '../../../store/types.ts';
import type { RunningTurn, SessionHub } from './hub.ts';
import type { ErrorFrame, MessageFrame, ServerFrame, ToolSummary } from './protocol.ts';
import { type SettledTurn, summaryOfReport, type Transcript } from './transcript.ts';

/** Who is talking: a browser session mapped to a channel user and its conversation. */
export interface ChatSession {
  userId: string;
  /** The agent the session talks to (from the bindings). */
  agentId: string;
  conversationId: string;
}

/** What the runner needs. */
export interface TurnRunnerDeps {
  conversation: Client<typeof conversationContract>;
  dedupe: DedupeStore;
  transcript: Transcript;
  hub: SessionHub;
  logger: Logger;
  /** The time budget of one turn, in milliseconds. */
  turnTimeoutMs: number;
  /** How long a message id and its reply are remembered, in milliseconds. */
  dedupeTtlMs: number;
  /** Takes a point from the rate limits; throws `RATE_LIMITED`. */
  admit?(userId: string): Promise<void>;
}

/** Runs the turns of web chat messages, at most once per client message id. */
export interface TurnRunner {
  /**
   * Accepts a message: a new one is acknowledged and its turn runs in the background, its
   * deltas and reply broadcast to every socket of the session; a duplicate is acknowledged
   * and, when its turn has finished, answered again to `peer` alone.
   */
  accept(session: ChatSession, frame: MessageFrame, send: (frame: ServerFrame) => void): Promise<void>;
  /** Resolves when no turn (and no write after one) is in flight. */
  drain(): Promise<void>;
}

/** What the dedupe store keeps for a finished message: enough to answer a resend. */
interface Finished {
  userText: string;
  userSeq?: number;
  seq?: number;
  text: string;
  toolCalls: ToolSummary[];
  dropped?: true;
}

/** Creates the {@link TurnRunner}. */
export function createTurnRunner(deps: TurnRunnerDeps): TurnRunner {
  // Turns of one conversation settle one at a time, so the transcript can tell which stored
  // messages are whose (the Conversation Manager serializes them too; this keeps the marks exact).
  const queue = createKeyedQueue();
  const inFlight = createInFlight();
  const pendingTtlMs = deps.turnTimeoutMs + 10_000;

  const run = async (session: ChatSession, frame: MessageFrame) => {
    const { conversationId } = session;
    const id = frame.clientMessageId;
    const turn = deps.hub.startTurn(conversationId, id, frame.text);
    const ctx = createCallContext({
      timeoutMs: deps.turnTimeoutMs,
      channel: 'webchat',
      userId: session.userId,
      conversationId,
      agentId: session.agentId,
      onDelta: (delta) => {
        if (typeof delta !== 'string' || delta === '') return;
        turn.streamed += delta;
        deps.hub.broadcast(conversationId, { type: 'delta', replyTo: id, text: delta });
      },
    });
    // The message enters the platform here: the root span of its trace, around the turn and the
    // gateway's own lines about it (a failure's included), which carry the trace's ids.
    return inEdgeSpan(
      'channel webchat',
      ctx,
      () => ({ 'clawmesh.channel': 'webchat', 'messaging.system': 'webchat' }),
      (traced) => runTurn(session, frame, turn, traced),
    );
  };

  const runTurn = async (session: ChatSession, frame: MessageFrame, turn: RunningTurn, ctx: CallContext) => {
    const { conversationId } = session;
    const id = frame.clientMessageId;
    const key = dedupeKey(conversationId, id);
    try {
      const { reply, settled } = await queue.run(conversationId, async () => {
        const mark = await deps.transcript.mark(conversationId);
        // The turn's time starts once the conversation's earlier turns have settled.
        const reply = await deps.conversation.handle(
          {
            channel: 'webchat',
            userId: session.userId,
            agentId: session.agentId,
            text: frame.text,
            messageId: id,
          },
          withContext(ctx, { deadline: Date.now() + deps.turnTimeoutMs }),
        );
        const settled = await deps.transcript.settle(conversationId, mark, { text: frame.text, reply });
        return { reply, settled };
      });
      const finished = finishedOf(frame.text, reply, settled);
      if (settled) {
        deps.hub.remember(conversationId, settled.userSeq, id);
        deps.hub.remember(conversationId, settled.seq, id);
      }
      deps.hub.endTurn(conversationId, id);
      // A model that does not stream (or a remote transport) still shows the reply as one chunk.
      if (turn.streamed === '' && finished.text !== '') {
        deps.hub.broadcast(conversationId, { type: 'delta', replyTo: id, text: finished.text });
      }
      for (const out of framesOf(id, finished)) deps.hub.broadcast(conversationId, out);
      await deps.dedupe.complete(key, finished, deps.dedupeTtlMs).catch((err: unknown) => {
        // The reply is stored and sent; a resend may run the turn again once the claim expires.
        deps.logger.warn(
          { ...callFields(ctx), err: String(err) },
          'web chat: could not record a finished message',
        );
      });
    } catch (err) {
      deps.hub.endTurn(conversationId, id);
      const error = ClawmeshError.from(err);
      await deps.dedupe.release(key).catch(() => undefined);
      // Its request, trace and conversation: the conversation role's 'turn failed' names the same.
      deps.logger.warn({ ...callFields(ctx), code: error.code, err: error.message }, 'web chat turn failed');
      deps.hub.broadcast(conversationId, errorFrame(error, id));
    }
  };

  return {
    async accept(session, frame, send) {
      const id = frame.clientMessageId;
      if (deps.hub.isRunning(session.conversationId, id)) {
        send({ type: 'ack', clientMessageId: id, duplicate: true });
        return;
      }
      const key = dedupeKey(session.conversationId, id);
      const claim = await deps.dedupe.claim(key, pendingTtlMs);
      if (claim.state === 'done') {
        send({ type: 'ack', clientMessageId: id, duplicate: true });
        for (const out of framesOf(id, claim.value as Finished)) send(out);
        return;
      }
      if (claim.state === 'pending') {
        // Running here (its frames reach this socket, which has joined) or in another process.
        send({ type: 'ack', clientMessageId: id, duplicate: true });
        return;
      }
      try {
        await deps.admit?.(session.userId);
      } catch (err) {
        await deps.dedupe.release(key).catch(() => undefined);
        send(errorFrame(ClawmeshError.from(err), id));
        return;
      }
      send({ type: 'ack', clientMessageId: id });
      deps.hub.broadcast(session.conversationId, { type: 'user', clientMessageId: id, text: frame.text });
      inFlight.enter();
      void run(session, frame).finally(() => inFlight.leave());
    },
    drain: () => inFlight.idle(),
  };
}

function dedupeKey(conversationId: string, clientMessageId: string): string {
  return `webchat:${conversationId}:${clientMessageId}`;
}

function finishedOf(userText: string, reply: TurnReply, settled: SettledTurn | undefined): Finished {
  return {
    userText,
    ...(settled ? { userSeq: settled.userSeq, seq: settled.seq } : {}),
    text: reply.text,
    toolCalls: reply.toolCalls.map(summaryOfReport),
    ...(reply.dropped ? { dropped: true as const } : {}),
  };
}

/** The frames that tell a client a message's turn is done: its stored user message, then the reply. */
function framesOf(clientMessageId: string, finished: Finished): ServerFrame[] {
  const frames: ServerFrame[] = [];
  if (finished.userSeq !== undefined) {
    frames.push({ type: 'user', seq: finished.userSeq, clientMessageId, text: finished.userText });
  }
  frames.push({
    type: 'reply',
    ...(finished.seq !== undefined ? { seq: finished.seq } : {}),
    replyTo: clientMessageId,
    text: finished.text,
    toolCalls: finished.toolCalls,
    ...(finished.dropped ? { dropped: true as const } : {}),
  });
  return frames;
}

/** A typed error frame; `replyTo` names the message whose turn failed. */
export function errorFrame(error: ClawmeshError, replyTo?: string): ErrorFrame {
  const retryAfter = error.details?.retryAfterSeconds;
  return {
    type: 'error',
    code: error.code,
    message: error.message,
    retryable: error.retryable,
    ...(replyTo ? { replyTo } : {}),
    ...(typeof retryAfter === 'number' ? { retryAfterSeconds: retryAfter } : {}),
  };
}
