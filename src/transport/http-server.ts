import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CallContext } from '../core/context.ts';
import { ClawmeshError } from '../core/errors.ts';
import { callFields, type Logger } from '../observability/logger.ts';
import type { MethodRunner } from './serving.ts';
import { payloadTooLarge, readContextHeaders, statusOf } from './wire.ts';

/** The contracts served on one Fastify instance: service name → method name → runner. */
export type RpcRegistry = Map<string, Map<string, MethodRunner>>;

/** Options of {@link rpcRegistryOf}. */
export interface RpcRouteOptions {
  /** The largest request and reply body, in bytes. */
  maxPayloadBytes: number;
  /** Where handler crashes (errors that are not a `ClawmeshError`) are logged. */
  logger?: Logger | undefined;
}

type RpcRequest = FastifyRequest<{ Params: { service: string; method: string } }>;

const registries = new WeakMap<FastifyInstance, RpcRegistry>();

/**
 * The registry behind `POST /rpc/:service/:method` on `app`, adding the route on first use, so
 * several transports may serve on one instance. Fastify takes routes only before it listens.
 */
export function rpcRegistryOf(app: FastifyInstance, options: RpcRouteOptions): RpcRegistry {
  const existing = registries.get(app);
  if (existing) return existing;
  const registry: RpcRegistry = new Map();
  const limit = options.maxPayloadBytes;
  try {
    app.post(
      '/rpc/:service/:method',
      {
        bodyLimit: limit,
        errorHandler: (err: FastifyError, request: RpcRequest, reply) => {
          const what = `${request.params.service}.${request.params.method}`;
          if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
            const size = Number(request.headers['content-length']);
            return sendError(reply, payloadTooLarge(what, Number.isFinite(size) ? size : undefined, limit));
          }
          if (err.code?.startsWith('FST_ERR_CTP_') || err instanceof SyntaxError) {
            return sendError(
              reply,
              new ClawmeshError('INVALID_ARGUMENT', `${what}: ${err.message}`),
              err.statusCode,
            );
          }
          options.logger?.error(
            { err, rpcService: request.params.service, rpcMethod: request.params.method },
            'rpc request failed',
          );
          return sendError(reply, new ClawmeshError('INTERNAL', `${what}: ${err.message}`));
        },
      },
      async (request: RpcRequest, reply) => {
        const { service, method } = request.params;
        const runners = registry.get(service);
        if (!runners) {
          return sendError(
            reply,
            new ClawmeshError('UNAVAILABLE', `no instance of service "${service}" runs here`),
          );
        }
        const run = runners.get(method);
        if (!run) {
          return sendError(
            reply,
            new ClawmeshError('NOT_FOUND', `service "${service}" has no method "${method}"`),
          );
        }
        let output: unknown;
        let ctx: CallContext | undefined;
        try {
          ctx = readContextHeaders((name) => {
            const value = request.headers[name];
            return typeof value === 'string' ? value : undefined;
          });
          output = await run(request.body, ctx);
        } catch (err) {
          if (!(err instanceof ClawmeshError)) {
            options.logger?.error(
              { ...(ctx ? callFields(ctx) : {}), err, rpcService: service, rpcMethod: method },
              'rpc handler threw',
            );
          }
          return sendError(reply, ClawmeshError.from(err));
        }
        const body = output === undefined ? '' : JSON.stringify(output);
        // A UTF-16 code unit is at most 3 UTF-8 bytes: count bytes only when it could matter.
        if (body.length * 3 > limit && Buffer.byteLength(body) > limit) {
          const size = Buffer.byteLength(body);
          return sendError(reply, payloadTooLarge(`${service}.${method} reply`, size, limit, 'INTERNAL'));
        }
        return reply.header('content-type', 'application/json; charset=utf-8').send(body);
      },
    );
  } catch (err) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `cannot add POST /rpc/:service/:method to this Fastify instance (create the http transport before the server listens): ${(err as Error).message}`,
      { cause: err },
    );
  }
  registries.set(app, registry);
  return registry;
}

/** Sends a typed error as `{ "error": { code, message, retryable, details } }` with its HTTP status. */
function sendError(reply: FastifyReply, err: ClawmeshError, status?: number): FastifyReply {
  return reply
    .code(status ?? statusOf(err))
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify({ error: err.toJSON() }));
}
