import { z } from 'zod';
import { MAX_MODEL_NAME, type ModelRequest } from '../../core/contracts/models.ts';
import { ClawmeshError } from '../../core/errors.ts';
import type { ChatMessage, ContentPart, ToolCall, ToolSpec } from '../../core/messages.ts';

// Parts are read loosely here and checked one by one (WirePart) where the request is mapped: a
// union of a string and an array of parts would name only `content` for any fault inside a part.
const Content = z.union([z.string(), z.array(z.looseObject({ type: z.string() }))]).nullish();

/** An image's URL as OpenAI takes it: `http(s)://…`, or the image itself as a base64 data URL. */
const IMAGE_URL = /^(?:https?:\/\/\S|data:image\/[\w.+-]+;base64,)/i;

/** A content part, as OpenAI documents them; which role may send which is checked by role. */
const WirePart = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text'), text: z.string() }),
  z.looseObject({
    type: z.literal('image_url'),
    image_url: z.looseObject({
      url: z.string().regex(IMAGE_URL, 'an image URL is http(s)://… or data:image/<type>;base64,<data>'),
      detail: z.enum(['auto', 'low', 'high']).nullish(),
    }),
  }),
  z.looseObject({ type: z.literal('refusal'), refusal: z.string() }),
  z.looseObject({ type: z.literal('input_audio') }),
  z.looseObject({ type: z.literal('file') }),
]);
type WirePart = z.infer<typeof WirePart>;

const WireToolCall = z.looseObject({
  id: z.string(),
  type: z.literal('function').nullish(),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string().nullish() }),
});

// Optional fields take null as well as absence, as OpenAI's API does: the Python client's
// model_dump(), LiteLLM and many proxies write an absent field as null (an assistant message
// echoed back with `tool_calls: null`).
const WireMessage = z.discriminatedUnion('role', [
  z.looseObject({ role: z.literal('system'), content: Content, name: z.string().nullish() }),
  z.looseObject({ role: z.literal('developer'), content: Content, name: z.string().nullish() }),
  z.looseObject({ role: z.literal('user'), content: Content, name: z.string().nullish() }),
  z.looseObject({
    role: z.literal('assistant'),
    content: Content,
    name: z.string().nullish(),
    tool_calls: z.array(WireToolCall).nullish(),
  }),
  z.looseObject({ role: z.literal('tool'), content: Content, tool_call_id: z.string().min(1) }),
]);

/** The deepest JSON Schema of a tool's parameters accepted: far beyond any real one. */
const MAX_SCHEMA_DEPTH = 64;

/** Whether `value` nests at most `levels` objects or arrays deep (it is walked only that far). */
function nestsWithin(value: unknown, levels: number): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (levels === 0) return false;
  for (const child of Object.values(value)) if (!nestsWithin(child, levels - 1)) return false;
  return true;
}

const WireTool = z.looseObject({
  type: z.literal('function'),
  function: z.looseObject({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a function name is 1-64 letters, digits, _ or -'),
    description: z.string().nullish(),
    // Hashed (cache key) and serialized (upstream) recursively: a schema thousands of levels
    // deep would exhaust the stack there and answer 500.
    parameters: z
      .record(z.string(), z.unknown())
      .refine((schema) => nestsWithin(schema, MAX_SCHEMA_DEPTH), {
        message: `nested more than ${MAX_SCHEMA_DEPTH} levels deep`,
      })
      .nullish(),
  }),
});

const ToolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: z.string().min(1) }) }),
]);

const ResponseFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    json_schema: z.looseObject({
      name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a schema name is 1-64 letters, digits, _ or -'),
      description: z.string().nullish(),
      schema: z
        .record(z.string(), z.unknown())
        .refine((schema) => nestsWithin(schema, MAX_SCHEMA_DEPTH), {
          message: `nested more than ${MAX_SCHEMA_DEPTH} levels deep`,
        })
        .nullish(),
      strict: z.boolean().nullish(),
    }),
  }),
]);

/**
 * The body of `POST /v1/chat/completions`, as OpenAI documents it. `tool_choice`,
 * `parallel_tool_calls`, `stop` and `response_format` reach the provider (each maps them onto its
 * own API, or refuses what it cannot honour); `top_p`, `seed`, `frequency_penalty` and
 * `presence_penalty`, `reasoning_effort`, `verbosity` and `logit_bias` reach OpenAI-compatible
 * upstreams; `user` counts for the budgets (and reaches the provider when the routes forward it);
 * fields asking for what the gateway cannot give (`store: true`, audio, `functions`, web search)
 * are refused ({@link toModelRequest}); others that change nothing in the answer (`metadata`,
 * `service_tier`, …) are accepted and ignored.
 */
