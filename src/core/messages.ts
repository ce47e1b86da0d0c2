import { z } from 'zod';

/** A tool call the model asked for. `name` is the qualified tool name `<skill>__<tool>`. */
export const ToolCallSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** The arguments as the model wrote them: a JSON text, possibly malformed. */
  arguments: z.string(),
});
export type ToolCall = z.infer<typeof ToolCallSchema>;

/**
 * One part of a user message that is more than text: a text, or an image by URL (`https:`, or a
 * `data:image/…;base64,…` URL carrying the image itself) with OpenAI's optional `detail`.
 */
export const ContentPartSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({
    type: z.literal('image'),
    url: z.string().min(1),
    /** How closely the model looks (OpenAI's `detail`); providers without it ignore it. */
    detail: z.enum(['auto', 'low', 'high']).optional(),
  }),
]);
export type ContentPart = z.infer<typeof ContentPartSchema>;

/** One message of a conversation or of a model request. */
export const ChatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  /** The message's text; with `parts`, its text parts joined. */
  content: z.string(),
  /**
   * On user messages with images: the whole content in order, text and image parts. Absent on a
   * text-only message, which `content` says entirely; readers that want only text read `content`.
   */
  parts: z.array(ContentPartSchema).optional(),
  /** On assistant messages: the tools the model called. */
  toolCalls: z.array(ToolCallSchema).optional(),
  /** On tool messages: the call this result answers. */
  toolCallId: z.string().optional(),
  /**
   * On tool messages: the qualified tool name. On system, user and assistant messages: the
   * participant's name an OpenAI-compatible request gave (sent on to OpenAI-compatible upstreams).
   */
  name: z.string().optional(),
});
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

/** A tool as the model sees it: a qualified name, a description and a JSON Schema. */
export const ToolSpecSchema = z.object({
  name: z.string(),
  description: z.string(),
  parameters: z.record(z.string(), z.unknown()),
});
export type ToolSpec = z.infer<typeof ToolSpecSchema>;

/** Joins a skill and a tool name into the one name the model sees. */
export function qualifiedToolName(skill: string, tool: string): string {
  return `${skill}__${tool}`;
}

/** Splits a qualified tool name; `undefined` when it is not one. */
export function splitToolName(name: string): { skill: string; tool: string } | undefined {
  const at = name.indexOf('__');
  if (at <= 0 || at + 2 >= name.length) return undefined;
  return { skill: name.slice(0, at), tool: name.slice(at + 2) };
}

/** What separates the texts of a turn's model steps in its reply: a blank line. */
export const STEP_SEPARATOR = '\n\n';

/**
 * The reply a turn's messages make: the text of each assistant message, in order — what the
 * model said before it called tools, then its final answer — joined by {@link STEP_SEPARATOR}.
 * It is what a streaming channel showed as the turn went on.
 */
export function replyTextOf(messages: readonly Pick<ChatMessage, 'role' | 'content'>[]): string {
  let text = '';
  for (const message of messages) {
    if (message.role !== 'assistant' || message.content === '') continue;
    text = text === '' ? message.content : `${text}${STEP_SEPARATOR}${message.content}`;
  }
  return text;
}
