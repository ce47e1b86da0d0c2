import { eachAttribute, eachSpanAttribute, type SpanRecord } from './span-record.ts';

/*
 * Finished spans on their way to the export worker. The turn's thread packs each span into a
 * flat array of primitives (about 1.5 µs a span to build and copy to the worker, against 2.3 µs
 * for span objects and 6 to 10 µs to encode it there); the worker reads them back with
 * {@link readPackedSpans} and encodes them as OTLP protobuf or JSON.
 */

/**
 * Epoch milliseconds with a fraction as whole milliseconds and the nanoseconds past them (the
 * fraction rounded to the nanosecond, carried into the milliseconds when it rounds up to one):
 * the two parts both OTLP encodings write a 64-bit nanosecond time from.
 */
export function splitEpochMs(epochMs: number): [wholeMs: number, nanos: number] {
  const whole = Math.floor(epochMs);
  const nanos = Math.round((epochMs - whole) * 1e6);
  return nanos >= 1_000_000 ? [whole + 1, nanos - 1_000_000] : [whole, nanos];
}

/** Spans packed by {@link packSpan}, and how many they are. */
export interface PackedSpans {
  data: unknown[];
  count: number;
}

/** Span flag bits of OTLP beside the W3C trace flags: whether the parent is remote is known, and is. */
const HAS_IS_REMOTE = 0x100;
const IS_REMOTE = 0x200;

/** A span's OTLP `flags`: its W3C trace flags, and whether its parent is remote. */
export function spanFlags(span: SpanRecord): number {
  return (span.traceFlags & 0xff) | HAS_IS_REMOTE | (span.parentIsRemote ? IS_REMOTE : 0);
}

/**
 * Appends a packed attribute list: its count, then key and value of each attribute `each`
 * visits.
 */
function packAttributes(out: unknown[], each: (visit: (key: string, value: unknown) => void) => void): void {
  const at = out.length;
  out.push(0);
  let count = 0;
  each((key, value) => {
    out.push(key, value);
    count++;
  });
  out[at] = count;
}

/** Appends one span to `out` as primitives (the layout {@link readPackedSpans} reads). */
export function packSpan(span: SpanRecord, out: unknown[]): void {
  out.push(
    span.name,
    span.kind,
    span.traceId,
    span.spanId,
    span.parentSpanId ?? '',
    spanFlags(span),
    span.startMs,
    span.endMs,
    span.status.code,
    span.status.message ?? '',
  );
  packAttributes(out, (visit) => eachSpanAttribute(span, visit));
  out.push(span.events.length);
  for (const event of span.events) {
    out.push(event.name, event.timeMs);
    packAttributes(out, (visit) => eachAttribute(event.attributes, visit));
  }
}

/**
 * One packed span as read back. Attribute lists stay in the packed array: `attributesAt` is the
 * index of the span's list (read it with {@link eachPackedAttribute}), `eventsAt` that of its
 * event count (read them with {@link eachPackedEvent}).
 */
export interface PackedSpanView {
  name: string;
  /** The API's `SpanKind` (OTLP's is one more). */
  kind: number;
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  /** OTLP span flags: the W3C trace flags and whether the parent is remote. */
  flags: number;
  startMs: number;
  endMs: number;
  statusCode: number;
  /** Empty when the status has no message. */
  statusMessage: string;
  attributesAt: number;
  eventsAt: number;
}

/** The index just past a packed attribute list starting at `at`. */
const afterAttributes = (data: readonly unknown[], at: number): number => at + 1 + 2 * (data[at] as number);

/** Calls `visit` with each packed span in order (one view object, reused: copy what you keep). */
export function readPackedSpans(data: readonly unknown[], visit: (span: PackedSpanView) => void): void {
  const view = {} as PackedSpanView;
  let i = 0;
  while (i < data.length) {
    view.name = data[i] as string;
    view.kind = data[i + 1] as number;
    view.traceId = data[i + 2] as string;
    view.spanId = data[i + 3] as string;
    view.parentSpanId = data[i + 4] as string;
    view.flags = data[i + 5] as number;
    view.startMs = data[i + 6] as number;
    view.endMs = data[i + 7] as number;
    view.statusCode = data[i + 8] as number;
    view.statusMessage = data[i + 9] as string;
    view.attributesAt = i + 10;
    view.eventsAt = afterAttributes(data, i + 10);
    i = view.eventsAt + 1;
    for (let e = data[view.eventsAt] as number; e > 0; e--) i = afterAttributes(data, i + 2);
    visit(view);
  }
}

/** Calls `visit` with each attribute of the packed list at `at`. */
export function eachPackedAttribute(
  data: readonly unknown[],
  at: number,
  visit: (key: string, value: unknown, index: number) => void,
): void {
  const count = data[at] as number;
  for (let k = 0; k < count; k++) visit(data[at + 1 + 2 * k] as string, data[at + 2 + 2 * k], k);
}

/** Calls `visit` with each event of a packed span (`eventsAt` from its view). */
export function eachPackedEvent(
  data: readonly unknown[],
  eventsAt: number,
  visit: (name: string, timeMs: number, attributesAt: number, index: number) => void,
): void {
  const count = data[eventsAt] as number;
  let i = eventsAt + 1;
  for (let e = 0; e < count; e++) {
    visit(data[i] as string, data[i + 1] as number, i + 2, e);
    i = afterAttributes(data, i + 2);
  }
}