export const ChatCompletionRequestSchema = z.looseObject({
  model: z.string().min(1).max(MAX_MODEL_NAME),
  messages: z.array(WireMessage).min(1),
  tools: z.array(WireTool).nullish(),
  tool_choice: ToolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4, { message: 'at most 4 stop sequences' })]).nullish(),
  response_format: ResponseFormat.nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  seed: z.number().int().nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  n: z
    .literal(1, { message: 'only n = 1 is supported: this gateway answers one choice a request' })
    .nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  user: z.string().max(256).nullish(),
  safety_identifier: z.string().max(256).nullish(),
  // Asked for, the log probabilities would be answered as null: refused instead (see toModelRequest).
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  reasoning_effort: z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max']).nullish(),
  verbosity: z.enum(['low', 'medium', 'high']).nullish(),
  // Token ids of the upstream's tokenizer, as OpenAI takes them: -100 bans a token, 100 forces it.
  logit_bias: z.record(z.string().regex(/^\d+$/), z.number().min(-100).max(100)).nullish(),
  // Tags for stored completions, as OpenAI checks them; this gateway stores none, so they go nowhere.
  metadata: z
    .record(z.string().max(64), z.string().max(512))
    .refine((tags) => Object.keys(tags).length <= 16, { message: 'at most 16 metadata pairs' })
    .nullish(),
  store: z.boolean().nullish(),
  modalities: z.array(z.enum(['text', 'audio'])).nullish(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;

type WireRole = z.infer<typeof WireMessage>['role'];

/** The part types each role may send (OpenAI's own rules): images only from the user. */
const PARTS_OF: Record<WireRole, ReadonlySet<string>> = {
  system: new Set(['text']),
  developer: new Set(['text']),
  user: new Set(['text', 'image_url']),
  assistant: new Set(['text', 'refusal']),
  tool: new Set(['text']),
};

/** A content part checked against {@link WirePart} and its role, or `INVALID_ARGUMENT` naming where. */
function partOf(part: unknown, at: string, role: WireRole): WirePart {
  const parsed = WirePart.safeParse(part);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const param = [at, ...issue.path.map(String)].join('.');
    throw new ClawmeshError('INVALID_ARGUMENT', `${param}: ${issue.message}`, { details: { param } });
  }
  const { type } = parsed.data;
  if (PARTS_OF[role].has(type)) return parsed.data;
  const why =
    type === 'input_audio' || type === 'file'
      ? `${type} parts are not supported by this gateway`
      : `a ${role} message takes no ${type} parts (only ${[...PARTS_OF[role]].join(' and ')})`;
  throw new ClawmeshError('INVALID_ARGUMENT', `${at}: ${why}`, { details: { param: `${at}.type` } });
}

/**
 * A message's content as the gateway's: its text (a string, or its text parts joined, with the
 * `refusal` parts of an assistant's), and, for a user message with images, every part in order.
 * Parts are checked by shape and by role, a fault naming its path (`messages.0.content.1.image_url.url`).
 */
function contentOf(
  content: z.infer<typeof Content>,
  where: string,
  role: WireRole,
): { text: string; parts?: ContentPart[] } {
  if (content === null || content === undefined) return { text: '' };
  if (typeof content === 'string') return { text: content };
  let text = '';
  // Parts keep the wire's order and indexes: a provider's refusal names `content.M` by them.
  const parts: ContentPart[] = [];
  let images = false;
  for (let index = 0; index < content.length; index++) {
    const part = partOf(content[index], `${where}.content.${index}`, role);
    if (part.type === 'image_url') {
      const image: ContentPart = { type: 'image', url: part.image_url.url };
      if (part.image_url.detail) image.detail = part.image_url.detail;
      parts.push(image);
      images = true;
      continue;
    }
    const value = part.type === 'text' ? part.text : part.type === 'refusal' ? part.refusal : '';
    text += value;
    parts.push({ type: 'text', text: value });
  }
  return images ? { text, parts } : { text };
}

/** The text of a message's content (see {@link contentOf}); roles without images only. */
function text(content: z.infer<typeof Content>, where: string, role: WireRole): string {
  return contentOf(content, where, role).text;
}

