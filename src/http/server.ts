import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, LogController } from 'fastify';
import { ClawmeshError } from '../core/errors.ts';
import { type FastCounterChild, fastCounter } from '../observability/fast-metrics.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { lazySchemaCompilers } from './lazy-compilers.ts';

/** Options of {@link createHttpServer}. */
export interface HttpServerOptions {
  logger: Logger;
  metrics?: Metrics;
  bodyLimitBytes: number;
}

/** Fastify's own error codes, mapped to the status and message a client gets. */
const FASTIFY_ERRORS: Record<
  string,
  { status: number; code: string; message: (err: FastifyError) => string }
> = {
  FST_ERR_CTP_INVALID_JSON_BODY: {
    status: 400,
    code: 'INVALID_ARGUMENT',
    message: (e) => `malformed JSON body: ${e.message}`,
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    status: 400,
    code: 'INVALID_ARGUMENT',
    message: () => 'the JSON body is empty',
  },
  FST_ERR_CTP_BODY_TOO_LARGE: {
    status: 413,
    code: 'INVALID_ARGUMENT',
    message: () => 'request body is too large',
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: 'INVALID_ARGUMENT',
    message: () => 'unsupported content type: send application/json',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    code: 'INVALID_ARGUMENT',
    message: () => 'invalid Content-Length',
  },
};

/** Counts a request by route and status code, each series found once. */
function requestCounter(counter: Metrics['httpRequests']): (route: string, status: number) => void {
  const series = new Map<string, FastCounterChild>();
  return (route, status) => {
    const key = `${status} ${route}`;
    let child = series.get(key);
    if (!child) {
      child = fastCounter(counter, { route, status: String(status) });
      series.set(key, child);
    }
    child.inc();
  };
}

/**
 * The one HTTP server of a process: Fastify with the Clawmesh error shape
 * `{ "error": { "code", "message" } }` for every failure, typed or not.
 */
export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  const app = Fastify({
    // Fastify types its logger narrower than pino's; the instance is pino either way.
    loggerInstance: options.logger,
    // One log line per turn comes from the Conversation Manager; none per HTTP request.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // No child logger per request (a pino child costs microseconds): lines that need the
    // request id carry it themselves.
    childLoggerFactory: (logger) => logger,
    return503OnClosing: true,
    schemaController: lazySchemaCompilers(),
  });
  // Every route takes JSON; a channel that needs another body type adds its parser in its own scope.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const known = err.code ? FASTIFY_ERRORS[err.code] : undefined;
    if (known) {
      return reply.status(known.status).send({ error: { code: known.code, message: known.message(err) } });
    }
    if (err instanceof SyntaxError && err.message.includes('JSON')) {
      return reply
        .status(400)
        .send({ error: { code: 'INVALID_ARGUMENT', message: `malformed JSON body: ${err.message}` } });
    }
    if (err instanceof ClawmeshError) {
      const retryAfter = err.details?.retryAfterSeconds;
      if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
      return reply.status(err.httpStatus).send({ error: err.toJSON() });
    }
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.status(err.statusCode).send({ error: { code: 'INVALID_ARGUMENT', message: err.message } });
    }
    request.log.error({ err, requestId: request.id }, 'unhandled error');
    return reply.status(500).send({ error: { code: 'INTERNAL', message: 'internal error' } });
  });
  app.setNotFoundHandler((request, reply) => {
    reply
      .status(404)
      .send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url}` } });
  });
  // Every response names its request, errors included. While shutting down, a reply to a request
  // that was already running closes its keep-alive connection, so the server can finish closing
  // once the turns in flight are answered.
  // Requests are counted here too (per route and status) rather than in a hook of their own: one
  // hook less to run per request, and each series is found once rather than hashed every time.
  const countRequest = options.metrics ? requestCounter(options.metrics.httpRequests) : undefined;
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    if (!app.server.listening) reply.header('connection', 'close');
    countRequest?.(request.routeOptions.url ?? 'unmatched', reply.statusCode);
    done(null, payload);
  });
  return app as unknown as FastifyInstance;
}
