import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { EventPublisher } from '../../bus/publisher.ts';
import { type CallContext, createCallContext, type NewContextOptions } from '../../core/context.ts';
import type { ModelRequest, ModelResponse } from '../../core/contracts/models.ts';
import { ClawmeshError } from '../../core/errors.ts';
import { randomHex } from '../../core/ids.ts';
import type { InFlight } from '../../core/in-flight.ts';
import { parseOrThrow } from '../../core/validation.ts';
import { type ApiKeyCheck, createApiKeyCheck } from '../../gateway/auth.ts';
import type { RateLimit } from '../../gateway/rate-limit.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { afterHeaders, inEdgeSpan } from '../../observability/tracing.ts';
import { chargedEventData, modelCompletedData } from '../accounting/event.ts';
import type { ModelStreamEvent, ModelsService } from '../service.ts';
import { type OpenAIErrorBody, toOpenAIError } from './errors.ts';
import { ChatCompletionRequestSchema, toModelRequest } from './wire.ts';
import { chunkOf, closingChunks, toChatCompletion } from './wire-response.ts';

/** What the OpenAI-compatible routes need. */
export interface OpenAIRoutesOptions {
  /** The Model Gateway. */
  models: ModelsService;
  /** Bearer keys accepted; none: the API is open (bind it to loopback). Ignored when `auth` is given. */
  apiKeys?: readonly string[];
  /** The process's key check, shared with the rest of the HTTP API. */
  auth?: ApiKeyCheck;
  /**
   * A per-user request limit (the process's `gateway.rateLimit`), taken by each completion
   * request past its key check and validation: per API key, or per key and `user` field when
   * the request has one. Over it: 429 in OpenAI's error shape with `Retry-After`.
   */
  rateLimit?: RateLimit;
  /**
   * Hand a request's `user` and `safety_identifier` fields to the provider (`models.forwardUser`):
   * OpenAI's own, Anthropic's `metadata.user_id` (`user` first). Accounting counts by `user`
   * whether or not it is forwarded.
   */
  forwardUser?: boolean;
  /** Where `model.completed` events go (`source: 'api'`). */
  events?: EventPublisher;
  /** The time budget of one request, in milliseconds (default 120 s). */
  requestTimeoutMs?: number;
  /** The largest request body, in bytes (default 4 MiB: chat histories are long). */
  bodyLimitBytes?: number;
  /**
   * Where a streamed answer is counted (`clawmesh_http_requests_total`): it is written to the
   * socket directly, past the server's own count of the replies it sends.
   */
  metrics?: Pick<Metrics, 'httpRequests'>;
  /** Counts the completions in progress (streams until their last line), which shutdown waits for. */
  inFlight?: Pick<InFlight, 'enter' | 'leave'>;
}

const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

// From the process's pooled random bytes: a `randomBytes` call per request costs a crypto job.
const completionId = () => `chatcmpl-${randomHex(12)}`;

/**
 * Aborts when the client hangs up before its response is complete (the response's `close`
 * comes before it finished), or at `abort()`; `stop` once the response no longer needs watching.
 * The abort reason is a `DEADLINE_EXCEEDED`: it stops the chain and counts against no deployment.
 */
function clientGone(reply: FastifyReply): { signal: AbortSignal; abort(): void; stop(): void } {
  const controller = new AbortController();
  const raw = reply.raw;
  const abort = () => controller.abort(new ClawmeshError('DEADLINE_EXCEEDED', 'the client went away'));
  const onClose = () => {
    if (!raw.writableFinished) abort();
  };
  raw.on('close', onClose);
  return { signal: controller.signal, abort, stop: () => raw.off('close', onClose) };
}

/** Writes one SSE `data:` line; resolves once the socket took it (backpressure). */
function send(raw: ServerResponse, data: string): Promise<void> | undefined {
  if (raw.destroyed) return undefined;
  if (raw.write(`data: ${data}\n\n`)) return undefined;
  return new Promise((resolve) => {
    const done = () => {
      raw.off('drain', done);
      raw.off('close', done);
      resolve();
    };
    raw.on('drain', done);
    raw.on('close', done);
  });
}

