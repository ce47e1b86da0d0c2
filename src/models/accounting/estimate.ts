import type { Usage } from '../../core/contracts/models.ts';
import type { ChatMessage, ToolSpec } from '../../core/messages.ts';

/**
 * Characters per token of the estimate: about 4 for English text and code with OpenAI's and
 * Anthropic's tokenizers (fewer characters per token in most other languages, so it errs low).
 */
const CHARS_PER_TOKEN = 4;

/** Tokens each message adds around its content (role and separators), as OpenAI counts them. */
const TOKENS_PER_MESSAGE = 4;

/**
 * Tokens an image adds to the prompt: OpenAI charges 765 for a 1024×1024 image at high detail
 * (85 at low), Anthropic about as much (width × height / 750); its data URL's length says nothing.
 */
const TOKENS_PER_IMAGE = 765;
const TOKENS_PER_LOW_DETAIL_IMAGE = 85;

/**
 * The usage of a call the provider never reported, estimated from what the gateway saw: the
 * prompt (messages, tool calls, images and tool definitions) and `outputChars` characters of text the
 * upstream streamed before the call ended. For accounting a stream cut short (the caller left,
 * the deadline passed, the upstream broke off) — not exact, and marked as estimated wherever it
 * is reported.
 *
 * @example
 * estimateUsage({ messages: [{ role: 'user', content: 'hello there' }] }, 40); // { inputTokens: 7, outputTokens: 10 }
 */
export function estimateUsage(
  request: { messages: readonly ChatMessage[]; tools?: readonly ToolSpec[] | undefined },
  outputChars: number,
): Usage {
  let chars = 0;
  let images = 0;
  for (const message of request.messages) {
    chars += message.content.length;
    if (message.parts) {
      for (const part of message.parts) {
        if (part.type === 'image')
          images += part.detail === 'low' ? TOKENS_PER_LOW_DETAIL_IMAGE : TOKENS_PER_IMAGE;
      }
    }
    if (message.toolCalls) {
      for (const call of message.toolCalls) chars += call.name.length + call.arguments.length;
    }
  }
  if (request.tools && request.tools.length > 0) chars += JSON.stringify(request.tools).length;
  return {
    inputTokens: Math.ceil(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * request.messages.length + images,
    outputTokens: Math.ceil(outputChars / CHARS_PER_TOKEN),
  };
}
