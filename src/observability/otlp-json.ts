import type { Attributes, AttributeValue } from '@opentelemetry/api';
import { eachPackedAttribute, eachPackedEvent, readPackedSpans, splitEpochMs } from './otlp-packed.ts';

/*
 * Packed spans (`otlp-packed.ts`) as OTLP/HTTP JSON (opentelemetry-proto's JSON mapping: trace
 * and span ids in hex, 64-bit nanosecond times as decimal strings), about 3.5 µs a span where
 * OpenTelemetry's serializer takes 9. A test checks the JSON equals what OpenTelemetry's own
 * serializer writes. Used with `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`; protobuf is the default.
 */

/** Epoch milliseconds with a fraction, as OTLP's `fixed64` nanoseconds in a decimal string. */
export function unixNanos(epochMs: number): string {
  const [whole, nanos] = splitEpochMs(epochMs);
  return `${whole}${String(1_000_000 + nanos).slice(1)}`;
}

/** Printable ASCII but `"` and `\\`: such a string is its own JSON body. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** A string as JSON. Names, keys and ids are nearly always plain, and skip `JSON.stringify`. */
const str = (value: string): string => (PLAIN.test(value) ? `"${value}"` : JSON.stringify(value));

function anyValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return `{"stringValue":${str(value)}}`;
    case 'number':
      return Number.isInteger(value) ? `{"intValue":${value}}` : `{"doubleValue":${JSON.stringify(value)}}`;
    case 'boolean':
      return value ? '{"boolValue":true}' : '{"boolValue":false}';
    default:
      return Array.isArray(value)
        ? `{"arrayValue":{"values":[${value.map((item) => (item === null || item === undefined ? '{}' : anyValue(item))).join(',')}]}}`
        : '{}';
  }
}

/** One OTLP `KeyValue` as JSON. */
const keyValue = (key: string, value: unknown): string => `{"key":${str(key)},"value":${anyValue(value)}}`;

/** OTLP `KeyValue`s of attributes as JSON, skipping unset values. */
export function keyValues(attributes: Attributes): string {
  let out = '';
  for (const key in attributes) {
    const value: AttributeValue | undefined = attributes[key];
    if (value === undefined || value === null) continue;
    out += `${out ? ',' : ''}${keyValue(key, value)}`;
  }
  return `[${out}]`;
}

/**
 * A growing byte buffer the spans are written into one by one. Each span is one short string
 * written at once: building the whole request as one string and encoding it at the end costs
 * three times as much (V8 flattens the long concatenation first).
 */
class JsonBytes {
  private bytes: Buffer;
  private length = 0;

  /** `expected`: the bytes the request will likely take, so it is rarely copied to grow. */
  constructor(expected: number) {
    this.bytes = Buffer.allocUnsafe(expected);
  }

  write(text: string): void {
    const most = text.length * 3;
    if (this.length + most > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.length + most));
      this.bytes.copy(grown, 0, 0, this.length);
      this.bytes = grown;
    }
    this.length += this.bytes.write(text, this.length, 'utf8');
  }

  done(): Buffer {
    return this.bytes.subarray(0, this.length);
  }
}

/** OTLP `KeyValue`s of a packed attribute list as JSON. */
function packedKeyValues(data: readonly unknown[], at: number): string {
  let list = '';
  eachPackedAttribute(data, at, (key, value, k) => {
    list += `${k ? ',' : ''}${keyValue(key, value)}`;
  });
  return `[${list}]`;
}

/**
 * An OTLP `ExportTraceServiceRequest` of one resource and the `clawmesh` scope, as JSON bytes,
 * from spans packed by `packSpan`.
 */
export function encodeJsonRequest(resource: Attributes, data: readonly unknown[], count: number): Buffer {
  const out = new JsonBytes(count * 800 + 1024);
  out.write(
    `{"resourceSpans":[{"resource":{"attributes":${keyValues(resource)},"droppedAttributesCount":0},"scopeSpans":[{"scope":{"name":"clawmesh"},"spans":[`,
  );
  let first = true;
  readPackedSpans(data, (span) => {
    let events = '';
    eachPackedEvent(data, span.eventsAt, (name, timeMs, attributesAt, e) => {
      events += `${e ? ',' : ''}{"attributes":${packedKeyValues(data, attributesAt)},"name":${str(name)},"timeUnixNano":"${unixNanos(timeMs)}","droppedAttributesCount":0}`;
    });
    const parent = span.parentSpanId ? `,"parentSpanId":"${span.parentSpanId}"` : '';
    const status = span.statusMessage
      ? `{"code":${span.statusCode},"message":${str(span.statusMessage)}}`
      : `{"code":${span.statusCode}}`;
    out.write(
      `${first ? '' : ','}{"traceId":"${span.traceId}","spanId":"${span.spanId}"${parent},"name":${str(span.name)},"kind":${span.kind + 1},` +
        `"startTimeUnixNano":"${unixNanos(span.startMs)}","endTimeUnixNano":"${unixNanos(span.endMs)}","attributes":${packedKeyValues(data, span.attributesAt)},` +
        `"droppedAttributesCount":0,"events":[${events}],"droppedEventsCount":0,"status":${status},"links":[],` +
        `"droppedLinksCount":0,"flags":${span.flags}}`,
    );
    first = false;
  });
  out.write(']}]}]}');
  return out.done();
}
