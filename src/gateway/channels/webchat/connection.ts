import { createHash } from 'node:crypto';
import type { WebSocket } from 'ws';
import { ClawmeshError } from '../../../core/errors.ts';
import { sessionConversationId } from '../../../core/ids.ts';
import type { Logger } from '../../../observability/logger.ts';
import type { Peer, SessionHub } from './hub.ts';
import {
  CLOSE_CODES,
  type ClientFrame,
  type HelloFrame,
  PROTOCOL_VERSION,
  parseClientFrame,
  type ServerFrame,
} from './protocol.ts';
import type { Transcript, TranscriptEntry, TranscriptPage } from './transcript.ts';
import { type ChatSession, errorFrame, type TurnRunner } from './turns.ts';

/** What one socket's handler needs. */
export interface ConnectionDeps {
  hub: SessionHub;
  runner: TurnRunner;
  transcript: Transcript;
  logger: Logger;
  /** The agent a web chat user talks to. */
  agentFor(userId: string): string;
  /** Checks the `hello` frame's key; throws `UNAUTHENTICATED`. Absent: the chat is open. */
  authenticate?(key: string | undefined): void;
  /** Checks that a user may send messages; throws `PERMISSION_DENIED`. */
  permit?(userId: string): void;
  /** Stored messages a replay reads at most. */
  replayLimit: number;
  /** How long a socket may stay silent before its `hello`, in milliseconds. */
  helloTimeoutMs: number;
  /** Bytes waiting on a socket above which its deltas are skipped (the reply carries the whole text). */
  maxBufferedBytes: number;
}

/** Malformed frames a socket may send before it is closed. */
const MAX_BAD_FRAMES = 20;

/** The channel's user id of a browser session: a digest, so the secret session id is never stored or logged. */
export function userIdOf(sessionId: string): string {
  return `web-${createHash('sha256').update(sessionId).digest('hex').slice(0, 24)}`;
}

