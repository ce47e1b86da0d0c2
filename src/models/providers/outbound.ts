import http from 'node:http';
import https from 'node:https';

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
   * Longest wait for the response headers in milliseconds (default 60 s); the call deadline and a
   * caller's `connectTimeoutMs` may cut it shorter.
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
