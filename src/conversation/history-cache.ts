import { trimOldest } from '../core/bounded.ts';
import type { ChatMessage } from '../core/messages.ts';
import { estimateTokens } from './context-window.ts';

/** Messages with their estimated token counts, index for index. */
export interface History {
  messages: ChatMessage[];
  tokens: number[];
}

/** The newest messages of a conversation as of a known message count. */
interface Entry extends History {
  messageCount: number;
}

/**
 * Keeps the newest messages of recently active conversations, so a turn need not read its
 * history back from the store. An entry is used only while its message count equals the
 * store's, so a write by another process (or a lost write) makes it miss, never lie.
 * Bounded by conversations (least recently used go first) and by messages per conversation.
 */
export interface HistoryCache {
  /** The cached history when it is current for `messageCount`; `undefined` on a miss. */
  get(conversationId: string, messageCount: number): History | undefined;
  /** Records the history as of `messageCount`; returns it with its token estimates. */
  set(conversationId: string, messageCount: number, messages: readonly ChatMessage[]): History;
  /** Adds a turn's messages to a current entry (or drops a stale one). */
  append(conversationId: string, previousCount: number, added: readonly ChatMessage[]): void;
}

/** Creates a {@link HistoryCache} of at most `conversations` entries of `perConversation` messages. */
export function createHistoryCache(options: {
  conversations: number;
  perConversation: number;
}): HistoryCache {
  const entries = new Map<string, Entry>();
  const touch = (id: string, entry: Entry) => {
    entries.delete(id);
    entries.set(id, entry);
    trimOldest(entries, options.conversations);
  };
  const keep = (messageCount: number, messages: ChatMessage[], tokens: number[]): Entry => {
    const drop = Math.max(0, messages.length - options.perConversation);
    return drop === 0
      ? { messageCount, messages, tokens }
      : { messageCount, messages: messages.slice(drop), tokens: tokens.slice(drop) };
  };
  return {
    get(id, messageCount) {
      const entry = entries.get(id);
      if (!entry || entry.messageCount !== messageCount) return undefined;
      touch(id, entry);
      return entry;
    },
    set(id, messageCount, messages) {
      const entry = keep(messageCount, [...messages], messages.map(estimateTokens));
      if (options.conversations > 0) touch(id, entry);
      return entry;
    },
    append(id, previousCount, added) {
      const entry = entries.get(id);
      if (!entry) return;
      if (entry.messageCount !== previousCount) {
        entries.delete(id);
        return;
      }
      const messages = [...entry.messages, ...added];
      touch(
        id,
        keep(previousCount + added.length, messages, [...entry.tokens, ...added.map(estimateTokens)]),
      );
    },
  };
}
