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
export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

/** A scripted answer with content: plain text or tool calls. */
export type FakeAnswer =
  /** A plain assistant answer. */
  | {
      type: 'text';
      content: string;
      usage?: FakeUsage;
      finishReason?: string;
      delayMs?: number;
      /** Streams only: a pause before each chunk after the first (a slowly generating model). */
      chunkDelayMs?: number;
    }
  /** An assistant message calling one or more tools. */
  | {
      type: 'toolCalls';
      calls: { id?: string; name: string; arguments: string | Record<string, unknown> }[];
      content?: string;
      usage?: FakeUsage;
      delayMs?: number;
    };

/**
 * One scripted answer of the fake server. Text and tool calls go as JSON, or as an SSE stream
 * of chunks when the request asks for one (`stream: true`); `delayMs` waits before the headers.
 */
export type FakeReply = FakeAnswer | FailureReply;

/** A running fake of the OpenAI chat-completions API. */
export interface FakeOpenAI {
  /** Base URL for the SDK, ending in `/v1`. */
  readonly url: string;
  /** Every request received, oldest first. */
  readonly requests: RecordedRequest[];
  /** Scripts the next replies, answered in order; the default reply when the queue is empty. */
  enqueue(...replies: FakeReply[]): void;
  /** The reply given when the queue is empty (initially a short text answer). */
  setDefault(reply: FakeReply): void;
  /** Forgets scripted replies and recorded requests, and restores the initial default reply. */
  reset(): void;
  /** Stops the server, dropping hung connections. */
  close(): Promise<void>;
}

const INITIAL_DEFAULT: FakeReply = { type: 'text', content: 'Hello from the fake OpenAI server.' };

function toolCallsOf(reply: FakeAnswer, n: number) {
  if (reply.type !== 'toolCalls') return undefined;
  return reply.calls.map((call, i) => ({
    id: call.id ?? `call_fake_${n}_${i}`,
    type: 'function' as const,
    function: {
      name: call.name,
      arguments: typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments),
    },
  }));
}

function usageOf(reply: FakeAnswer, raw: string, output: unknown): FakeUsage {
  return (
    reply.usage ?? {
      prompt_tokens: Math.ceil(raw.length / 4),
      completion_tokens: Math.ceil(JSON.stringify(output).length / 4),
    }
  );
}

function modelOf(body: unknown): string {
  const model = typeof body === 'object' && body !== null ? (body as { model?: unknown }).model : undefined;
  return typeof model === 'string' ? model : 'fake-model';
}

function finishOf(reply: FakeAnswer): string {
  return reply.type === 'toolCalls' ? 'tool_calls' : (reply.finishReason ?? 'stop');
}

