import type { ChatMessage, ToolSpec } from '../../../core/messages.ts';

const MAX_VALUE_CHARS = 200;
const MAX_ECHO_CHARS = 120;
const WHITESPACE = /\s+/g;
const GREETING = /^\s*(?:hello|hi|hey|hiya|howdy|good (?:morning|afternoon|evening))\b/i;

/** How to leave the local model behind, said in every fallback answer. */
export const CONFIGURE_HINT =
  'set OPENAI_API_KEY (optionally OPENAI_BASE_URL and OPENAI_MODEL) or configure models in clawmesh.config.yaml';

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPrimitive(value: unknown): value is string | number | boolean | null {
  return value === null || (typeof value !== 'object' && typeof value !== 'function');
}

/** A value on one line: primitives as they are, lists of primitives comma-joined, the rest as compact JSON. */
function renderValue(value: unknown): string {
  if (typeof value === 'string') return clip(value, MAX_VALUE_CHARS);
  if (isPrimitive(value)) return String(value);
  if (Array.isArray(value) && value.every(isPrimitive)) {
    return value.length === 0 ? 'none' : clip(value.map(String).join(', '), MAX_VALUE_CHARS);
  }
  return clip(JSON.stringify(value) ?? String(value), MAX_VALUE_CHARS);
}

function renderError(error: unknown): string {
  if (typeof error === 'string') return error;
  if (isRecord(error) && typeof error.message === 'string') return error.message;
  return renderValue(error);
}

/** One tool result as a readable line: its summary or message, else `key: value` pairs. */
function renderResult(label: string, content: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(content);
  } catch {
    return `${label}: ${clip(content.trim() || '(no output)', MAX_VALUE_CHARS * 2)}`;
  }
  if (isRecord(parsed)) {
    if (parsed.error !== undefined && parsed.error !== null && parsed.error !== false) {
      return `The tool ${label} failed: ${renderError(parsed.error)}`;
    }
    if (typeof parsed.summary === 'string') return parsed.summary;
    if (typeof parsed.message === 'string') return parsed.message;
    const pairs = Object.entries(parsed).map(([key, value]) => `${key}: ${renderValue(value)}`);
    return `${label}: ${pairs.length > 0 ? pairs.join(', ') : '(empty result)'}`;
  }
  return `${label}: ${renderValue(parsed)}`;
}

/** The tool part of a qualified name (`inventory__lookupStock` → `lookupStock`). */
function labelOf(name: string | undefined): string {
  if (!name) return 'tool';
  const at = name.indexOf('__');
  return at > 0 ? name.slice(at + 2) : name;
}

/** Summarizes the tool results that came back after the last assistant message that called tools. */
export function summarizeToolResults(messages: readonly ChatMessage[]): string {
  let from = 0;
  const names = new Map<string, string>();
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i]!;
    if (message.role === 'assistant' && message.toolCalls && message.toolCalls.length > 0) {
      from = i + 1;
      for (const call of message.toolCalls) names.set(call.id, call.name);
      break;
    }
  }
  const lines: string[] = [];
  for (let i = from; i < messages.length; i++) {
    const message = messages[i]!;
    if (message.role !== 'tool') continue;
    const name = message.name ?? (message.toolCallId ? names.get(message.toolCallId) : undefined);
    lines.push(renderResult(labelOf(name), message.content));
  }
  if (lines.length === 0) return 'The tools returned nothing.';
  return lines.length === 1 ? lines[0]! : lines.map((line) => `- ${line}`).join('\n');
}

/** The answer when no tool matches: a greeting back, or what the local model is and how to replace it. */
export function fallbackAnswer(text: string, tools: readonly ToolSpec[]): string {
  const trimmed = text.trim();
  const can =
    tools.length > 0 ? ` I can use these tools: ${tools.map((t) => labelOf(t.name)).join(', ')}.` : '';
  if (GREETING.test(trimmed)) {
    return `Hello! I am Clawmesh's built-in local model.${can} How can I help?`;
  }
  const heard = trimmed
    ? `I understood: "${clip(trimmed.replace(WHITESPACE, ' '), MAX_ECHO_CHARS)}", `
    : 'I got no question, ';
  return (
    `I am Clawmesh's built-in local model, which answers by simple rules. ${heard}` +
    `but no tool matched it.${can} For real answers, ${CONFIGURE_HINT}.`
  );
}
