import { trimOldest } from '../../../core/bounded.ts';
import type { TurnReply } from '../../../core/contracts/conversation.ts';
import { isErrorCode } from '../../../core/errors.ts';
import { replyTextOf, splitToolName } from '../../../core/messages.ts';
import type { ConversationStore, StoredMessage } from '../../../store/types.ts';
import type { ToolSummary } from './protocol.ts';

/** A user message or a final reply, with its position in the conversation. */
export interface TranscriptEntry {
  seq: number;
  role: 'user' | 'assistant';
  text: string;
  /** On replies: the tools the turn called. */
  toolCalls: ToolSummary[];
}

/** Entries after a position, oldest first. */
export interface TranscriptPage {
  entries: TranscriptEntry[];
  /** The highest seq held for the conversation (0: none). */
  latestSeq: number;
  /** Entries older than the page were left out (more than the limit were asked for). */
  truncated: boolean;
}

/** The seqs a finished turn was stored at. */
export interface SettledTurn {
  userSeq: number;
  seq: number;
}

/**
 * Where the web chat reads what to replay. Turns of one conversation are settled one at a
 * time (the caller serializes them), so the messages stored after a mark are the turn's own.
 */
export interface Transcript {
  /** The position before a turn (the latest seq). */
  mark(conversationId: string): Promise<number>;
  /** After a turn that started at `mark`: where its user message and reply were stored; `undefined` when nothing was. */
  settle(
    conversationId: string,
    mark: number,
    turn: { text: string; reply: TurnReply },
  ): Promise<SettledTurn | undefined>;
  /** The entries after `afterSeq`, reading at most `limit` stored messages (the newest). */
  since(conversationId: string, afterSeq: number, limit: number): Promise<TranscriptPage>;
}

/**
 * A transcript over the conversation store: durable, and the seqs are the store's own. Used
 * wherever the gateway runs beside the conversation store (the monolith).
 */
export function createStoreTranscript(store: ConversationStore): Transcript {
  const latest = async (id: string) => (await store.get(id))?.messageCount ?? 0;
  return {
    mark: latest,
    async settle(id, mark) {
      const count = await latest(id);
      if (count <= mark) return undefined;
      const written = await store.messages(id, count - mark);
      const user = written.find((message) => message.role === 'user');
      const last = written.at(-1);
      if (!user || !last || last.role !== 'assistant') return undefined;
      return { userSeq: user.seq, seq: last.seq };
    },
    async since(id, afterSeq, limit) {
      const latestSeq = await latest(id);
      if (afterSeq >= latestSeq) return { entries: [], latestSeq, truncated: false };
      const wanted = latestSeq - afterSeq;
      let reading = Math.min(wanted, limit);
      let stored = await store.messages(id, reading);
      // A turn stored since the count was read pushes the window forward: read again, wider.
      while (reading < limit && stored.length === reading && stored[0]!.seq > afterSeq + 1) {
        reading = Math.min(stored.at(-1)!.seq - afterSeq, limit);
        stored = await store.messages(id, reading);
      }
      return {
        entries: entriesOf(stored.filter((message) => message.seq > afterSeq)),
        latestSeq: Math.max(latestSeq, stored.at(-1)?.seq ?? 0),
        truncated: wanted > limit,
      };
    },
  };
}

/** Options of {@link createMemoryTranscript}. */
export interface MemoryTranscriptOptions {
  /** Entries kept per conversation (default 200). */
  perConversation?: number;
  /** Conversations kept, least recently written dropped first (default 10,000). */
  conversations?: number;
}

/**
 * A bounded in-process transcript with its own seqs, for a gateway that runs without the
 * conversation store (the conversation service is elsewhere). It forgets on restart: a client
 * then gets `reset` and the history it still has is dropped.
 */