function completion(reply: FakeAnswer, model: string, n: number, raw: string) {
  const toolCalls = toolCallsOf(reply, n);
  const content = reply.type === 'text' ? reply.content : (reply.content ?? null);
  const usage = usageOf(reply, raw, toolCalls ?? content);
  return {
    id: `chatcmpl-fake-${n}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content,
          refusal: null,
          ...(toolCalls ? { tool_calls: toolCalls } : {}),
        },
        logprobs: null,
        finish_reason: finishOf(reply),
      },
    ],
    usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
  };
}

/** The chunks of a streamed answer, in OpenAI's `chat.completion.chunk` shape, without usage. */
function chunksOf(reply: FakeAnswer, model: string, n: number): unknown[] {
  const base = { id: `chatcmpl-fake-${n}`, object: 'chat.completion.chunk', created: 0, model };
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
    ...base,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
  const chunks: unknown[] = [chunk({ role: 'assistant', content: '' })];
  const content = reply.type === 'text' ? reply.content : (reply.content ?? '');
  for (const piece of words(content)) chunks.push(chunk({ content: piece }));
  for (const [index, call] of (toolCallsOf(reply, n) ?? []).entries()) {
    chunks.push(
      chunk({
        tool_calls: [
          { index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } },
        ],
      }),
    );
    // Arguments arrive in two pieces, as real servers split them.
    const args = call.function.arguments;
    const half = Math.ceil(args.length / 2);
    for (const part of [args.slice(0, half), args.slice(half)]) {
      if (part) chunks.push(chunk({ tool_calls: [{ index, function: { arguments: part } }] }));
    }
  }
  chunks.push(chunk({}, finishOf(reply)));
  return chunks;
}

async function streamAnswer(
  res: ServerResponse,
  reply: FakeAnswer,
  body: unknown,
  n: number,
  raw: string,
): Promise<void> {
  const model = modelOf(body);
  const gap = reply.type === 'text' ? (reply.chunkDelayMs ?? 0) : 0;
  startSse(res);
  let first = true;
  for (const chunk of chunksOf(reply, model, n)) {
    if (gap && !first) {
      await pause(gap);
      if (res.destroyed) return;
    }
    first = false;
    writeSse(res, chunk);
  }
  if (gap) {
    await pause(gap);
    if (res.destroyed) return;
  }
  const options = (body as { stream_options?: { include_usage?: boolean } }).stream_options;
  if (options?.include_usage) {
    const usage = usageOf(reply, raw, toolCallsOf(reply, n) ?? (reply.type === 'text' ? reply.content : ''));
    writeSse(res, {
      id: `chatcmpl-fake-${n}`,
      object: 'chat.completion.chunk',
      created: 0,
      model,
      choices: [],
      usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
    });
  }
  writeSse(res, '[DONE]');
  res.end();
}

/**
 * Starts a loopback server speaking the OpenAI chat-completions wire format
 * (`POST /v1/chat/completions`, JSON or SSE), so the real SDK runs unchanged in tests. Each
 * request takes the next scripted reply, which may be a failure: a status (500, 429 with
 * `retry-after`), a hang before the first byte, malformed JSON, a stream cut in the middle.
 *
 * @example
 * const fake = await startFakeOpenAI();
 * fake.enqueue({ type: 'status', status: 429, headers: { 'retry-after': '2' } });
 * const provider = createOpenAIProvider({ apiKey: 'test', baseURL: fake.url });
 */
export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const queue: FakeReply[] = [];
  let fallback: FakeReply = INITIAL_DEFAULT;

  const upstream = await startUpstream(async (request, raw, res) => {
    if (request.method !== 'POST' || request.path !== '/v1/chat/completions') {
      sendJson(res, 404, {
        error: { message: `no route ${request.method} ${request.path}`, type: 'invalid_request_error' },
      });
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
          reply.body ?? { error: { message: `fake error ${reply.status}`, type: 'fake_error', code: null } },
          reply.headers,
        );
        return;
      case 'malformed':
        if (!streaming) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"id": "chatcmpl-broken", "choices": [');
          return;
        }
        startSse(res);
        writeSse(res, chunksOf({ type: 'text', content: 'Hello' }, model, n)[1]);
        writeSse(res, '{"id": "chatcmpl-broken", "choices": [{"delta": {"content": "wor');
        res.end();
        return;
      case 'cut':
      case 'stall': {
        const chunks = chunksOf({ type: 'text', content: reply.content ?? '' }, model, n);
        if (!streaming) {
          if (reply.type === 'stall') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.flushHeaders();
            upstream.hold(res);
            return;
          }
          const text = JSON.stringify(completion({ type: 'text', content: reply.content }, model, n, raw));
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write(text.slice(0, Math.floor(text.length / 2)));
          cutOff(res, reply.destroy);
          return;
        }
        // Chunk 0 is the role chunk; `after` counts content chunks.
        const total = chunks.length - 2;
        const after = reply.after ?? (reply.type === 'cut' ? Math.ceil(total / 2) : 0);
        startSse(res);
        for (const chunk of chunks.slice(0, 1 + Math.min(after, total))) writeSse(res, chunk);
        if (reply.type === 'stall') upstream.hold(res);
        else cutOff(res, reply.destroy);
        return;
      }
      default:
        if (reply.delayMs) await pause(reply.delayMs);
        if (res.destroyed) return;
        if (streaming) await streamAnswer(res, reply, request.body, n, raw);
        else sendJson(res, 200, completion(reply, model, n, raw));
    }
  });

  return {
    url: `http://127.0.0.1:${upstream.port}/v1`,
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
