/**
 * The one error type that crosses every transport. A caller handles `UNAVAILABLE` the same
 * way whether the callee was a function in this process or a service on another host.
 */

/** The stable error codes of Clawmesh (DESIGN.md §2). */
export const ERROR_CODES = [
  'INVALID_ARGUMENT',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'NOT_FOUND',
  'RATE_LIMITED',
  'DEADLINE_EXCEEDED',
  'UNAVAILABLE',
  'CONFLICT',
  'INTERNAL',
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

const RETRYABLE_BY_DEFAULT: ReadonlySet<ErrorCode> = new Set(['UNAVAILABLE', 'RATE_LIMITED']);

const HTTP_STATUS: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
};

/** Options of a {@link ClawmeshError}. */
export interface ClawmeshErrorOptions {
  /** What caused it: the remote's error, a thrown exception. */
  cause?: unknown;
  /** Whether trying again may succeed; defaults by code (`UNAVAILABLE`, `RATE_LIMITED`). */
  retryable?: boolean;
  /** Machine-readable details, such as the field that failed validation or a retry delay. */
  details?: Record<string, unknown>;
}

/** The serialized shape of a {@link ClawmeshError}, as it travels over HTTP or NATS. */
export interface ClawmeshErrorJSON {
  code: ErrorCode;
  message: string;
  retryable: boolean;
  details?: Record<string, unknown>;
}

/**
 * An error with a stable code, a cause and a retryable flag that resilience policies read.
 *
 * @example
 * throw new ClawmeshError('NOT_FOUND', `no skill named ${name}`);
 */
export class ClawmeshError extends Error {
  override readonly name = 'ClawmeshError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: ClawmeshErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT.has(code);
    if (options.details) this.details = options.details;
  }

  /** The HTTP status that stands for this error's code. */
  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }

  /** The wire shape; the cause stays behind (it may hold secrets or stack traces). */
  toJSON(): ClawmeshErrorJSON {
    const json: ClawmeshErrorJSON = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.details) json.details = this.details;
    return json;
  }

  /** Rebuilds an error that crossed a transport. */
  static fromJSON(json: ClawmeshErrorJSON): ClawmeshError {
    const code = isErrorCode(json.code) ? json.code : 'INTERNAL';
    return new ClawmeshError(code, json.message, { retryable: json.retryable, details: json.details });
  }

  /** Wraps anything thrown into a ClawmeshError (`INTERNAL` unless it already is one). */
  static from(err: unknown, fallback: ErrorCode = 'INTERNAL'): ClawmeshError {
    if (err instanceof ClawmeshError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new ClawmeshError(fallback, message, { cause: err });
  }
}

/** Whether a string is one of the stable error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/** The HTTP status for an error code. */
export function httpStatusOf(code: ErrorCode): number {
  return HTTP_STATUS[code];
}
