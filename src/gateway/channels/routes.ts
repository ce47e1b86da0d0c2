import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ClawmeshError } from '../../core/errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Delivery } from './delivery.ts';
import type { ChannelMetrics } from './metrics.ts';
import type { ChannelAdapter, ChannelRequest, ChannelResponse, ChannelRoute } from './types.ts';

/** What {@link registerChannelRoutes} needs. */
export interface ChannelRoutesDeps {
  adapters: readonly ChannelAdapter[];
  delivery: Delivery;
  metrics: ChannelMetrics;
  logger: Logger;
  /** Largest webhook body, in bytes. */
  bodyLimitBytes: number;
}

const ACCEPTED: ChannelResponse = { status: 200, body: { ok: true } };

/**
 * Mounts every adapter's routes in an encapsulated Fastify scope whose only body parser keeps
 * the raw bytes (any content type), since signatures are computed over them; the rest of the
 * server keeps its JSON parser. Each request: `verify` (401) → `handle` (400 on a bad body) →
 * answer, or accept into the delivery pipeline and then answer (5xx when the inbox could not
 * take it, so the platform retries).
 */
export function registerChannelRoutes(app: FastifyInstance, deps: ChannelRoutesDeps): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: deps.bodyLimitBytes },
      (_request, body, done) => done(null, body),
    );
    for (const adapter of deps.adapters) {
      for (const route of adapter.routes) {
        scope.route({
          method: route.method,
          url: route.path,
          handler: (request, reply) => handle(adapter, route, request, reply, deps),
        });
      }
    }
  });
}

async function handle(
  adapter: ChannelAdapter,
  route: ChannelRoute,
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ChannelRoutesDeps,
): Promise<FastifyReply> {
  const req = toChannelRequest(request);
  const count = (result: string) => deps.metrics.received.inc({ channel: adapter.name, result });
  try {
    route.verify?.(req);
  } catch (err) {
    const error = ClawmeshError.from(err);
    if (error.code !== 'UNAUTHENTICATED') throw error;
    count('unauthorized');
    deps.logger.warn(
      { channel: adapter.name, path: route.path, err: error.message },
      'channel request rejected',
    );
    return send(reply, { status: 401, body: { error: { code: error.code, message: error.message } } });
  }
  let outcome: Awaited<ReturnType<ChannelRoute['handle']>>;
  try {
    outcome = await route.handle(req);
  } catch (err) {
    const error = ClawmeshError.from(err);
    count(error.code === 'INVALID_ARGUMENT' ? 'invalid' : 'error');
    throw error;
  }
  if (outcome.kind === 'respond') return send(reply, outcome.response);
  try {
    await deps.delivery.accept(adapter, outcome.messages);
  } catch (err) {
    count('error');
    const error = ClawmeshError.from(err, 'UNAVAILABLE');
    deps.logger.error({ channel: adapter.name, err: error.message }, 'channel message could not be accepted');
    // Never 4xx here: the platform must retry a message the inbox could not take.
    return send(reply, { status: 503, body: { error: { code: 'UNAVAILABLE', message: 'try again later' } } });
  }
  return send(reply, outcome.response ?? ACCEPTED);
}

function send(reply: FastifyReply, response: ChannelResponse): FastifyReply {
  reply.status(response.status);
  if (response.headers) reply.headers(response.headers);
  if (typeof response.body === 'string') {
    if (!response.headers?.['content-type']) reply.type('text/plain; charset=utf-8');
    return reply.send(response.body);
  }
  return reply.send(response.body ?? '');
}

/** The request as adapters see it: lower-cased headers (first value), query, the raw body. */
export function toChannelRequest(request: FastifyRequest): ChannelRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    headers[name] = Array.isArray(value) ? value[0] : value;
  }
  const query: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries((request.query ?? {}) as Record<string, unknown>)) {
    query[name] = Array.isArray(value) ? String(value[0]) : value === undefined ? undefined : String(value);
  }
  return {
    method: request.method,
    url: request.url,
    headers,
    query,
    rawBody: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
  };
}
