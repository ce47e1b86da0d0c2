import http from 'node:http';
import https from 'node:https';
import type { CallContext } from '../core/context.ts';
import type { Invoke } from '../core/contract.ts';
import { ClawmeshError } from '../core/errors.ts';
import { assertMethodName } from './serving.ts';
import {
  deadlineExceeded,
  deadlinePassed,
  encodeInput,
  errorOfReply,
  payloadTooLarge,
  writeContextHeaders,
} from './wire.ts';

/** Where a service's calls go: one base URL, or several that take calls in turn. */
export type ServiceUrls = string | readonly string[];

/** The base URLs of services, by name, or a function that finds them. */
export type UrlResolver = Record<string, ServiceUrls> | ((service: string) => ServiceUrls | undefined);

/** Options of {@link createHttpCaller}. */
export interface HttpCallerOptions {
  urls: UrlResolver | undefined;
  maxPayloadBytes: number;
  /** Open connections per host and port (default 128). */
  maxSockets?: number | undefined;
}

/** The client half of the http transport: keep-alive connections and one invoke per service. */
export interface HttpCaller {
  invoker(service: string): Invoke;
  close(): void;
}

interface Target {
  readonly module: typeof http | typeof https;
  readonly hostname: string;
  readonly port: number;
  readonly prefix: string;
  readonly label: string;
}

/** Why a failed request may go to the next URL: it never reached a server. */
const undelivered = new WeakMap<ClawmeshError, 'refused' | 'stale'>();
const NOT_DELIVERED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Creates the client half of the http transport. */
export function createHttpCaller(options: HttpCallerOptions): HttpCaller {
  const limit = options.maxPayloadBytes;
  const agentOptions = {
    keepAlive: true,
    maxSockets: options.maxSockets ?? 128,
    scheduling: 'lifo' as const,
  };
  const agent = new http.Agent(agentOptions);
  let secureAgent: https.Agent | undefined;
  const targets = new Map<string, Target>();
  const turns = new Map<string, number>();
  let closed = false;
  const secureAgentOf = () => {
    secureAgent ??= new https.Agent(agentOptions);
    return secureAgent;
  };

  const targetOf = (url: string): Target => {
    let target = targets.get(url);
    if (target) return target;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ClawmeshError('INVALID_ARGUMENT', `"${url}" is not a URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new ClawmeshError('INVALID_ARGUMENT', `"${url}" is not an http or https URL`);
    }
    const secure = parsed.protocol === 'https:';
    target = {
      module: secure ? https : http,
      hostname: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: parsed.port ? Number(parsed.port) : secure ? 443 : 80,
      prefix: parsed.pathname.replace(/\/+$/, ''),
      label: `${parsed.protocol}//${parsed.host}`,
    };
    // A resolver may build URLs on the fly: keep the cache bounded.
    if (targets.size >= 256) targets.clear();
    targets.set(url, target);
    return target;
  };

  const resolve = (service: string): readonly string[] => {
    const found =
      typeof options.urls === 'function'
        ? options.urls(service)
        : options.urls && Object.hasOwn(options.urls, service)
          ? options.urls[service]
          : undefined;
    if (found === undefined) return [];
    return typeof found === 'string' ? [found] : found;
  };

  const send = (
    target: Target,
    path: string,
    headers: Record<string, string | number>,
    body: Uint8Array,
    ctx: CallContext,
    what: string,
  ): Promise<unknown> =>
    new Promise((resolvePromise, reject) => {
      const waitMs = Math.max(1, ctx.deadline - Date.now());
      let done = false;
      let answered = false;
      const finish = (err: ClawmeshError | undefined, value?: unknown) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolvePromise(value);
      };
      const request = target.module.request({
        agent: target.module === http ? agent : secureAgentOf(),
        hostname: target.hostname,
        port: target.port,
        path,
        method: 'POST',
        headers,
      });
      const timer = setTimeout(() => {
        finish(deadlineExceeded(what, waitMs));
        request.destroy();
      }, waitMs);
      request.on('error', (err: NodeJS.ErrnoException) => {
        const error = new ClawmeshError('UNAVAILABLE', `${what}: ${target.label} failed: ${err.message}`, {
          cause: err,
        });
        if (!answered && err.code && NOT_DELIVERED.has(err.code)) undelivered.set(error, 'refused');
        else if (!answered && request.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          undelivered.set(error, 'stale');
        }
        finish(error);
      });
      request.on('response', (response) => {
        answered = true;
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          // Error bodies carry a message and details beside the payload: allow some room.
          if (size > limit + 4096) {
            finish(payloadTooLarge(`${what} reply`, undefined, limit, 'INTERNAL'));
            request.destroy();
          } else chunks.push(chunk);
        });
        response.on('error', (err) => {
          finish(
            new ClawmeshError('UNAVAILABLE', `${what}: ${target.label} failed: ${err.message}`, {
              cause: err,
            }),
          );
        });
        response.on('end', () => {
          const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          try {
            finish(undefined, readReply(response.statusCode ?? 0, data, what, limit));
          } catch (err) {
            finish(ClawmeshError.from(err));
          }
        });
      });
      request.end(body);
    });

  return {
    invoker(service: string): Invoke {
      const paths = new Map<string, string>();
      return async (method, input, ctx) => {
        const what = `${service}.${method}`;
        if (closed) throw new ClawmeshError('UNAVAILABLE', `${what}: the http transport is closed`);
        const urls = resolve(service);
        if (urls.length === 0) {
          const variable = `${service.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_SERVICE_URL`;
          throw new ClawmeshError(
            'UNAVAILABLE',
            `no URL is configured for service "${service}" (set ${variable} or the transport's urls)`,
          );
        }
        const remaining = ctx.deadline - Date.now();
        if (remaining <= 0) throw deadlinePassed(what);
        const body = encodeInput(input, what);
        if (body.length > limit) throw payloadTooLarge(what, body.length, limit);
        let suffix = paths.get(method);
        if (suffix === undefined) {
          assertMethodName(service, method);
          suffix = `/rpc/${service}/${method}`;
          paths.set(method, suffix);
        }
        const headers: Record<string, string | number> = { 'content-length': body.length };
        if (body.length > 0) headers['content-type'] = 'application/json';
        writeContextHeaders(ctx, remaining, (name, value) => {
          headers[name] = value;
        });
        const turn = turns.get(service) ?? 0;
        turns.set(service, (turn + 1) % urls.length);
        let retriedStale = false;
        for (let i = 0; ; ) {
          const target = targetOf(urls[(turn + i) % urls.length]!);
          try {
            return await send(target, `${target.prefix}${suffix}`, headers, body, ctx, what);
          } catch (err) {
            const why = err instanceof ClawmeshError ? undelivered.get(err) : undefined;
            if (why === 'stale' && !retriedStale) retriedStale = true;
            else if (why === 'refused' && i + 1 < urls.length) i += 1;
            else throw err;
            if (Date.now() >= ctx.deadline) throw deadlineExceeded(what, remaining);
          }
        }
      };
    },
    close() {
      closed = true;
      agent.destroy();
      secureAgent?.destroy();
    },
  };
}

/** A reply's body as the method's output, or the typed error it carries. */
function readReply(status: number, data: Buffer, what: string, limit: number): unknown {
  if (status === 200) return data.length === 0 ? undefined : JSON.parse(data.toString('utf8'));
  throw errorOfReply(status, data.toString('utf8'), what, limit, `HTTP ${status}`);
}
