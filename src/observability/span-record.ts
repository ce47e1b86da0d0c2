import type { Attributes, AttributeValue, SpanKind, SpanStatus } from '@opentelemetry/api';

/** An event recorded on a span (`span.addEvent`, `span.recordException`). */
export interface SpanRecordEvent {
  name: string;
  /** Milliseconds since the Unix epoch, with a fraction. */
  timeMs: number;
  attributes?: Attributes;
}

/**
 * Attributes every span of one kind has with the same values (`rpc.system`, `rpc.service` and
 * `rpc.method` of a server span, the route of an edge span): made once per kind with
 * {@link fixedAttributes}, so a span carries a reference to them, and the protobuf encoder writes
 * their bytes once and copies them into each span after.
 */
export interface FixedAttributes {
  readonly attributes: Readonly<Attributes>;
  /** Their encoding as the `attributes` fields of an OTLP span, made by the protobuf encoder on first use. */
  proto?: Uint8Array;
}

/** Fixed attributes of a kind of span; the object is frozen (a span that changes one gets a copy). */
export function fixedAttributes(attributes: Attributes): FixedAttributes {
  return { attributes: Object.freeze({ ...attributes }) };
}

/**
 * A finished span as plain data: what the recording side hands to the exporter, which encodes
 * it (protobuf) or packs it as primitives (JSON) at once.
 */
export interface SpanRecord {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  traceFlags: number;
  parentSpanId?: string | undefined;
  /** The parent came from another process (a `traceparent` header or an event's metadata). */
  parentIsRemote?: boolean | undefined;
  /** Milliseconds since the Unix epoch, with a fraction. */
  startMs: number;
  endMs: number;
  /** Attributes shared with every span of its kind; listed first. */
  fixed?: FixedAttributes | undefined;
  attributes: Attributes;
  /** Attributes set after the span started, as key, value, key, value…; listed last. */
  late?: (string | AttributeValue)[] | undefined;
  status: SpanStatus;
  events: readonly SpanRecordEvent[];
}

/**
 * Calls `visit` with each attribute of a span in its order (fixed, given, set later), skipping
 * unset values.
 */
export function eachSpanAttribute(
  span: SpanRecord,
  visit: (key: string, value: AttributeValue) => void,
): void {
  if (span.fixed) eachAttribute(span.fixed.attributes, visit);
  eachAttribute(span.attributes, visit);
  const late = span.late;
  if (late) for (let i = 0; i < late.length; i += 2) visit(late[i] as string, late[i + 1] as AttributeValue);
}

/** Calls `visit` with each attribute that is set, in order; none without attributes. */
export function eachAttribute(
  attributes: Attributes | undefined,
  visit: (key: string, value: AttributeValue) => void,
): void {
  for (const key in attributes) {
    const value = attributes[key];
    if (value !== undefined && value !== null) visit(key, value);
  }
}

/** Every attribute of a span as one object (fixed, given, set later: a later one wins). */
export function spanAttributes(span: SpanRecord): Attributes {
  const all: Attributes = {};
  eachSpanAttribute(span, (key, value) => {
    all[key] = value;
  });
  return all;
}
