import { type InboundMessage, InboundMessageSchema } from '../core/contracts/conversation.ts';
import type { Logger } from '../observability/logger.ts';
import type { DedupeStore } from '../store/types.ts';

/**
 * The message a conversation's replica was running when it last held the turn lease: written
 * when a turn starts, cleared when it ends (answered or failed). A replica that takes the lease
 * and finds an entry whose turn never finished knows its holder died mid-turn, and runs that
 * message before its own, so the turns stay in the order they were sent.
 */
export interface JournalEntry {
  /** The dedupe key of the running turn (`turn:<conversation>:<message id>`). */
  key: string;
  message: InboundMessage;
}

/** The per-conversation turn journal, kept in the turn dedupe store beside the turns' replies. */
export interface TurnJournal {
  /** The entry of a turn that started and did not end, or `undefined`. */
  read(conversationId: string): Promise<JournalEntry | undefined>;
  /** Records the turn now starting; failures are logged on the logger `log` makes (the journal only helps a recovery). */
  begin(conversationId: string, entry: JournalEntry, log: () => Logger): void;
  /** Records that the conversation's running turn ended; failures are logged on the logger `log` makes. */
  end(conversationId: string, log: () => Logger): Promise<void>;
}

const journalKey = (conversationId: string) => `journal:${conversationId}`;

/** Parses a stored entry; anything else (a cleared journal, an older shape) is no entry. */
function entryOf(value: unknown): JournalEntry | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { key, message } = value as { key?: unknown; message?: unknown };
  if (typeof key !== 'string') return undefined;
  const parsed = InboundMessageSchema.safeParse(message);
  return parsed.success ? { key, message: parsed.data } : undefined;
}

/**
 * Creates the turn journal over a dedupe store: `claim` reads an entry (its `done` value) or
 * finds none, `complete` writes one; an ended turn leaves `null`, as no entry.
 */
export function createTurnJournal(store: DedupeStore, ttlMs: number): TurnJournal {
  return {
    async read(conversationId) {
      const found = await store.claim(journalKey(conversationId), ttlMs);
      return found.state === 'done' ? entryOf(found.value) : undefined;
    },
    begin(conversationId, entry, log) {
      store.complete(journalKey(conversationId), entry, ttlMs).catch((err: unknown) => {
        log().warn({ err: String(err) }, 'could not journal the turn starting');
      });
    },
    end: (conversationId, log) =>
      store.complete(journalKey(conversationId), null, ttlMs).catch((err: unknown) => {
        log().warn({ err: String(err) }, 'could not journal the turn as ended');
      }),
  };
}