/** Serves one web chat socket: `hello` and its replay, then messages and pings, frame by frame in order. */
export function serveConnection(socket: WebSocket, deps: ConnectionDeps): void {
  let session: ChatSession | undefined;
  let closed = false;
  let badFrames = 0;
  // Frames are handled one after another, so a message waits for the replay of the hello before it.
  let chain: Promise<void> = Promise.resolve();

  // While replaying, live frames wait; deltas are dropped since the catch-up carries their text.
  let held: ServerFrame[] | undefined;
  const lagging = new Set<string>();
  const write = (frame: ServerFrame) => {
    if (closed || socket.readyState !== socket.OPEN) return;
    if (frame.type === 'delta') {
      if (lagging.has(frame.replyTo)) return;
      if (socket.bufferedAmount > deps.maxBufferedBytes) {
        lagging.add(frame.replyTo);
        return;
      }
    } else if (frame.type === 'reply' && frame.replyTo) {
      lagging.delete(frame.replyTo);
    }
    socket.send(JSON.stringify(frame));
  };
  const peer: Peer = {
    send(frame) {
      if (held) {
        if (frame.type !== 'delta') held.push(frame);
      } else {
        write(frame);
      }
    },
  };

  const helloTimer = setTimeout(() => {
    if (!session) socket.close(CLOSE_CODES.helloTimeout, 'no hello');
  }, deps.helloTimeoutMs);
  helloTimer.unref();

  const hello = async (frame: HelloFrame) => {
    if (session) throw new ClawmeshError('CONFLICT', 'this socket already said hello');
    try {
      deps.authenticate?.(frame.key);
    } catch (err) {
      write(errorFrame(ClawmeshError.from(err)));
      socket.close(CLOSE_CODES.unauthenticated, 'unauthenticated');
      return;
    }
    const userId = userIdOf(frame.sessionId);
    const agentId = deps.agentFor(userId);
    const conversationId = sessionConversationId(agentId, 'webchat', userId);
    session = { userId, agentId, conversationId };
    clearTimeout(helloTimer);
    held = [];
    deps.hub.join(conversationId, peer);
    let page: TranscriptPage;
    let reset = false;
    try {
      page = await deps.transcript.since(conversationId, frame.lastSeq, deps.replayLimit);
      reset = frame.lastSeq > page.latestSeq;
      if (reset) page = await deps.transcript.since(conversationId, 0, deps.replayLimit);
    } catch (err) {
      // No replay, no ready: the client reconnects (with backoff) and asks again.
      deps.hub.leave(conversationId, peer);
      session = undefined;
      held = undefined;
      write(errorFrame(ClawmeshError.from(err, 'UNAVAILABLE')));
      socket.close(CLOSE_CODES.internalError, 'history unavailable');
      return;
    }
    if (closed) return;
    // From here to the end, synchronous: the running turns' snapshot and the held frames agree.
    write({
      type: 'ready',
      protocol: PROTOCOL_VERSION,
      conversationId,
      lastSeq: page.latestSeq,
      replayed: page.entries.length,
      ...(page.truncated ? { truncated: true as const } : {}),
      ...(reset ? { reset: true as const } : {}),
    });
    for (const entry of page.entries) write(replayFrame(conversationId, entry, deps.hub));
    for (const turn of deps.hub.running(conversationId)) {
      write({ type: 'user', clientMessageId: turn.clientMessageId, text: turn.text });
      if (turn.streamed) write({ type: 'delta', replyTo: turn.clientMessageId, text: turn.streamed });
    }
    const waiting = held;
    held = undefined;
    for (const frame of waiting) write(frame);
  };

  const handle = async (frame: ClientFrame) => {
    if (frame.type === 'ping') return write({ type: 'pong' });
    if (frame.type === 'hello') return hello(frame);
    if (!session) throw new ClawmeshError('INVALID_ARGUMENT', 'send a hello frame first');
    try {
      deps.permit?.(session.userId);
    } catch (err) {
      return write(errorFrame(ClawmeshError.from(err), frame.clientMessageId));
    }
    await deps.runner.accept(session, frame, write);
  };

  const onFrame = async (data: string | undefined) => {
    try {
      if (data === undefined)
        throw new ClawmeshError('INVALID_ARGUMENT', 'binary frames are not accepted: send JSON text');
      await handle(parseClientFrame(data));
    } catch (err) {
      const error = ClawmeshError.from(err);
      // Before a turn has its trace (the message's claim failed): the conversation names it.
      if (error.code === 'INTERNAL')
        deps.logger.error(
          { err, ...(session ? { conversationId: session.conversationId } : {}) },
          'web chat frame failed',
        );
      write(errorFrame(error));
      if (error.code === 'INVALID_ARGUMENT' && ++badFrames >= MAX_BAD_FRAMES) {
        socket.close(CLOSE_CODES.policyViolation, 'too many malformed frames');
      }
    }
  };

  socket.on('message', (data, isBinary) => {
    const text = isBinary
      ? undefined
      : Array.isArray(data)
        ? Buffer.concat(data).toString('utf8')
        : data.toString('utf8');
    chain = chain.then(() => onFrame(text));
  });
  socket.on('close', () => {
    closed = true;
    clearTimeout(helloTimer);
    if (session) deps.hub.leave(session.conversationId, peer);
  });
}

/** A stored entry as a replay frame, with the client message id when this process remembers it. */
function replayFrame(conversationId: string, entry: TranscriptEntry, hub: SessionHub): ServerFrame {
  const id = hub.idOf(conversationId, entry.seq);
  if (entry.role === 'user') {
    return { type: 'user', seq: entry.seq, text: entry.text, ...(id ? { clientMessageId: id } : {}) };
  }
  return {
    type: 'reply',
    seq: entry.seq,
    ...(id ? { replyTo: id } : {}),
    text: entry.text,
    toolCalls: entry.toolCalls,
  };
}
