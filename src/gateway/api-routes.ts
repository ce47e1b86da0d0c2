import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { createCallContext, elapsedMs } from '../core/context.ts';
import type { Client } from '../core/contract.ts';
import {
  ConversationIdSchema,
  type conversationContract,
  type TurnReply,
} from '../core/contracts/conversation.ts';
import { ClawmeshError } from '../core/errors.ts';
import { sessionConversationId } from '../core/ids.ts';
import { parseOrThrow } from '../core/validation.ts';
import { callFields, type Logger } from '../observability/logger.ts';
import { fixedAttributes } from '../observability/span-record.ts';
import { inEdgeSpan, NO_ATTRIBUTES } from '../observability/tracing.ts';
import type { ApiKeyCheck } from './auth.ts';
import type { Idempotency } from './idempotency.ts';
import type { RateLimit } from './rate-limit.ts';

/** The body of `POST /v1/messages`. */
export const MessageRequestSchema = z.object({
  userId: z.string().min(1).max(256),
  text: z.string().min(1).max(32_000),
  conversationId: ConversationIdSchema.optional(),
  agentId: z.string().min(1).max(64).optional(),
});

/** What the HTTP API channel needs. */
export interface ApiRouteDeps {
  conversation: Client<typeof conversationContract>;
  auth: ApiKeyCheck;
  rateLimit: RateLimit;
  idempotency: Idempotency;
  /** The time budget of one request, in milliseconds. */
  requestTimeoutMs: number;
  /** Where the lines of a request go (a debug line per answered message). */
  logger?: Logger;
  /**
   * Log a message whose turn failed with a 5xx (`request failed`, with its request and trace ids
   * and the whole reason): when the conversation service runs in another process, whose log
   * line of the failure this process never sees.
   */
  logFailures?: boolean;
  /**
   * The agent of a message that names none (the conversation service's default): with it every
   * line of the request names the conversation from the start, a failed turn's included.
   */
  defaultAgentId?: string;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** `POST /v1/messages`: one message in, the agent's reply out. */
export function registerApiRoutes(app: FastifyInstance, deps: ApiRouteDeps): void {
  app.post('/v1/messages', async (request, reply) => {
    const keyId = deps.auth.verify(request.headers.authorization);
    const body = parseOrThrow(MessageRequestSchema, request.body, 'invalid request body');
    const idempotencyKey = header(request.headers['idempotency-key']);
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new ClawmeshError('INVALID_ARGUMENT', 'Idempotency-Key must be 1-255 visible ASCII characters');
    }
    await deps.rateLimit.take(`${keyId}:${body.userId}`);
    const traceparent = header(request.headers.traceparent);
    // The conversation service's id for it: the one named, else the user's session with the agent.
    const agentId = body.agentId ?? deps.defaultAgentId;
    const conversationId =
      body.conversationId ?? (agentId ? sessionConversationId(agentId, 'api', body.userId) : undefined);
    const ctx = createCallContext({
      timeoutMs: deps.requestTimeoutMs,
      requestId: request.id,
      userId: body.userId,
      channel: 'api',
      ...(traceparent ? { traceparent } : {}),
      ...(conversationId ? { conversationId } : {}),
    });
    // The message enters the platform here: the root span of its trace (or a child of the caller's).
    return inEdgeSpan(
      'POST /v1/messages',
      ctx,
      NO_ATTRIBUTES,
      async (traced) => {
        const started = performance.now();
        const run = () =>
          deps.conversation.handle(
            {
              channel: 'api',
              userId: body.userId,
              text: body.text,
              ...(body.conversationId ? { conversationId: body.conversationId } : {}),
              ...(body.agentId ? { agentId: body.agentId } : {}),
            },
            traced,
          );
        let turn: TurnReply;
        try {
          if (idempotencyKey === undefined) turn = await run();
          else {
            // Lengths first: any of the parts may hold a colon, and no two triples may share a key.
            const key = `idem:${keyId.length}:${keyId}:${body.userId.length}:${body.userId}:${idempotencyKey}`;
            const result = await deps.idempotency.run(key, body, run);
            if (result.replayed) reply.header('idempotent-replayed', 'true');
            turn = result.value;
          }
        } catch (err) {
          // The error handler's line about it (an INTERNAL error's stack) names the call too.
          request.logFields = callFields(traced);
          if (deps.logFailures && err instanceof ClawmeshError && err.httpStatus >= 500) {
            // The client gets a scrubbed message; the whole one stays in this process's log.
            deps.logger?.warn(
              { ...callFields(traced), status: err.httpStatus, code: err.code, err: err.message },
              'request failed',
            );
          }
          throw err;
        }
        if (deps.logger?.isLevelEnabled('debug')) {
          const durationMs = elapsedMs(started);
          const fields = { ...callFields(traced), conversationId: turn.conversationId, durationMs };
          deps.logger.debug(fields, 'message answered');
        }
        return toResponse(turn);
      },
      traceparent,
      MESSAGE_SPAN,
    );
  });
}

/** The attributes of every message's root span, all fixed. */
const MESSAGE_SPAN = fixedAttributes({
  'http.request.method': 'POST',
  'http.route': '/v1/messages',
  'clawmesh.channel': 'api',
});

function toResponse(turn: TurnReply) {
  return {
    conversationId: turn.conversationId,
    text: turn.text,
    toolCalls: turn.toolCalls,
    ...(turn.dropped ? { dropped: true } : {}),
  };
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