/**
 * Fields of OpenAI's request that ask for what this gateway cannot give, each with why: set, they
 * are refused with a 400 naming them rather than answered as if they had been honoured.
 */
const UNSUPPORTED: readonly [field: string, asks: (body: ChatCompletionRequest) => boolean, why: string][] = [
  [
    'store',
    (body) => body.store === true,
    'store: true is not supported: this gateway does not store completions (leave it out, or send false)',
  ],
  [
    'modalities',
    (body) => body.modalities?.includes('audio') === true,
    'audio output is not supported: this gateway answers in text only (modalities: ["text"])',
  ],
  ['audio', (body) => given(body.audio), 'audio output is not supported: this gateway answers in text only'],
  [
    'functions',
    (body) => given(body.functions),
    'functions (deprecated by OpenAI) is not supported: send tools instead',
  ],
  [
    'function_call',
    (body) => given(body.function_call),
    'function_call (deprecated by OpenAI) is not supported: send tool_choice instead',
  ],
  [
    'web_search_options',
    (body) => given(body.web_search_options),
    'web search is not supported by this gateway',
  ],
  ['moderation', (body) => given(body.moderation), 'moderation is not supported by this gateway'],
];

/** Whether an optional field is given: null, like absence, is not. */
function given(value: unknown): boolean {
  return value !== null && value !== undefined;
}

/** Refuses the first {@link UNSUPPORTED} field the request sets. */
function refuseUnsupported(body: ChatCompletionRequest): void {
  for (const [field, asks, why] of UNSUPPORTED) {
    if (asks(body)) throw new ClawmeshError('INVALID_ARGUMENT', why, { details: { param: field } });
  }
}

