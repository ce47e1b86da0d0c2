import type { FastifyError } from 'fastify';
import { ClawmeshError, type ErrorCode } from '../../core/errors.ts';
import { publicServerError } from '../../core/public-errors.ts';

/** OpenAI's error body: `{ error: { message, type, param, code } }`. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const TYPES: Record<ErrorCode, { type: string; code: string | null }> = {
  INVALID_ARGUMENT: { type: 'invalid_request_error', code: null },
  UNAUTHENTICATED: { type: 'invalid_request_error', code: 'invalid_api_key' },
  PERMISSION_DENIED: { type: 'permission_error', code: 'permission_denied' },
  NOT_FOUND: { type: 'invalid_request_error', code: 'model_not_found' },
  CONFLICT: { type: 'invalid_request_error', code: 'conflict' },
  RATE_LIMITED: { type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  DEADLINE_EXCEEDED: { type: 'timeout_error', code: 'timeout' },
  UNAVAILABLE: { type: 'server_error', code: 'service_unavailable' },
  INTERNAL: { type: 'server_error', code: 'internal_error' },
};

/** Fastify's own body errors, with the status a client gets. */
const BODY_ERRORS: Record<string, { status: number; message: (err: FastifyError) => string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, message: (e) => `malformed JSON body: ${e.message}` },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, message: () => 'the JSON body is empty' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, message: () => 'request body is too large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    message: () => 'unsupported content type: send application/json',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, message: () => 'invalid Content-Length' },
};

/** An error as OpenAI's status, body and (for 429) `retry-after` seconds. */
export function toOpenAIError(err: unknown): { status: number; body: OpenAIErrorBody; retryAfter?: number } {
  const fastify = err as FastifyError;
  const known = typeof fastify?.code === 'string' ? BODY_ERRORS[fastify.code] : undefined;
  if (known) {
    return {
      status: known.status,
      body: {
        error: { message: known.message(fastify), type: 'invalid_request_error', param: null, code: null },
      },
    };
  }
  if (err instanceof SyntaxError && err.message.includes('JSON')) {
    return {
      status: 400,
      body: {
        error: {
          message: `malformed JSON body: ${err.message}`,
          type: 'invalid_request_error',
          param: null,
          code: null,
        },
      },
    };
  }
  const error =
    err instanceof ClawmeshError ? err : new ClawmeshError('INTERNAL', 'internal error', { cause: err });
  const { type, code } = TYPES[error.code];
  const details = error.details ?? {};
  const fields = Array.isArray(details.fields) ? details.fields : [];
  const param =
    typeof details.param === 'string'
      ? details.param
      : typeof fields[0] === 'string'
        ? fields[0]
        : error.code === 'NOT_FOUND'
          ? 'model'
          : null;
  const budget = error.code === 'RATE_LIMITED' && typeof details.budget === 'string';
  const retryAfter = details.retryAfterSeconds;
  const message = error.httpStatus >= 500 ? publicServerError(error.toJSON()).message : error.message;
  return {
    status: error.httpStatus,
    body: { error: { message, type, param, code: budget ? 'budget_exceeded' : code } },
    ...(typeof retryAfter === 'number' ? { retryAfter } : {}),
  };
}
