import type { Attributes } from '@opentelemetry/api';
import { spanFlags, splitEpochMs } from './otlp-packed.ts';
import type { FixedAttributes, SpanRecord } from './span-record.ts';

/*
 * Finished spans as an OTLP/HTTP protobuf `ExportTraceServiceRequest`
 * (opentelemetry-proto, trace/v1 and collector/trace/v1), the protocol OpenTelemetry makes the
 * default. Against the JSON encoding a span takes about 40 % of the bytes and less time to write:
 * ids go as raw bytes, times as fixed64, and no field names are written. The fields and their
 * order are those of OpenTelemetry's own protobuf serializer (`@opentelemetry/otlp-transformer`),
 * and a test checks the bytes are identical for the same spans.
 */

/** Protobuf wire types. */
const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

const TWO_TO_32 = 0x1_0000_0000;

/**
 * The byte two hex digits make, by their char codes (`first << 7 | second`, both below 128): one
 * lookup a byte instead of two and a shift.
 */
const HEX_PAIR = new Uint8Array(128 * 128);
{
  const value = new Map<number, number>();
  for (let d = 0; d < 16; d++) {
    value.set('0123456789abcdef'.charCodeAt(d), d);
    value.set('0123456789ABCDEF'.charCodeAt(d), d);
  }
  for (const [high, h] of value) for (const [low, l] of value) HEX_PAIR[(high << 7) | low] = (h << 4) | l;
}

/** A protobuf writer over a growing `Buffer`. */
class ProtoWriter {
  private buf: Buffer;
  pos = 0;

  /**
   * @param start the buffer to write into first, or the size of one to allocate.
   * @param ownMemory each buffer it allocates gets an `ArrayBuffer` of its own (never Node's
   *   shared pool), so the bytes can be transferred to another thread.
   */
  constructor(
    start: number | Buffer,
    private readonly ownMemory = false,
  ) {
    this.buf = typeof start === 'number' ? this.alloc(start) : start;
  }

