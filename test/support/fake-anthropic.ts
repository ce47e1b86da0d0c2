import type { ServerResponse } from 'node:http';
import {
  cutOff,
  type FailureReply,
  pause,
  type RecordedRequest,
  sendJson,
  startSse,
  startUpstream,
  wantsStream,
  words,
  writeSse,
} from './fake-upstream.ts';

export type { RecordedRequest } from './fake-upstream.ts';

/** Token counts a scripted reply reports; estimated from the bodies when absent. */
export interface FakeAnthropicUsage {
  input_tokens: number;
  output_tokens: number;
}

/** A scripted answer with content: text, tool calls, or both. */
export type FakeAnthropicAnswer =
  | { type: 'text'; content: string; usage?: FakeAnthropicUsage; stopReason?: string; delayMs?: number }
  | {
      type: 'toolCalls';
      calls: { id?: string; name: string; input: Record<string, unknown> }[];
      content?: string;
      usage?: FakeAnthropicUsage;
      delayMs?: number;
    };

/**
 * One scripted answer of the fake server: an answer (JSON, or an SSE event stream when the request
 * says `stream: true`), a failure, or an `error` event in the middle of a stream (`streamError`,
 * as Anthropic sends `overloaded_error`).
 */
export type FakeAnthropicReply =
  | FakeAnthropicAnswer
  | FailureReply
  | { type: 'streamError'; errorType: string; content?: string };

/** A running fake of Anthropic's Messages API. */
export interface FakeAnthropic {
  /** Base URL for the SDK (without `/v1`). */
  readonly url: string;
  /** Every request received, oldest first. */
  readonly requests: RecordedRequest[];
  /** Scripts the next replies, answered in order; the default reply when the queue is empty. */
  enqueue(...replies: FakeAnthropicReply[]): void;
  /** The reply given when the queue is empty (initially a short text answer). */
  setDefault(reply: FakeAnthropicReply): void;
  /** Forgets scripted replies and recorded requests, and restores the initial default reply. */
  reset(): void;
  close(): Promise<void>;
}

/** Options of {@link startFakeAnthropic}. */
export interface FakeAnthropicOptions {
  /** When set, requests must carry this key (`x-api-key` or a bearer token), else 401. */
  apiKey?: string;
}

const INITIAL_DEFAULT: FakeAnthropicReply = {
  type: 'text',
  content: 'Hello from the fake Anthropic server.',
};

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

function errorBody(status: number, message: string) {
  return {
    type: 'error',
    error: { type: ERROR_TYPES[status] ?? 'api_error', message },
    request_id: `req_fake_${status}`,
  };
}

function modelOf(body: unknown): string {
  const model = typeof body === 'object' && body !== null ? (body as { model?: unknown }).model : undefined;
  return typeof model === 'string' ? model : 'claude-fake';
}

interface Block {
  type: 'text' | 'tool_use';
  text?: string;
  id?: string;
  name?: string;
  input?: Record<string, unknown>;
}

function blocksOf(reply: FakeAnthropicAnswer, n: number): Block[] {
  const blocks: Block[] = [];
  const text = reply.type === 'text' ? reply.content : reply.content;
  if (text) blocks.push({ type: 'text', text });
  if (reply.type === 'toolCalls') {
    for (const [i, call] of reply.calls.entries()) {
      blocks.push({
        type: 'tool_use',
        id: call.id ?? `toolu_fake_${n}_${i}`,
        name: call.name,
        input: call.input,
      });
    }
  }
  return blocks;
}

function stopReasonOf(reply: FakeAnthropicAnswer): string {
  return reply.type === 'toolCalls' ? 'tool_use' : (reply.stopReason ?? 'end_turn');
}

function usageOf(reply: FakeAnthropicAnswer, raw: string, blocks: Block[]): FakeAnthropicUsage {
  return (
    reply.usage ?? {
      input_tokens: Math.ceil(raw.length / 4),
      output_tokens: Math.ceil(JSON.stringify(blocks).length / 4),
    }
  );
}

function message(reply: FakeAnthropicAnswer, model: string, n: number, raw: string) {
  const blocks = blocksOf(reply, n);
  return {
    id: `msg_fake_${n}`,
    type: 'message',
    role: 'assistant',
    model,
    content: blocks.map((b) => (b.type === 'text' ? { type: 'text', text: b.text } : b)),
    stop_reason: stopReasonOf(reply),
    stop_sequence: null,
    usage: usageOf(reply, raw, blocks),
  };
}

/** The documented event sequence of a streamed message, as [event name, data] pairs. */
function eventsOf(reply: FakeAnthropicAnswer, model: string, n: number, raw: string): [string, unknown][] {
  const blocks = blocksOf(reply, n);
  const usage = usageOf(reply, raw, blocks);
  const events: [string, unknown][] = [
    [
      'message_start',
      {
        type: 'message_start',
        message: {
          id: `msg_fake_${n}`,
          type: 'message',
          role: 'assistant',
          model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: usage.input_tokens, output_tokens: 1 },
        },
      },
    ],
    ['ping', { type: 'ping' }],
  ];
  for (const [index, block] of blocks.entries()) {
    if (block.type === 'text') {
      events.push([
        'content_block_start',
        { type: 'content_block_start', index, content_block: { type: 'text', text: '' } },
      ]);
      for (const piece of words(block.text ?? '')) {
        events.push([
          'content_block_delta',
          { type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } },
        ]);
      }
    } else {
      events.push([
        'content_block_start',
        {
          type: 'content_block_start',
          index,
          content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} },
        },
      ]);
      const json = JSON.stringify(block.input ?? {});
      const half = Math.ceil(json.length / 2);
      for (const part of [json.slice(0, half), json.slice(half)]) {
        if (!part) continue;
        events.push([
          'content_block_delta',
          { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: part } },
        ]);
      }
    }
    events.push(['content_block_stop', { type: 'content_block_stop', index }]);
  }
  events.push([
    'message_delta',
    {
      type: 'message_delta',
      delta: { stop_reason: stopReasonOf(reply), stop_sequence: null },
      usage: { output_tokens: usage.output_tokens },
    },
  ]);
  events.push(['message_stop', { type: 'message_stop' }]);
  return events;
}

