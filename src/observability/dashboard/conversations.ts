import { ClawmeshError } from '../../core/errors.ts';
import { splitToolName } from '../../core/messages.ts';
import type { ConversationStore, StoredMessage } from '../../store/types.ts';
import type { ConversationSummary, ConversationView, ToolCallView, TurnView } from './views.ts';

/** Characters of a message shown in the list. */
const PREVIEW_CHARS = 160;
/** Characters of one text or tool value shown in a conversation; the rest is cut. */
const VALUE_CHARS = 8000;

/** The most recently updated conversations, newest first, each with the start of its latest message. */
export async function recentConversations(
  store: ConversationStore,
  limit: number,
): Promise<ConversationSummary[]> {
  const records = await store.recent(limit);
  return Promise.all(
    records.map(async (record) => {
      const [latest] = await store.messages(record.id, 1);
      return { ...record, preview: cut(latest?.content ?? '', PREVIEW_CHARS) };
    }),
  );
}

/** A conversation's newest `maxMessages` messages as turns; `NOT_FOUND` when there is no such conversation. */
export async function conversationView(
  store: ConversationStore,
  id: string,
  maxMessages: number,
): Promise<ConversationView> {
  const record = await store.get(id);
  if (!record) throw new ClawmeshError('NOT_FOUND', `no conversation ${id}`);
  const messages = await store.messages(id, maxMessages);
  return {
    conversation: record,
    turns: groupTurns(messages),
    truncated: (messages[0]?.seq ?? 1) > 1,
  };
}

/**
 * Groups stored messages into turns: a user message starts one; the assistant's tool calls,
 * their results and the final answer belong to it. Messages before the first user message (a
 * history cut mid-turn) form a turn of their own.
 */
export function groupTurns(messages: readonly StoredMessage[]): TurnView[] {
  const turns: TurnView[] = [];
  let turn: TurnView | undefined;
  let calls = new Map<string, ToolCallView>();
  for (const message of messages) {
    if (message.role === 'system') continue;
    if (message.role === 'user' || !turn) {
      turn = { seq: message.seq, at: message.at, toolCalls: [], steps: 0 };
      calls = new Map();
      turns.push(turn);
      if (message.role === 'user') {
        turn.user = cut(message.content, VALUE_CHARS);
        continue;
      }
    }
    if (message.role === 'assistant') {
      turn.steps++;
      for (const call of message.toolCalls ?? []) {
        const view: ToolCallView = { id: call.id, name: call.name, arguments: parseJson(call.arguments) };
        const target = splitToolName(call.name);
        if (target) Object.assign(view, target);
        calls.set(call.id, view);
        turn.toolCalls.push(view);
      }
      if (message.content.trim()) turn.reply = cut(message.content, VALUE_CHARS);
    } else if (message.role === 'tool') {
      const call = message.toolCallId ? calls.get(message.toolCallId) : undefined;
      if (call) settle(call, message.content);
    }
  }
  return turns;
}

/** Records a tool message's content on its call: a `{ error: { code, message } }` body is a failure. */
function settle(call: ToolCallView, content: string): void {
  const value = parseJson(content);
  const error = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (error && typeof error === 'object' && typeof error.message === 'string') {
    call.ok = false;
    call.error = typeof error.code === 'string' ? `${error.code}: ${error.message}` : error.message;
  } else {
    call.ok = true;
    call.result = value;
  }
}

/** The parsed JSON of a short text; the (cut) text itself when it is long or not JSON. */
function parseJson(text: string): unknown {
  if (text.length > VALUE_CHARS) return cut(text, VALUE_CHARS);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
