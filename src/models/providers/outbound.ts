import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** The `fetch` the provider SDKs accept (`new OpenAI({ fetch })`, `new Anthropic({ fetch })`). */
export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** What the SDKs get for their outbound calls: a `fetch` and the extra init fields it reads. */
export interface OutboundHttp {
  fetch: Fetch;
  /** Merged by the SDK into every request's init (its `fetchOptions`): node-fetch's keep-alive `agent`. */
  fetchOptions: { agent: (url: URL) => http.Agent };
}

/** Options of {@link createOutboundHttp}. */
export interface OutboundHttpOptions {
  /** Sockets per upstream origin (default 256: enough for the gateway's concurrency). */
  maxSockets?: number;
  /** Idle sockets kept per origin (default 64). */
  maxFreeSockets?: number;
  /**
   * Longest wait for a new connection to an upstream, in milliseconds: TCP connect, plus the TLS
   * handshake for `https`. A socket still connecting then is destroyed with a "connect limit"
   * error, which the providers report as `UNAVAILABLE` (retried, then the next deployment). No
   * limit when absent. It covers connecting only, never the wait for an answer.
   */
  connectTimeoutMs?: number;
}

type CreateConnection = (
  options: http.ClientRequestArgs,
  callback?: (err: Error | null, stream: Duplex) => void,
) => Duplex | null | undefined;

/**
 * The error a socket still connecting after `ms` is destroyed with. Its message avoids the words
 * "timeout" and "timed out": the SDKs read an error whose text has them as their own request
 * timeout, which the providers report as the deadline or the answer's limit.
 */
function connectLimitError(ms: number, host: string | null | undefined): Error {
  return Object.assign(
    new Error(`connect limit: no connection to ${host ?? 'the upstream'} within ${ms} ms (connectMs)`),
    { code: 'ECONNLIMIT' },
  );
}

/**
 * Wraps an agent's `createConnection` so that a socket still connecting after `ms` is destroyed
 * with {@link connectLimitError}. `https` sockets count as connected once their TLS handshake
 * is done (`secureConnect`); reused keep-alive sockets are not touched.
 */
function limitConnectTime(agent: http.Agent, ms: number, secure: boolean): void {
  const create = (agent as unknown as { createConnection: CreateConnection }).createConnection.bind(agent);
  const limited: CreateConnection = (options, callback) => {
    const socket = create(options, callback) as Socket | null | undefined;
    if (!socket?.connecting) return socket;
    const timer = setTimeout(() => socket.destroy(connectLimitError(ms, options.host)), ms);
    timer.unref();
    const done = () => clearTimeout(timer);
    socket.once(secure ? 'secureConnect' : 'connect', done);
    socket.once('close', done);
    return socket;
  };
  (agent as unknown as { createConnection: CreateConnection }).createConnection = limited;
}

type NodeFetch = (input: unknown, init?: unknown) => Promise<unknown>;

/**
 * The providers' outbound HTTP: `node-fetch` 2 over `node:http`/`node:https` keep-alive
 * agents, handed to the SDKs through their documented `fetch` and `fetchOptions` options. On
 * Node 20 the global `fetch` (undici) spends several hundred microseconds of CPU per call in its
 * WHATWG layers (Request, Headers, web streams, abort signals); this path costs about half.
 * Resolves to undefined when `node-fetch` cannot be loaded: the SDKs then use the global
 * `fetch`, which works the same.
 *
 * @example
 * const outbound = await createOutboundHttp();
 * const openai = createOpenAIProvider({ apiKey, ...(outbound ? { http: outbound } : {}) });
 */
export async function createOutboundHttp(
  options: OutboundHttpOptions = {},
): Promise<OutboundHttp | undefined> {
  let nodeFetch: NodeFetch;
  try {
    // Loaded by name at run time: node-fetch 2 ships no type declarations.
    const specifier = 'node-fetch';
    const loaded = (await import(specifier)) as { default?: unknown };
    if (typeof loaded.default !== 'function') return undefined;
    nodeFetch = loaded.default as NodeFetch;
  } catch {
    return undefined;
  }
  const agentOptions: http.AgentOptions = {
    keepAlive: true,
    maxSockets: options.maxSockets ?? 256,
    maxFreeSockets: options.maxFreeSockets ?? 64,
    // The most recently used socket first: a warm socket, and idle ones time out and close.
    scheduling: 'lifo',
  };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);
  const connectMs = options.connectTimeoutMs;
  if (connectMs !== undefined) {
    limitConnectTime(httpAgent, connectMs, false);
    limitConnectTime(httpsAgent, connectMs, true);
  }
  // node-fetch's `agent` init field may be a function of the parsed URL.
  const agent = (url: URL) => (url.protocol === 'http:' ? httpAgent : httpsAgent);
  return {
    fetch: nodeFetch as unknown as Fetch,
    fetchOptions: { agent },
  };
}

/**
 * How node-fetch failed while reading a response body (it raises a `FetchError`, where the
 * global fetch raises a `SyntaxError` or a `TypeError`): `invalid-json` for a body that is not
 * JSON, `failed` for any other (a connection cut mid-body); undefined for anything else.
 */
export function outboundBodyFailure(err: unknown): 'invalid-json' | 'failed' | undefined {
  if (!(err instanceof Error) || err.name !== 'FetchError') return undefined;
  return (err as Error & { type?: unknown }).type === 'invalid-json' ? 'invalid-json' : 'failed';
}

/** The options every SDK-backed provider shares: timeout, SDK retries and the outbound client. */
export interface SdkProviderOptions {
  /**
   * Longest wait in milliseconds (default 60 s) for a whole answer, or for a stream's response
   * headers; the call deadline, and for streams a caller's `connectTimeoutMs`, may cut it shorter.
   */
  timeoutMs?: number;
  /** Retries inside the SDK (default 0: retries, fallbacks and breakers live in the gateway). */
  maxRetries?: number;
  /**
   * The outbound HTTP client: the SDK's `fetch` and `fetchOptions` (see `createOutboundHttp`);
   * the global `fetch` when absent.
   */
  http?: OutboundHttp;
}