function sendEvents(res: ServerResponse, events: [string, unknown][]): void {
  for (const [name, data] of events) writeSse(res, data, name);
}

/** Number of leading events up to and including the `after`-th text delta. */
function prefixWithDeltas(events: [string, unknown][], after: number): number {
  if (after <= 0) return 2;
  let deltas = 0;
  for (let i = 0; i < events.length; i++) {
    if (events[i]?.[0] === 'content_block_delta' && ++deltas === after) return i + 1;
  }
  return events.length - 2;
}

function authorized(headers: RecordedRequest['headers'], key: string): boolean {
  const bearer =
    typeof headers.authorization === 'string' ? headers.authorization.replace(/^Bearer /, '') : undefined;
  return headers['x-api-key'] === key || bearer === key;
}

/**
 * Starts a loopback server speaking Anthropic's Messages API (`POST /v1/messages`): JSON, or the
 * documented SSE event stream (message_start, content_block_start / delta / stop, message_delta
 * with usage, message_stop). Each request takes the next scripted reply, which may be a failure:
 * a status with Anthropic's error body (500, 529, 429 with `retry-after`), a hang before the first
 * byte, malformed JSON, a stream cut in the middle, an `error` event mid-stream.
 *
 * @example
 * const fake = await startFakeAnthropic({ apiKey: 'sk-ant-test' });
 * const provider = createAnthropicProvider({ apiKey: 'sk-ant-test', baseURL: fake.url });
 */
export async function startFakeAnthropic(options: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
  const queue: FakeAnthropicReply[] = [];
  let fallback: FakeAnthropicReply = INITIAL_DEFAULT;

  const upstream = await startUpstream(async (request, raw, res) => {
    if (request.method !== 'POST' || request.path !== '/v1/messages') {
      sendJson(res, 404, errorBody(404, `no route ${request.method} ${request.path}`));
      return;
    }
    if (options.apiKey && !authorized(request.headers, options.apiKey)) {
      sendJson(res, 401, errorBody(401, 'invalid x-api-key'));
      return;
    }
    const messages = (request.body as { messages?: unknown } | undefined)?.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      // As the Messages API answers a request without turns (a system prompt alone).
      sendJson(res, 400, errorBody(400, 'messages: at least one message is required'));
      return;
    }
    if ((messages[0] as { role?: unknown }).role !== 'user') {
      sendJson(res, 400, errorBody(400, 'messages: first message must use the "user" role'));
      return;
    }
    const n = upstream.requests.length;
    const reply = queue.shift() ?? fallback;
    const streaming = wantsStream(request.body);
    const model = modelOf(request.body);
    switch (reply.type) {
      case 'hang':
        upstream.hold(res);
        return;
      case 'status':
        sendJson(
          res,
          reply.status,
          reply.body ?? errorBody(reply.status, `fake error ${reply.status}`),
          reply.headers,
        );
        return;
      case 'malformed':
        if (!streaming) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"id": "msg_broken", "content": [');
          return;
        }
        startSse(res);
        sendEvents(res, eventsOf({ type: 'text', content: 'Hello' }, model, n, raw).slice(0, 4));
        res.write(
          'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"ty\n\n',
        );
        res.end();
        return;
      case 'streamError': {
        startSse(res);
        const events = eventsOf({ type: 'text', content: reply.content ?? '' }, model, n, raw);
        sendEvents(res, events.slice(0, prefixWithDeltas(events, Number.POSITIVE_INFINITY)));
        writeSse(
          res,
          { type: 'error', error: { type: reply.errorType, message: `fake ${reply.errorType}` } },
          'error',
        );
        res.end();
        return;
      }
      case 'cut':
      case 'stall': {
        const answer: FakeAnthropicAnswer = { type: 'text', content: reply.content ?? '' };
        if (!streaming) {
          res.writeHead(200, { 'content-type': 'application/json' });
          if (reply.type === 'stall') {
            res.flushHeaders();
            upstream.hold(res);
            return;
          }
          const text = JSON.stringify(message(answer, model, n, raw));
          res.write(text.slice(0, Math.floor(text.length / 2)));
          cutOff(res, reply.destroy);
          return;
        }
        const events = eventsOf(answer, model, n, raw);
        const total = words(reply.content ?? '').length;
        const after = reply.after ?? (reply.type === 'cut' ? Math.ceil(total / 2) : 0);
        startSse(res);
        sendEvents(res, events.slice(0, prefixWithDeltas(events, Math.min(after, total))));
        if (reply.type === 'stall') upstream.hold(res);
        else cutOff(res, reply.destroy);
        return;
      }
      default:
        if (reply.delayMs) await pause(reply.delayMs);
        if (res.destroyed) return;
        if (!streaming) {
          sendJson(res, 200, message(reply, model, n, raw));
          return;
        }
        startSse(res);
        sendEvents(res, eventsOf(reply, model, n, raw));
        res.end();
    }
  });

  return {
    url: `http://127.0.0.1:${upstream.port}`,
    requests: upstream.requests,
    enqueue: (...replies) => {
      queue.push(...replies);
    },
    setDefault: (reply) => {
      fallback = reply;
    },
    reset: () => {
      queue.length = 0;
      upstream.requests.length = 0;
      fallback = INITIAL_DEFAULT;
    },
    close: () => upstream.close(),
  };
}