/**
 * The OpenAI-compatible API of the Model Gateway, in its own Fastify scope (errors in OpenAI's
 * shape, a larger body limit):
 *
 * - `POST /v1/chat/completions` — `model` is a tier (`fast`, `capable`), `auto` (routed by rules
 *   and difficulty), a deployment id or `provider/model`; tools and tool calls; `usage`;
 *   `stream: true` answers Server-Sent Events (`data: {chunk}` … `data: [DONE]`), with a usage
 *   chunk when `stream_options.include_usage` is set. Answers and every chunk name the
 *   `provider/model` that answered.
 * - `GET /v1/models`, `GET /v1/models/:model` — tiers, deployments and models, in OpenAI's list shape.
 *
 * `Authorization: Bearer <key>` is checked against the gateway's API keys.
 *
 * @example
 * registerOpenAIRoutes(app, { models, apiKeys: config.gateway.apiKeys });
 */
export function registerOpenAIRoutes(app: FastifyInstance, options: OpenAIRoutesOptions): void {
  const auth = options.auth ?? createApiKeyCheck(options.apiKeys ?? []);
  const timeoutMs = options.requestTimeoutMs ?? 120_000;
  const { models, events } = options;
  const created = Math.floor(Date.now() / 1000);

  app.register(async (scope) => {
    scope.setErrorHandler((err, request, reply) => {
      const { status, body, retryAfter } = toOpenAIError(err);
      if (status >= 500 && !(err instanceof ClawmeshError)) {
        request.log.error({ err, requestId: request.id }, 'unhandled error in the OpenAI-compatible API');
      }
      if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
      return reply.status(status).send(body);
    });
    const modelList = () => {
      const { tiers, models: names } = models.describe();
      const entry = (id: string, ownedBy: string) => ({ id, object: 'model', created, owned_by: ownedBy });
      const seen = new Set<string>();
      const data = [entry('auto', 'clawmesh-router')];
      seen.add('auto');
      for (const tier of tiers) {
        seen.add(tier.name);
        data.push(entry(tier.name, 'clawmesh-tier'));
      }
      for (const name of names) {
        if (seen.has(name)) continue;
        seen.add(name);
        data.push(entry(name, name.includes('/') ? name.slice(0, name.indexOf('/')) : 'clawmesh-deployment'));
      }
      return data;
    };

    scope.get('/v1/models', async (request) => {
      auth.verify(request.headers.authorization);
      return { object: 'list', data: modelList() };
    });

    scope.get<{ Params: { '*': string } }>('/v1/models/*', async (request) => {
      auth.verify(request.headers.authorization);
      const id = request.params['*'];
      const found = modelList().find((model) => model.id === id);
      if (!found) throw new ClawmeshError('NOT_FOUND', `The model \`${id}\` does not exist`);
      return found;
    });

    scope.post(
      '/v1/chat/completions',
      { bodyLimit: options.bodyLimitBytes ?? 4 * 1024 * 1024 },
      async (request: FastifyRequest, reply: FastifyReply) => {
        const keyId = auth.verify(request.headers.authorization);
        const body = parseOrThrow(ChatCompletionRequestSchema, request.body, 'invalid request body');
        const modelRequest = toModelRequest(body);
        // The caller's end user, by OpenAI's older field or its newer one: each has budgets and a
        // rate limit of their own under the key.
        const endUser = body.user || body.safety_identifier;
        const userId = endUser ? `${keyId}:${endUser}` : keyId;
        // The caller's own name for its user: never the key id, which is the gateway's.
        if (options.forwardUser) {
          if (body.user) modelRequest.user = body.user;
          if (body.safety_identifier) modelRequest.safetyIdentifier = body.safety_identifier;
        }
        if (options.rateLimit) await options.rateLimit.take(`openai:${userId}`);
        const context: NewContextOptions = {
          timeoutMs,
          requestId: request.id,
          userId,
          channel: 'openai-api',
        };
        const traceparent = header(request.headers.traceparent);
        if (traceparent) context.traceparent = traceparent;
        // The request enters the platform here: the root span of its trace (or a child of the
        // caller's); a stream's span ends with the stream.
        options.inFlight?.enter();
        try {
          return await inEdgeSpan(
            'POST /v1/chat/completions',
            createCallContext(context),
            () => ({
              'http.request.method': 'POST',
              'http.route': '/v1/chat/completions',
              'clawmesh.channel': 'openai-api',
              'gen_ai.request.model': body.model,
            }),
            async (ctx) => {
              const id = completionId();
              const now = Math.floor(Date.now() / 1000);
              if (!body.stream) {
                // A client that hangs up stops the upstream call, its retries and fallbacks: nobody
                // would read (or pay attention to) the answer.
                const gone = clientGone(reply);
                let response: ModelResponse;
                try {
                  response = await models.complete(modelRequest, ctx, gone.signal);
                } finally {
                  gone.stop();
                }
                events?.emit('model.completed', modelCompletedData(response, ctx, 'api'), ctx);
                reply.header('x-clawmesh-cache', response.cached ? 'hit' : 'miss');
                return toChatCompletion(id, now, response);
              }
              await streamCompletion(request, reply, modelRequest, ctx, {
                id,
                created: now,
                includeUsage: body.stream_options?.include_usage === true,
              });
              return reply;
            },
            traceparent,
          );
        } catch (err) {
          // A stream that failed after its headers has sent its error line: the error only
          // marked its span failed.
          if (reply.sent) return reply;
          throw err;
        } finally {
          options.inFlight?.leave();
        }
      },
    );

    /**
     * Answers with SSE; an error before the first event still gets its status and JSON body. One
     * after the headers is sent as the stream's last line, then thrown (the reply is sent).
     */
    async function streamCompletion(
      request: FastifyRequest,
      reply: FastifyReply,
      modelRequest: ModelRequest,
      ctx: CallContext,
      meta: { id: string; created: number; includeUsage: boolean },
    ): Promise<void> {
      // Watched from the start: a client leaving before the first token stops the upstream too.
      const gone = clientGone(reply);
      const iterator = models.stream(modelRequest, ctx, gone.signal)[Symbol.asyncIterator]();
      // Errors up to the first event (routing, budgets, every deployment down) answer with a status.
      let next: IteratorResult<ModelStreamEvent>;
      try {
        next = await iterator.next();
      } catch (err) {
        gone.stop();
        throw err;
      }

      const raw = reply.raw;
      reply.hijack();
      options.metrics?.httpRequests.inc({ route: request.routeOptions.url ?? 'unmatched', status: '200' });
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-request-id': request.id,
        'x-accel-buffering': 'no',
      });
      const { id, created, includeUsage } = meta;
      // The model that answers, in every chunk as OpenAI sends it: the first event names it.
      const first = next.done ? undefined : next.value;
      const model =
        first?.type === 'done' ? first.response.model : (first?.model ?? modelRequest.model ?? 'auto');
      try {
        await send(
          raw,
          JSON.stringify(chunkOf(id, created, model, { role: 'assistant', content: '' }, null, includeUsage)),
        );
        while (!next.done) {
          // A client gone mid-answer: stop the upstream call and read the stream to its end,
          // where the gateway charges the text it streamed (the error's `details.charged`).
          if (raw.destroyed) gone.abort();
          const event = next.value;
          if (event.type === 'text') {
            if (!raw.destroyed) {
              await send(
                raw,
                JSON.stringify(chunkOf(id, created, model, { content: event.text }, null, includeUsage)),
              );
            }
          } else {
            events?.emit('model.completed', modelCompletedData(event.response, ctx, 'api'), ctx);
            for (const chunk of closingChunks(id, created, event.response, includeUsage)) {
              await send(raw, JSON.stringify(chunk));
            }
            await send(raw, '[DONE]');
          }
          next = await iterator.next();
        }
      } catch (err) {
        const charged = chargedEventData(err, ctx, 'api');
        if (charged) events?.emit('model.completed', charged, ctx);
        // Headers are out: the error goes in the stream, as OpenAI's own servers send it.
        const { body } = toOpenAIError(err);
        if (!(err instanceof ClawmeshError))
          request.log.error({ err, requestId: request.id }, 'stream failed');
        await send(raw, JSON.stringify(body));
        throw afterHeaders(err, raw.statusCode);
      } finally {
        gone.stop();
        if (!next.done) await iterator.return?.();
        raw.end();
      }
    }
  });

  // A path of OpenAI's API that is not served here (GET /v1/chat/completions, /v1/embeddings)
  // answers as OpenAI's own servers do, in its error shape, rather than in Clawmesh's.
  for (const prefix of OPENAI_PATH_PREFIXES) {
    app.register(
      async (scope) => {
        scope.setNotFoundHandler((request, reply) => {
          reply.status(404).send({
            error: {
              message: `Invalid URL (${request.method} ${request.url.split('?')[0]})`,
              type: 'invalid_request_error',
              param: null,
              code: null,
            },
          } satisfies OpenAIErrorBody);
        });
      },
      { prefix },
    );
  }
}

/** The paths of OpenAI's API (under `/v1`), whose unknown routes answer in its error shape. */
const OPENAI_PATH_PREFIXES = [
  '/v1/chat',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/models',
  '/v1/responses',
  '/v1/images',
  '/v1/audio',
  '/v1/moderations',
  '/v1/files',
  '/v1/batches',
  '/v1/fine_tuning',
  '/v1/assistants',
  '/v1/threads',
  '/v1/vector_stores',
  '/v1/uploads',
];
