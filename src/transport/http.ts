import Fastify, { type FastifyInstance } from 'fastify';
import type { CallMiddleware, Client, Contract, Handlers } from '../core/contract.ts';
import { clientFromInvoke } from '../core/contract.ts';
import { ClawmeshError } from '../core/errors.ts';
import { lazySchemaCompilers } from '../http/lazy-compilers.ts';
import type { Logger } from '../observability/logger.ts';
import { createHttpCaller, type ServiceUrls, type UrlResolver } from './http-client.ts';
import { type RpcRegistry, rpcRegistryOf } from './http-server.ts';
import { assertWireNames, methodRunners } from './serving.ts';
import type { Registration, Transport } from './types.ts';
import { DEFAULT_MAX_PAYLOAD_BYTES } from './wire.ts';

export type { ServiceUrls, UrlResolver } from './http-client.ts';

/** Options of {@link createHttpTransport}. */
export interface HttpTransportOptions {
  /**
   * Where each service runs, for calls: `{ conversation: 'http://conversation:3000' }`, several
   * URLs per service (they take calls in turn; a refused connection moves on to the next), or a
   * function of the service name. A service without a URL answers `UNAVAILABLE` at once.
   */
  urls?: UrlResolver;
  /**
   * Serve on this Fastify instance (the process's server with `/healthz`): the transport adds
   * `POST /rpc/:service/:method` to it, so create the transport before the server listens.
   */
  app?: FastifyInstance;
  /**
   * Serve on a listener of the transport's own, started by the first `serve` (port 0: any free
   * port; host default 127.0.0.1). Ignored when `app` is given.
   */
  listen?: { port?: number; host?: string };
  /** The largest request or reply body in bytes (default 1 MiB); larger is `INVALID_ARGUMENT`. */
  maxPayloadBytes?: number;
  /** Keep-alive connections per host and port for calls (default 128). */
  maxSockets?: number;
  /** Where handler crashes are logged. */
  logger?: Logger;
}

/** The http transport: a {@link Transport} that may also listen on its own. */
export interface HttpTransport extends Transport {
  readonly kind: 'http';
  /** The base URL of the transport's own listener once it listens (`http://127.0.0.1:41234`). */
  address(): string | undefined;
}

/**
 * The http transport: calls are `POST /rpc/<service>/<method>` with the input as a JSON body;
 * the call context travels in headers (`traceparent`, `x-request-id`, the milliseconds left as
 * `clawmesh-deadline-ms`, and the conversation, user, channel and agent ids); a typed error
 * comes back as `{ "error": { code, message, retryable, details } }` with its HTTP status and
 * is rebuilt unchanged. Calls reuse keep-alive connections and stop waiting at the deadline.
 *
 * @example
 * const transport = createHttpTransport({ app, urls: { conversation: process.env.CONVERSATION_SERVICE_URL } });
 * await transport.serve(skillsContract, skillHost.handlers);
 * const conversation = transport.client(conversationContract);
 */
export function createHttpTransport(options: HttpTransportOptions = {}): HttpTransport {
  const maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  if (!(Number.isInteger(maxPayloadBytes) && maxPayloadBytes > 0)) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'maxPayloadBytes must be a positive integer');
  }
  const routeOptions = { maxPayloadBytes, logger: options.logger };
  const served = new Set<string>();
  let registry: RpcRegistry | undefined = options.app ? rpcRegistryOf(options.app, routeOptions) : undefined;
  let own: { app: FastifyInstance; url: Promise<string> } | undefined;
  let ownUrl: string | undefined;
  let closed = false;
  // A service this process serves and no URL names (`clawmesh start gateway conversation`):
  // its calls go to this process's own server, like any other call.
  const urls = (service: string): ServiceUrls | undefined =>
    urlsOf(options.urls, service) ?? (served.has(service) ? selfUrl(options.app ?? own?.app) : undefined);
  const caller = createHttpCaller({ urls, maxPayloadBytes, maxSockets: options.maxSockets });

  const listen = (spec: { port?: number; host?: string }) => {
    const app = Fastify({ bodyLimit: maxPayloadBytes, schemaController: lazySchemaCompilers() });
    registry = rpcRegistryOf(app, routeOptions);
    const host = spec.host ?? '127.0.0.1';
    const url = app.listen({ port: spec.port ?? 0, host }).then(() => {
      const address = app.server.address();
      const port = typeof address === 'object' && address ? address.port : spec.port;
      ownUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
      return ownUrl;
    });
    own = { app, url };
    return url;
  };

  return {
    kind: 'http',
    async serve<C extends Contract>(contract: C, handlers: Handlers<C>): Promise<Registration> {
      if (closed) throw new ClawmeshError('UNAVAILABLE', 'the http transport is closed');
      assertWireNames(contract);
      if (!options.app && !own) {
        if (!options.listen) {
          throw new ClawmeshError(
            'INVALID_ARGUMENT',
            'the http transport has nowhere to serve: give it an app (a Fastify instance) or listen options',
          );
        }
        await listen(options.listen);
      } else if (own) await own.url;
      const services = registry!;
      if (services.has(contract.name)) {
        throw new ClawmeshError('CONFLICT', `service "${contract.name}" is already served on this server`);
      }
      const runners = methodRunners(contract, handlers);
      services.set(contract.name, runners);
      served.add(contract.name);
      return {
        async close() {
          if (services.get(contract.name) === runners) {
            services.delete(contract.name);
            served.delete(contract.name);
          }
        },
      };
    },
    client<C extends Contract>(contract: C, middleware: readonly CallMiddleware[] = []): Client<C> {
      assertWireNames(contract);
      let invoke = caller.invoker(contract.name);
      for (const wrap of [...middleware].reverse()) invoke = wrap(contract.name, invoke);
      return clientFromInvoke(contract, invoke);
    },
    address: () => ownUrl,
    async close() {
      closed = true;
      for (const name of served) registry?.delete(name);
      served.clear();
      caller.close();
      if (own) {
        const { app } = own;
        own = undefined;
        ownUrl = undefined;
        await app.close();
      }
    },
  };
}

/** The URLs `resolver` gives a service, if any. */
function urlsOf(resolver: UrlResolver | undefined, service: string): ServiceUrls | undefined {
  if (typeof resolver === 'function') return resolver(service);
  return resolver && Object.hasOwn(resolver, service) ? resolver[service] : undefined;
}

/** The base URL a server listens on, seen from this process (a wildcard address as loopback). */
function selfUrl(app: FastifyInstance | undefined): string | undefined {
  const address = app?.server.address();
  if (!address || typeof address !== 'object') return undefined;
  const wildcard = address.address === '0.0.0.0' || address.address === '::';
  const host = wildcard ? (address.family === 'IPv6' ? '::1' : '127.0.0.1') : address.address;
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
}
