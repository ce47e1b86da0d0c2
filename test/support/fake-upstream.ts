import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request a fake upstream received. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body (the raw text when it was not JSON). */
  body: unknown;
}

/**
 * Failure modes every fake upstream can be told to play for one request, on JSON and on streamed
 * requests alike.
 */
export type FailureReply =
  /** An HTTP status with the provider's error body (or `body`) and extra headers such as `retry-after`. */
  | { type: 'status'; status: number; headers?: Record<string, string>; body?: unknown }
  /** Never answer, not even the headers, until the client gives up or the server closes. */
  | { type: 'hang' }
  /** Status 200 and a body that is not JSON (streams: one good event, then a broken one). */
  | { type: 'malformed' }
  /**
   * A stream cut in the middle: the first `after` chunks of `content` (default half), then the
   * connection ends — cleanly, or torn down when `destroy`. On a JSON request: half a body.
   */
  | { type: 'cut'; content: string; after?: number; destroy?: boolean }
  /** Headers and the first `after` chunks of `content` (default none), then silence. */
  | { type: 'stall'; content?: string; after?: number };

/** A running loopback server with a request log. */
export interface Upstream {
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Keeps a response open (a hang or a stall) until the client leaves or the server closes. */
  hold(res: ServerResponse): void;
  close(): Promise<void>;
}

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

/** Starts a loopback HTTP server that records each request, then hands it to `handle`. */
export async function startUpstream(
  handle: (request: RecordedRequest, raw: string, res: ServerResponse) => void | Promise<void>,
): Promise<Upstream> {
  const requests: RecordedRequest[] = [];
  const held = new Set<ServerResponse>();
  const server = createServer(async (req, res) => {
    const raw = await readBody(req);
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body: parse(raw),
    };
    requests.push(recorded);
    await handle(recorded, raw, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    requests,
    hold(res) {
      held.add(res);
      res.on('close', () => held.delete(res));
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const res of held) res.destroy();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** Writes a JSON response. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Starts an SSE response. */
export function startSse(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  res.flushHeaders();
}

/** Writes one server-sent event (`data` as JSON unless it is already text). */
export function writeSse(res: ServerResponse, data: unknown, event?: string): void {
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  res.write(`${event ? `event: ${event}\n` : ''}data: ${text}\n\n`);
}

/** Splits a text into word chunks (each word with its trailing space); joined they are the text. */
export function words(text: string): string[] {
  const chunks = text.match(/\s*\S+\s*/g) ?? [];
  return chunks.length > 0 ? chunks : text ? [text] : [];
}

/** Resolves after `ms` milliseconds. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether a request body asked for a stream. */
export function wantsStream(body: unknown): boolean {
  return typeof body === 'object' && body !== null && (body as { stream?: unknown }).stream === true;
}

/** Ends a cut stream: a clean end, or a torn-down connection. */
export function cutOff(res: ServerResponse, destroy: boolean | undefined): void {
  if (destroy) res.destroy();
  else res.end();
}
