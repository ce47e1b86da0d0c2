import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Token counts a scripted reply reports; estimated from the bodies when absent. */
export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

/** One scripted answer of the fake server. */
export type FakeReply =
  /** A plain assistant answer. */
  | { type: 'text'; content: string; usage?: FakeUsage; finishReason?: string }
  /** An assistant message calling one or more tools. */
  | {
      type: 'toolCalls';
      calls: { id?: string; name: string; arguments: string | Record<string, unknown> }[];
      content?: string;
      usage?: FakeUsage;
    }
  /** An HTTP status with an OpenAI-style error body (or `body`) and extra headers such as `retry-after`. */
  | { type: 'status'; status: number; headers?: Record<string, string>; body?: unknown }
  /** Never answer; the connection stays open until the client gives up or the server closes. */
  | { type: 'hang' }
  /** Status 200, `application/json`, and a body that is not JSON. */
  | { type: 'malformed' };

/** A request the fake server received. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body (the raw text when it was not JSON). */
  body: unknown;
}

/** A running fake of the OpenAI chat-completions API. */
export interface FakeOpenAI {
  /** Base URL for the SDK, ending in `/v1`. */
  readonly url: string;
  /** Every request received, oldest first. */
  readonly requests: RecordedRequest[];
  /** Scripts the next replies, answered in order; a short text answer when the queue is empty. */
  enqueue(...replies: FakeReply[]): void;
  /** Stops the server, dropping hung connections. */
  close(): Promise<void>;
}

const DEFAULT_REPLY: FakeReply = { type: 'text', content: 'Hello from the fake OpenAI server.' };

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function completion(
  reply: FakeReply & { type: 'text' | 'toolCalls' },
  model: unknown,
  n: number,
  raw: string,
) {
  const toolCalls =
    reply.type === 'toolCalls'
      ? reply.calls.map((call, i) => ({
          id: call.id ?? `call_fake_${n}_${i}`,
          type: 'function',
          function: {
            name: call.name,
            arguments: typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments),
          },
        }))
      : undefined;
  const content = reply.type === 'text' ? reply.content : (reply.content ?? null);
  const usage = reply.usage ?? {
    prompt_tokens: Math.ceil(raw.length / 4),
    completion_tokens: Math.ceil(JSON.stringify(toolCalls ?? content).length / 4),
  };
  return {
    id: `chatcmpl-fake-${n}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: typeof model === 'string' ? model : 'fake-model',
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
        finish_reason: reply.type === 'toolCalls' ? 'tool_calls' : (reply.finishReason ?? 'stop'),
      },
    ],
    usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
  };
}

/**
 * Starts a loopback server speaking the OpenAI chat-completions wire format
 * (`POST /v1/chat/completions`), so the real SDK runs unchanged in tests.
 *
 * @example
 * const fake = await startFakeOpenAI();
 * fake.enqueue({ type: 'status', status: 429, headers: { 'retry-after': '2' } });
 * const provider = createOpenAIProvider({ apiKey: 'test', baseURL: fake.url });
 */
export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const queue: FakeReply[] = [];
  const requests: RecordedRequest[] = [];
  const hung = new Set<ServerResponse>();

  const server = createServer(async (req, res) => {
    const raw = await readBody(req);
    const body = parse(raw);
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      sendJson(res, 404, {
        error: { message: `no route ${req.method} ${req.url}`, type: 'invalid_request_error' },
      });
      return;
    }
    const reply = queue.shift() ?? DEFAULT_REPLY;
    switch (reply.type) {
      case 'hang':
        hung.add(res);
        res.on('close', () => hung.delete(res));
        return;
      case 'malformed':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"id": "chatcmpl-broken", "choices": [');
        return;
      case 'status':
        sendJson(
          res,
          reply.status,
          reply.body ?? { error: { message: `fake error ${reply.status}`, type: 'fake_error', code: null } },
          reply.headers,
        );
        return;
      default: {
        const model =
          typeof body === 'object' && body !== null ? (body as { model?: unknown }).model : undefined;
        sendJson(res, 200, completion(reply, model, requests.length, raw));
      }
    }
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    enqueue: (...replies) => {
      queue.push(...replies);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const res of hung) res.destroy();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
