import type { SamplingDecision, SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';

// The OpenTelemetry API's enum values (fixed by its specification) as plain constants: the
// modules that only need them do not load `@opentelemetry/api` at start-up (about 30 ms here)
// while tracing is off. A test checks them against the API's own.

/** `SpanKind`. */
export const SPAN_KIND = {
  INTERNAL: 0,
  SERVER: 1,
  CLIENT: 2,
  PRODUCER: 3,
  CONSUMER: 4,
} as const satisfies Record<string, SpanKind>;

/** `SpanStatusCode`. */
export const SPAN_STATUS = { UNSET: 0, OK: 1, ERROR: 2 } as const satisfies Record<string, SpanStatusCode>;

/** `TraceFlags`. */
export const TRACE_FLAGS = { NONE: 0, SAMPLED: 1 } as const satisfies Record<string, TraceFlags>;

/** `SamplingDecision`. */
export const SAMPLING_DECISION = {
  NOT_RECORD: 0,
  RECORD: 1,
  RECORD_AND_SAMPLED: 2,
} as const satisfies Record<string, SamplingDecision>;