export function createMemoryTranscript(options: MemoryTranscriptOptions = {}): Transcript {
  const perConversation = options.perConversation ?? 200;
  const maxConversations = options.conversations ?? 10_000;
  const logs = new Map<string, { seq: number; entries: TranscriptEntry[] }>();
  return {
    mark: async (id) => logs.get(id)?.seq ?? 0,
    async settle(id, _mark, turn) {
      if (turn.reply.dropped && turn.reply.text === '' && turn.reply.toolCalls.length === 0) return undefined;
      const log = logs.get(id) ?? { seq: 0, entries: [] };
      // Re-inserted so the least recently written conversation is the oldest key.
      logs.delete(id);
      logs.set(id, log);
      trimOldest(logs, maxConversations);
      const userSeq = ++log.seq;
      const seq = ++log.seq;
      log.entries.push(
        { seq: userSeq, role: 'user', text: turn.text, toolCalls: [] },
        {
          seq,
          role: 'assistant',
          text: turn.reply.text,
          toolCalls: turn.reply.toolCalls.map(summaryOfReport),
        },
      );
      if (log.entries.length > perConversation) log.entries.splice(0, log.entries.length - perConversation);
      return { userSeq, seq };
    },
    async since(id, afterSeq, limit) {
      const log = logs.get(id);
      const latestSeq = log?.seq ?? 0;
      const after = (log?.entries ?? []).filter((entry) => entry.seq > afterSeq);
      const oldestHeld = log?.entries[0]?.seq ?? latestSeq + 1;
      const entries = after.slice(-limit);
      return {
        entries,
        latestSeq,
        truncated: entries.length < after.length || (afterSeq < oldestHeld - 1 && latestSeq > afterSeq),
      };
    },
  };
}

/** A tool call report of a live turn as a reply frame carries it. */
export function summaryOfReport(report: TurnReply['toolCalls'][number]): ToolSummary {
  return { skill: report.skill, tool: report.tool, arguments: report.arguments, ok: report.ok };
}

/**
 * Stored messages as transcript entries: user messages, and final replies (assistant messages
 * without tool calls) with the tool calls made since the user message before them.
 */
export function entriesOf(messages: readonly StoredMessage[]): TranscriptEntry[] {
  const entries: TranscriptEntry[] = [];
  let calls: ToolSummary[] = [];
  // What the model said before calling tools: part of the reply, as the turn streamed it.
  let said: StoredMessage[] = [];
  const byId = new Map<string, ToolSummary>();
  for (const message of messages) {
    if (message.role === 'user') {
      entries.push({ seq: message.seq, role: 'user', text: message.content, toolCalls: [] });
      calls = [];
      said = [];
      byId.clear();
    } else if (message.role === 'assistant' && message.toolCalls?.length) {
      said.push(message);
      for (const call of message.toolCalls) {
        const name = splitToolName(call.name);
        const summary: ToolSummary = {
          skill: name?.skill ?? '',
          tool: name?.tool ?? call.name,
          arguments: parseJson(call.arguments),
          ok: true,
        };
        calls.push(summary);
        byId.set(call.id, summary);
      }
    } else if (message.role === 'tool') {
      const summary = message.toolCallId ? byId.get(message.toolCallId) : undefined;
      if (summary) summary.ok = !isToolError(parseJson(message.content));
    } else if (message.role === 'assistant') {
      said.push(message);
      entries.push({ seq: message.seq, role: 'assistant', text: replyTextOf(said), toolCalls: calls });
      calls = [];
      said = [];
      byId.clear();
    }
  }
  return entries;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A tool message written for a failed call: `{"error":{"code":…,"message":…}}`. */
function isToolError(content: unknown): boolean {
  if (content === null || typeof content !== 'object' || !('error' in content)) return false;
  const error = (content as { error: unknown }).error;
  return (
    error !== null &&
    typeof error === 'object' &&
    isErrorCode((error as { code?: unknown }).code) &&
    typeof (error as { message?: unknown }).message === 'string'
  );
}
