import { trimOldest } from '../../../core/bounded.ts';
import type { ServerFrame } from './protocol.ts';

/** One open socket of a session, as the hub sees it. */
export interface Peer {
  /** Sends a frame (or holds it while the peer is replaying). Never throws. */
  send(frame: ServerFrame): void;
}

/** A turn running now: what a peer that joins mid-turn needs to catch up. */
export interface RunningTurn {
  readonly clientMessageId: string;
  /** The user's text. */
  readonly text: string;
  /** The reply text streamed so far. */
  streamed: string;
}

/**
 * The live state of web chat conversations in this process: the sockets open on each, the
 * turns running, and which client message ids recent seqs belong to (for replays). Every
 * structure is bounded or emptied when its conversation goes quiet.
 */
export interface SessionHub {
  join(conversationId: string, peer: Peer): void;
  leave(conversationId: string, peer: Peer): void;
  /** Sends a frame to every socket of the conversation. */
  broadcast(conversationId: string, frame: ServerFrame): void;
  startTurn(conversationId: string, clientMessageId: string, text: string): RunningTurn;
  endTurn(conversationId: string, clientMessageId: string): void;
  isRunning(conversationId: string, clientMessageId: string): boolean;
  /** The turns running now, oldest first (copies). */
  running(conversationId: string): RunningTurn[];
  /** Remembers that `seq` (a user message or a reply) belongs to `clientMessageId`. */
  remember(conversationId: string, seq: number, clientMessageId: string): void;
  /** The client message id of a seq, while remembered. */
  idOf(conversationId: string, seq: number): string | undefined;
  /** Open sockets, over all conversations. */
  readonly peers: number;
}

/** Options of {@link createSessionHub}. */
export interface SessionHubOptions {
  /** Seq → client message id pairs kept per conversation (default 200). */
  idsPerConversation?: number;
  /** Conversations whose ids are kept (default 10,000). */
  idConversations?: number;
}

interface Session {
  peers: Set<Peer>;
  turns: Map<string, RunningTurn>;
}

/** Creates a {@link SessionHub}. */
export function createSessionHub(options: SessionHubOptions = {}): SessionHub {
  const perConversation = options.idsPerConversation ?? 200;
  const idConversations = options.idConversations ?? 10_000;
  const sessions = new Map<string, Session>();
  const ids = new Map<string, Map<number, string>>();
  let peerCount = 0;

  const sessionOf = (id: string): Session => {
    let session = sessions.get(id);
    if (!session) {
      session = { peers: new Set(), turns: new Map() };
      sessions.set(id, session);
    }
    return session;
  };
  const forgetIfQuiet = (id: string, session: Session) => {
    if (session.peers.size === 0 && session.turns.size === 0) sessions.delete(id);
  };

  return {
    join(id, peer) {
      const session = sessionOf(id);
      if (!session.peers.has(peer)) peerCount += 1;
      session.peers.add(peer);
    },
    leave(id, peer) {
      const session = sessions.get(id);
      if (!session?.peers.delete(peer)) return;
      peerCount -= 1;
      forgetIfQuiet(id, session);
    },
    broadcast(id, frame) {
      const session = sessions.get(id);
      if (!session) return;
      for (const peer of session.peers) peer.send(frame);
    },
    startTurn(id, clientMessageId, text) {
      const turn: RunningTurn = { clientMessageId, text, streamed: '' };
      sessionOf(id).turns.set(clientMessageId, turn);
      return turn;
    },
    endTurn(id, clientMessageId) {
      const session = sessions.get(id);
      if (!session) return;
      session.turns.delete(clientMessageId);
      forgetIfQuiet(id, session);
    },
    isRunning: (id, clientMessageId) => sessions.get(id)?.turns.has(clientMessageId) ?? false,
    running: (id) => [...(sessions.get(id)?.turns.values() ?? [])].map((turn) => ({ ...turn })),
    remember(id, seq, clientMessageId) {
      let seqs = ids.get(id);
      if (seqs) {
        ids.delete(id);
      } else {
        seqs = new Map();
      }
      ids.set(id, seqs);
      trimOldest(ids, idConversations);
      seqs.set(seq, clientMessageId);
      trimOldest(seqs, perConversation);
    },
    idOf: (id, seq) => ids.get(id)?.get(seq),
    get peers() {
      return peerCount;
    },
  };
}
