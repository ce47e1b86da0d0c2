import { randomUUID } from 'node:crypto';
import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, {
  type ConnectionError,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import { ClawmeshError } from '../core/errors.ts';
import { publicServerError } from '../core/public-errors.ts';
import { type FastCounterChild, fastCounter } from '../observability/fast-metrics.ts';
import type { CallLogFields, Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { lazySchemaCompilers } from './lazy-compilers.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The ids of the call a route ran (request, trace, span, conversation), set by a route that
     * started one: the error handler's line about its failure then names them, not only the request.
     */
    logFields?: CallLogFields;
  }
}

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

/**
 * What a client gets when Node's HTTP parser rejects its request before Fastify sees it: by
 * parser error code, the status and the message of the Clawmesh error shape.
 */
function clientErrorReply(
  err: ConnectionError,
): { status: number; code: string; message: string } | undefined {
  // llhttp's reasons are fixed texts ("Transfer-Encoding can't be present with Content-Length"), never request data.
  const reason = (err as ConnectionError & { reason?: unknown }).reason;
  const why = typeof reason === 'string' ? reason : undefined;
  switch (err.code) {
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return { status: 400, code: 'INVALID_ARGUMENT', message: 'invalid Content-Length' };
    case 'HPE_INVALID_TRANSFER_ENCODING':
      if (why?.includes('Content-Length')) {
        const message = 'invalid Content-Length: it cannot be sent with Transfer-Encoding';
        return { status: 400, code: 'INVALID_ARGUMENT', message };
      }
      break;
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, code: 'INVALID_ARGUMENT', message: 'request headers are too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, code: 'DEADLINE_EXCEEDED', message: 'the request was not received in time' };
  }
  if (!err.code?.startsWith('HPE_')) return undefined;
  const message = why ? `malformed HTTP request: ${why}` : 'malformed HTTP request';
  return { status: 400, code: 'INVALID_ARGUMENT', message };
}

/**
 * Answers a request Node's HTTP parser rejected (a bad `Content-Length`, `Content-Length` with
 * `Transfer-Encoding`, …) in the Clawmesh error shape with a fresh `x-request-id`, then closes the
 * connection. A reset connection, or one whose response has already begun, is only destroyed.
 */
function clientErrorHandler(logger: Logger): (err: ConnectionError, socket: Socket) => void {
  return (err, socket) => {
    const reply = err.code === 'ECONNRESET' ? undefined : clientErrorReply(err);
    // Writing into a response already under way would corrupt it for the peer (Node checks the same).
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!reply || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const requestId = randomUUID();
    logger.debug({ err, requestId }, 'rejected a malformed HTTP request');
    const body = JSON.stringify({ error: { code: reply.code, message: reply.message } });
    socket.end(
      `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status]}\r\n` +
        'content-type: application/json; charset=utf-8\r\n' +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        `x-request-id: ${requestId}\r\n` +
        'connection: close\r\n\r\n' +
        body,
      () => socket.destroy(),
    );
  };
}

/** The longest `x-request-id` taken from a caller. */
export const MAX_REQUEST_ID_LENGTH = 128;
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

/**
 * A request's id: its `x-request-id` when that is 1 to {@link MAX_REQUEST_ID_LENGTH} printable
 * ASCII characters, else a random UUID. The id goes into every log line of the turn and to every
 * service the request reaches: a caller's 3,000-character header must not.
 */
export function requestIdOf(request: { headers: Record<string, string | string[] | undefined> }): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && given.length <= MAX_REQUEST_ID_LENGTH && PRINTABLE_ASCII.test(given)
    ? given
    : randomUUID();
}

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
    // The caller's `x-request-id` when it is a sane id, else a fresh one (see requestIdOf).
    requestIdHeader: false,
    genReqId: requestIdOf,
    // No child logger per request (a pino child costs microseconds): lines that need the
    // request id carry it themselves.
    childLoggerFactory: (logger) => logger,
    return503OnClosing: true,
    schemaController: lazySchemaCompilers(),
    clientErrorHandler: clientErrorHandler(options.logger),
    // A path Fastify cannot decode (`/v1/models/%`) gets the Clawmesh error shape, not Fastify's.
    frameworkErrors: (err, _request, reply) => {
      (reply as unknown as FastifyReply)
        .status(400)
        .send({ error: { code: 'INVALID_ARGUMENT', message: err.message } });
    },
  });
  // Every route takes JSON; a channel that needs another body type adds its parser in its own scope.
  app.removeContentTypeParser('text/plain');
  app.decorateRequest('logFields', undefined);
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
    if (err instanceof ClawmeshError && err.code === 'INTERNAL') {
      // An unexpected exception wrapped on its way here: its text is for the log, not the client.
      request.log.error({ err, ...(request.logFields ?? { requestId: request.id }) }, 'internal error');
      return reply
        .status(500)
        .send({ error: { code: 'INTERNAL', message: 'internal error', retryable: err.retryable } });
    }
    if (err instanceof ClawmeshError) {
      const retryAfter = err.details?.retryAfterSeconds;
      if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
      const status = err.httpStatus;
      return reply
        .status(status)
        .send({ error: status >= 500 ? publicServerError(err.toJSON()) : err.toJSON() });
    }
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.status(err.statusCode).send({ error: { code: 'INVALID_ARGUMENT', message: err.message } });
    }
    request.log.error({ err, ...(request.logFields ?? { requestId: request.id }) }, 'unhandled error');
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
