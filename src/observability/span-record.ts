import type { Attributes, SpanKind, SpanStatus } from '@opentelemetry/api';

/** An event recorded on a span (`span.addEvent`, `span.recordException`). */
export interface SpanRecordEvent {
  name: string;
  /** Milliseconds since the Unix epoch, with a fraction. */
  timeMs: number;
  attributes?: Attributes;
}

/**
 * A finished span as plain data: what the recording side hands to the exporter, which packs
 * it as primitives for the export worker.
 */
export interface SpanRecord {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  traceFlags: number;
  parentSpanId?: string;
  /** The parent came from another process (a `traceparent` header or an event's metadata). */
  parentIsRemote?: boolean;
  /** Milliseconds since the Unix epoch, with a fraction. */
  startMs: number;
  endMs: number;
  attributes: Attributes;
  status: SpanStatus;
  events: SpanRecordEvent[];
}