  private alloc(size: number): Buffer {
    return this.ownMemory ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size);
  }

  /** Makes room for `bytes` more bytes. */
  private room(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const grown = this.alloc(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  tag(field: number, wireType: number): void {
    const key = (field << 3) | wireType;
    if (key < 0x80) {
      this.room(1);
      this.buf[this.pos++] = key;
    } else this.varint(key);
  }

  /** A 32-bit word, little-endian (the caller made room). */
  private word(value: number, at: number): void {
    const buf = this.buf;
    buf[at] = value;
    buf[at + 1] = value >>> 8;
    buf[at + 2] = value >>> 16;
    buf[at + 3] = value >>> 24;
  }

  /** An unsigned varint below 2^32. */
  varint(value: number): void {
    this.room(5);
    let v = value >>> 0;
    while (v > 0x7f) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }

  /** An `int64` varint: any safe integer, negatives in ten bytes of two's complement. */
  int64(value: number): void {
    if (value >= 0 && value < TWO_TO_32) {
      this.varint(value);
      return;
    }
    const magnitude = Math.abs(value);
    let low = magnitude >>> 0;
    let high = Math.floor(magnitude / TWO_TO_32) >>> 0;
    if (value < 0) {
      low = ~low >>> 0;
      high = ~high >>> 0;
      low = (low + 1) >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
    }
    this.room(10);
    while (high > 0 || low > 0x7f) {
      this.buf[this.pos++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    this.buf[this.pos++] = low;
  }

  fixed32(value: number): void {
    this.room(4);
    this.word(value >>> 0, this.pos);
    this.pos += 4;
  }

  /** Epoch milliseconds with a fraction as `fixed64` nanoseconds, without leaving exact integers. */
  unixNanos(epochMs: number): void {
    const [whole, nanos] = splitEpochMs(epochMs);
    // whole * 1e6 + nanos overflows 2^53: split the milliseconds at 2^32 first.
    const wholeHigh = Math.floor(whole / TWO_TO_32);
    const low = (whole - wholeHigh * TWO_TO_32) * 1e6 + nanos; // < 2^53
    const lowWord = low % TWO_TO_32;
    this.room(8);
    this.word(lowWord >>> 0, this.pos);
    this.word((wholeHigh * 1e6 + (low - lowWord) / TWO_TO_32) >>> 0, this.pos + 4);
    this.pos += 8;
  }

  double(value: number): void {
    this.room(8);
    this.pos = this.buf.writeDoubleLE(value, this.pos);
  }

  /** A length-delimited UTF-8 string. */
  string(value: string): void {
    // Short ASCII (names, keys, ids: nearly every string here) is copied a char at a time:
    // `Buffer#write` costs more in its call than in its copy for strings this short.
    const n = value.length;
    if (n < 0x80) {
      this.room(1 + n);
      const buf = this.buf;
      let at = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at++] = c;
      }
      if (i === n) {
        buf[this.pos] = n;
        this.pos = at;
        return;
      }
    }
    const bytes = Buffer.byteLength(value, 'utf8');
    this.varint(bytes);
    this.room(bytes);
    this.pos += this.buf.write(value, this.pos, 'utf8');
  }

  /** Length-delimited bytes given in lowercase hex (trace and span ids, checked when made). */
  hexBytes(hex: string): void {
    const bytes = hex.length >> 1;
    this.room(1 + bytes);
    const buf = this.buf;
    let at = this.pos;
    buf[at++] = bytes;
    for (let i = 0; i < hex.length; i += 2) {
      buf[at++] = HEX_PAIR[(hex.charCodeAt(i) << 7) | hex.charCodeAt(i + 1)]!;
    }
    this.pos = at;
  }

  /**
   * Starts a length-delimited message: reserves `guess` bytes for its length (the right size
   * saves moving the message once its length is known). Returns where it starts.
   */
  begin(guess: number): number {
    this.room(guess);
    this.pos += guess;
    return this.pos - guess;
  }

  /** Ends the message {@link begin} started at `start`: writes its length, moving it if needed. */
  end(start: number, guess: number): void {
    const length = this.pos - start - guess;
    const size =
      length < 0x80 ? 1 : length < 0x4000 ? 2 : length < 0x20_0000 ? 3 : length < 0x1000_0000 ? 4 : 5;
    if (size !== guess) {
      this.room(size - guess);
      this.buf.copyWithin(start + size, start + guess, this.pos);
      this.pos += size - guess;
    }
    let at = start;
    let v = length;
    while (v > 0x7f) {
      this.buf[at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[at] = v;
  }

  /** Bytes of a length below 128 with their length before them (one byte), copied a byte at a time. */
  shortBytes(bytes: Uint8Array): void {
    const n = bytes.length;
    this.room(1 + n);
    const buf = this.buf;
    let at = this.pos;
    buf[at++] = n;
    for (let i = 0; i < n; i++) buf[at++] = bytes[i]!;
    this.pos = at;
  }

  /** Bytes written elsewhere, as they are. */
  raw(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  done(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** An `AnyValue` of an attribute (null array items are empty values, as OpenTelemetry writes them). */
function anyValue(w: ProtoWriter, value: unknown): void {
  switch (typeof value) {
    case 'string':
      w.tag(1, LENGTH_DELIMITED);
      w.string(value);
      return;
    case 'boolean':
      w.tag(2, VARINT);
      w.varint(value ? 1 : 0);
      return;
    case 'number':
      if (Number.isInteger(value) && Math.abs(value) < 2 ** 63) {
        w.tag(3, VARINT);
        w.int64(value);
      } else {
        w.tag(4, FIXED64);
        w.double(value);
      }
      return;
    default:
      if (Array.isArray(value)) {
        w.tag(5, LENGTH_DELIMITED);
        const array = w.begin(1);
        for (const item of value) {
          w.tag(1, LENGTH_DELIMITED);
          const itemAt = w.begin(1);
          if (item !== null && item !== undefined) anyValue(w, item);
          w.end(itemAt, 1);
        }
        w.end(array, 1);
      }
  }
}

/**
 * The encoded `KeyValue` messages of short string attributes, by key and value: a span's
 * attributes are mostly the same few pairs (`rpc.system: clawmesh`, `rpc.method: complete`, the
 * turn's conversation id on each of its spans), and copying 30 bytes costs less than writing
 * them field by field. Bounded: at most {@link MAX_CACHED_KEYS} keys, each keeping its last
 * {@link MAX_VALUES_PER_KEY} values (the map is emptied when full). An empty entry marks a pair
 * too long to keep.
 */
const stringKeyValues = new Map<string, Map<string, Uint8Array>>();
const MAX_CACHED_KEYS = 256;
const MAX_VALUES_PER_KEY = 256;
const NOT_CACHED = new Uint8Array(0);

/** A `KeyValue` of a string as bytes (`key`, then an `AnyValue` of `value`), when below 128 bytes. */
function encodeStringKeyValue(key: string, value: string): Uint8Array {
  const k = Buffer.from(key, 'utf8');
  const v = Buffer.from(value, 'utf8');
  const size = 2 + k.length + 4 + v.length;
  if (size >= 0x80) return NOT_CACHED;
  const out = new Uint8Array(size);
  out[0] = (1 << 3) | LENGTH_DELIMITED;
  out[1] = k.length;
  out.set(k, 2);
  let at = 2 + k.length;
  out[at++] = (2 << 3) | LENGTH_DELIMITED;
  out[at++] = 2 + v.length;
  out[at++] = (1 << 3) | LENGTH_DELIMITED;
  out[at++] = v.length;
  out.set(v, at);
  return out;
}

/** The cached `KeyValue` of a short string attribute; `undefined` when it is written in full. */
function cachedStringKeyValue(key: string, value: string): Uint8Array | undefined {
  if (key.length + value.length >= 0x80) return undefined;
  let byValue = stringKeyValues.get(key);
  if (byValue === undefined) {
    if (stringKeyValues.size >= MAX_CACHED_KEYS) return undefined;
    byValue = new Map();
    stringKeyValues.set(key, byValue);
  }
  let body = byValue.get(value);
  if (body === undefined) {
    body = encodeStringKeyValue(key, value);
    if (byValue.size >= MAX_VALUES_PER_KEY) byValue.clear();
    byValue.set(value, body);
  }
  return body === NOT_CACHED ? undefined : body;
}

/** A repeated `KeyValue` field. */
function keyValue(w: ProtoWriter, field: number, key: string, value: unknown): void {
  if (typeof value === 'string') {
    const body = cachedStringKeyValue(key, value);
    if (body !== undefined) {
      w.tag(field, LENGTH_DELIMITED);
      w.shortBytes(body);
      return;
    }
  }
  w.tag(field, LENGTH_DELIMITED);
  const at = w.begin(1);
  w.tag(1, LENGTH_DELIMITED);
  w.string(key);
  w.tag(2, LENGTH_DELIMITED);
  const valueAt = w.begin(1);
  anyValue(w, value);
  w.end(valueAt, 1);
  w.end(at, 1);
}

/** Appends each attribute of `attributes` (the null and undefined ones left out) as KeyValue `field`. */
function attributeList(w: ProtoWriter, field: number, attributes: Attributes | undefined): void {
  if (!attributes) return;
  for (const key in attributes) {
    const value = attributes[key];
    if (value !== undefined && value !== null) keyValue(w, field, key, value);
  }
}

/** Encodes fixed attributes as a span's `attributes` fields (9) once, and keeps the bytes with them. */
function encodeFixed(fixed: FixedAttributes): Uint8Array {
  const w = new ProtoWriter(256);
  attributeList(w, 9, fixed.attributes);
  fixed.proto = Uint8Array.from(w.done());
  return fixed.proto;
}

/** Appends one span as the `spans` field (2) of a `ScopeSpans`. */
function writeSpan(w: ProtoWriter, span: SpanRecord): void {
  w.tag(2, LENGTH_DELIMITED);
  const spanAt = w.begin(2);
  w.tag(1, LENGTH_DELIMITED);
  w.hexBytes(span.traceId);
  w.tag(2, LENGTH_DELIMITED);
  w.hexBytes(span.spanId);
  if (span.parentSpanId) {
    w.tag(4, LENGTH_DELIMITED);
    w.hexBytes(span.parentSpanId);
  }
  w.tag(5, LENGTH_DELIMITED);
  w.string(span.name);
  w.tag(6, VARINT);
  w.varint(span.kind + 1);
  w.tag(7, FIXED64);
  w.unixNanos(span.startMs);
  w.tag(8, FIXED64);
  w.unixNanos(span.endMs);
  if (span.fixed) w.raw(span.fixed.proto ?? encodeFixed(span.fixed));
  attributeList(w, 9, span.attributes);
  const late = span.late;
  if (late) for (let i = 0; i < late.length; i += 2) keyValue(w, 9, late[i] as string, late[i + 1]);
  w.tag(10, VARINT); // dropped_attributes_count
  w.varint(0);
  for (const event of span.events) {
    w.tag(11, LENGTH_DELIMITED);
    const eventAt = w.begin(1);
    w.tag(1, FIXED64);
    w.unixNanos(event.timeMs);
    w.tag(2, LENGTH_DELIMITED);
    w.string(event.name);
    attributeList(w, 3, event.attributes);
    w.tag(4, VARINT);
    w.varint(0);
    w.end(eventAt, 1);
  }
  w.tag(12, VARINT); // dropped_events_count
  w.varint(0);
  w.tag(14, VARINT); // dropped_links_count
  w.varint(0);
  w.tag(15, LENGTH_DELIMITED); // status
  const status = w.begin(1);
  if (span.status.message) {
    w.tag(2, LENGTH_DELIMITED);
    w.string(span.status.message);
  }
  w.tag(3, VARINT);
  w.varint(span.status.code);
  w.end(status, 1);
  w.tag(16, FIXED32); // flags
  w.fixed32(spanFlags(span));
  w.end(spanAt, 2);
}

/** Spans already encoded (the `spans` fields of a `ScopeSpans`, one after another), and how many. */
export interface EncodedSpans {
  bytes: Uint8Array;
  count: number;
}

/**
 * Encodes spans as they end: {@link ProtoSpanEncoder.take} hands the bytes of the spans so far
 * over and starts afresh, in the memory `nextBuffer` gives (memory shared with the export worker
 * and used again), else in memory of its own (to be transferred without a copy).
 */
export interface ProtoSpanEncoder {
  add(span: SpanRecord): void;
  take(): EncodedSpans;
}

/**
 * Creates a {@link ProtoSpanEncoder}; `expectedBytes` sizes each batch's first buffer when it
 * allocates one. `nextBuffer` gives the buffer of each batch, or `undefined` when it has none
 * free; a batch that outgrows it goes on in a larger buffer of its own.
 */
export function createProtoSpanEncoder(
  expectedBytes = 512 * 1024,
  nextBuffer?: () => Buffer | undefined,
): ProtoSpanEncoder {
  const newWriter = () => new ProtoWriter(nextBuffer?.() ?? expectedBytes, true);
  let writer = newWriter();
  let count = 0;
  return {
    add(span) {
      writeSpan(writer, span);
      count++;
    },
    take() {
      const taken = { bytes: writer.done(), count };
      writer = newWriter();
      count = 0;
      return taken;
    },
  };
}

/**
 * An OTLP `ExportTraceServiceRequest` of one resource and the `clawmesh` scope around spans
 * encoded by a {@link ProtoSpanEncoder}.
 */
export function encodeProtoEnvelope(resource: Attributes, spans: Uint8Array): Buffer {
  const w = new ProtoWriter(spans.length + 1024);
  w.tag(1, LENGTH_DELIMITED); // resource_spans
  const resourceSpans = w.begin(3);
  w.tag(1, LENGTH_DELIMITED); // resource
  const resourceAt = w.begin(1);
  attributeList(w, 1, resource);
  w.tag(2, VARINT); // dropped_attributes_count
  w.varint(0);
  w.end(resourceAt, 1);
  w.tag(2, LENGTH_DELIMITED); // scope_spans
  const scopeSpans = w.begin(3);
  w.tag(1, LENGTH_DELIMITED); // scope
  const scope = w.begin(1);
  w.tag(1, LENGTH_DELIMITED);
  w.string('clawmesh');
  w.end(scope, 1);
  w.raw(spans);
  w.end(scopeSpans, 3);
  w.end(resourceSpans, 3);
  return w.done();
}

/** An OTLP `ExportTraceServiceRequest` of one resource and the `clawmesh` scope, as protobuf bytes. */
export function encodeProtoRequest(resource: Attributes, spans: readonly SpanRecord[]): Buffer {
  const encoder = createProtoSpanEncoder();
  for (const span of spans) encoder.add(span);
  return encodeProtoEnvelope(resource, encoder.take().bytes);
}