/** An OpenAI chat-completions request as the gateway's own. */
export function toModelRequest(body: ChatCompletionRequest): ModelRequest {
  refuseUnsupported(body);
  if (body.logprobs === true || (body.top_logprobs ?? 0) > 0) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      'logprobs is not supported: this gateway answers without log probabilities',
      { details: { param: body.logprobs === true ? 'logprobs' : 'top_logprobs' } },
    );
  }
  // As OpenAI refuses it: a client that sets stream_options without stream expects a stream.
  if (body.stream_options !== null && body.stream_options !== undefined && body.stream !== true) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      "the 'stream_options' parameter is only allowed when 'stream' is enabled",
      { details: { param: 'stream_options' } },
    );
  }
  // Tool results answer calls of an earlier assistant message, as OpenAI checks: one that answers
  // none would reach each provider differently (refused by some, read as plain text by others).
  const calls = new Set<string>();
  // The calls of the latest assistant message still waiting for their results, as OpenAI checks
  // too: each must be answered before the conversation goes on.
  let waiting: { where: string; ids: Set<string> } | undefined;
  const answered = () => {
    if (!waiting || waiting.ids.size === 0) return;
    const ids = [...waiting.ids].map((id) => `"${id}"`).join(', ');
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `${waiting.where}: an assistant message with tool_calls must be followed by tool messages answering each tool_call_id (none for ${ids})`,
      { details: { param: `${waiting.where}.tool_calls` } },
    );
  };
  const messages: ChatMessage[] = body.messages.map((message, index): ChatMessage => {
    const where = `messages.${index}`;
    if (message.role !== 'tool') answered();
    switch (message.role) {
      case 'system':
      case 'developer':
        return named({ role: 'system', content: text(message.content, where, message.role) }, message.name);
      case 'user': {
        const { text: content, parts } = contentOf(message.content, where, 'user');
        const user: ChatMessage = named({ role: 'user', content }, message.name);
        if (parts) user.parts = parts;
        return user;
      }
      case 'assistant': {
        if (given(message.function_call)) {
          throw new ClawmeshError(
            'INVALID_ARGUMENT',
            `${where}: function_call (deprecated by OpenAI) is not supported: send tool_calls instead`,
            { details: { param: `${where}.function_call` } },
          );
        }
        waiting = { where, ids: new Set() };
        const toolCalls: ToolCall[] = (message.tool_calls ?? []).map((call) => {
          calls.add(call.id);
          waiting?.ids.add(call.id);
          return { id: call.id, name: call.function.name, arguments: call.function.arguments ?? '{}' };
        });
        const assistant: ChatMessage = named(
          { role: 'assistant', content: text(message.content, where, 'assistant') },
          message.name,
        );
        if (toolCalls.length) assistant.toolCalls = toolCalls;
        return assistant;
      }
      default:
        if (!calls.has(message.tool_call_id)) {
          throw new ClawmeshError(
            'INVALID_ARGUMENT',
            `${where}: a tool message must answer a tool call of an earlier assistant message (no call "${message.tool_call_id}")`,
            { details: { param: `${where}.tool_call_id` } },
          );
        }
        waiting?.ids.delete(message.tool_call_id);
        return {
          role: 'tool',
          content: text(message.content, where, 'tool'),
          toolCallId: message.tool_call_id,
        };
    }
  });
  answered();
  const tools: ToolSpec[] = (body.tools ?? []).map((tool) => ({
    name: tool.function.name,
    description: tool.function.description ?? '',
    parameters: tool.function.parameters ?? { type: 'object', properties: {} },
  }));
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  // Built by assignment: conditional spreads cost a slow object clone on every request.
  const request: ModelRequest = { model: body.model, messages };
  if (tools.length) {
    request.tools = tools;
    const choice = toolChoiceOf(body.tool_choice, tools);
    if (choice !== undefined) request.toolChoice = choice;
    if (typeof body.parallel_tool_calls === 'boolean') request.parallelToolCalls = body.parallel_tool_calls;
  } else if (body.tool_choice === 'required' || (typeof body.tool_choice === 'object' && body.tool_choice)) {
    // As OpenAI answers: a call that must call a tool needs tools to call.
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      'tool_choice asks for a tool call, but the request has no tools',
      {
        details: { param: 'tool_choice' },
      },
    );
  }
  if (body.temperature !== null && body.temperature !== undefined) request.temperature = body.temperature;
  if (maxTokens !== null && maxTokens !== undefined) request.maxTokens = maxTokens;
  if (body.top_p !== null && body.top_p !== undefined) request.topP = body.top_p;
  if (body.seed !== null && body.seed !== undefined) request.seed = body.seed;
  if (body.frequency_penalty !== null && body.frequency_penalty !== undefined)
    request.frequencyPenalty = body.frequency_penalty;
  if (body.presence_penalty !== null && body.presence_penalty !== undefined)
    request.presencePenalty = body.presence_penalty;
  if (given(body.reasoning_effort)) request.reasoningEffort = body.reasoning_effort!;
  if (given(body.verbosity)) request.verbosity = body.verbosity!;
  if (body.logit_bias && Object.keys(body.logit_bias).length > 0) request.logitBias = body.logit_bias;
  const stop = stopOf(body.stop);
  if (stop) request.stop = stop;
  const format = body.response_format;
  if (format?.type === 'json_object') request.responseFormat = { type: 'json_object' };
  else if (format?.type === 'json_schema') {
    const spec = format.json_schema;
    const schema: NonNullable<ModelRequest['responseFormat']> = { type: 'json_schema', name: spec.name };
    if (spec.description) schema.description = spec.description;
    if (spec.schema) schema.schema = spec.schema;
    if (typeof spec.strict === 'boolean') schema.strict = spec.strict;
    request.responseFormat = schema;
  }
  return request;
}

/** `tool_choice` as the gateway's own; a named tool must be one of the request's tools. */
function toolChoiceOf(
  choice: ChatCompletionRequest['tool_choice'],
  tools: readonly ToolSpec[],
): ModelRequest['toolChoice'] {
  if (choice === null || choice === undefined || choice === 'auto') return undefined;
  if (choice === 'required') return 'required';
  if (choice === 'none') return 'none';
  const name = choice.function.name;
  if (!tools.some((tool) => tool.name === name)) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `tool_choice names the function "${name}", which is not in tools`,
      {
        details: { param: 'tool_choice' },
      },
    );
  }
  return { name };
}

/** `stop` as a list of non-empty sequences; none when it names none. */
function stopOf(stop: ChatCompletionRequest['stop']): string[] | undefined {
  if (stop === null || stop === undefined) return undefined;
  const list = (typeof stop === 'string' ? [stop] : stop).filter((sequence) => sequence.length > 0);
  return list.length > 0 ? list : undefined;
}

/**
 * A system, user or assistant message with the participant's `name` the request gave it, when it
 * gave one: OpenAI-compatible upstreams get it back; Anthropic and `local` have no such field.
 */
function named(message: ChatMessage, name: string | null | undefined): ChatMessage {
  if (name) message.name = name;
  return message;
}
