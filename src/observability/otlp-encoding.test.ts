import { type Attributes, type HrTime, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { decodeTraceRequest } from '../../test/support/otlp.ts';
import { encodeJsonRequest, unixNanos } from './otlp-json.ts';
import { packSpan } from './otlp-packed.ts';
import { encodeProtoRequest } from './otlp-proto.ts';
import { otlpProtocolFromEnv } from './otlp-sink.ts';
import { RecordingSpan } from './recording-span.ts';
import { fixedAttributes, type SpanRecord, spanAttributes } from './span-record.ts';

/** Epoch milliseconds as OpenTelemetry's `[seconds, nanoseconds]`. */
function hrTimeOf(epochMs: number): HrTime {
  const seconds = Math.floor(epochMs / 1000);
  return [seconds, Math.round((epochMs - seconds * 1000) * 1e6)];
}

/** One scope object: OpenTelemetry's serializers group spans by its identity. */
const SCOPE = { name: 'clawmesh' };

/** A record as the SDK's `ReadableSpan`, what OpenTelemetry's own JSON serializer takes. */
function toReadableSpan(record: SpanRecord, resource: { attributes: Attributes }): ReadableSpan {
  const spanContext = { traceId: record.traceId, spanId: record.spanId, traceFlags: record.traceFlags };
  return {
    name: record.name,
    kind: record.kind,
    spanContext: () => spanContext,
    ...(record.parentSpanId
      ? {
          parentSpanContext: {
            traceId: record.traceId,
            spanId: record.parentSpanId,
            traceFlags: record.traceFlags,
            isRemote: record.parentIsRemote === true,
          },
        }
      : {}),
    startTime: hrTimeOf(record.startMs),
    endTime: hrTimeOf(record.endMs),
    duration: hrTimeOf(record.endMs - record.startMs),
    status: record.status,
    attributes: spanAttributes(record),
    links: [],
    events: record.events.map((event) => ({
      name: event.name,
      time: hrTimeOf(event.timeMs),
      ...(event.attributes ? { attributes: event.attributes } : {}),
      droppedAttributesCount: 0,
    })),
    ended: true,
    resource: resource as unknown as ReadableSpan['resource'],
    instrumentationScope: SCOPE,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

const records: SpanRecord[] = [
  {
    name: 'POST /v1/messages',
    kind: SpanKind.SERVER,
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: 1,
    startMs: 1764120000123.5,
    endMs: 1764120000125.25,
    attributes: { 'http.request.method': 'POST', 'http.route': '/v1/messages', 'clawmesh.channel': 'api' },
    status: { code: SpanStatusCode.UNSET },
    events: [],
  },
  {
    name: 'tool.call inventory.lookupStock',
    kind: SpanKind.CLIENT,
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: '00f067aa0ba902b7',
    parentSpanId: 'b7ad6b7169203331',
    parentIsRemote: true,
    traceFlags: 1,
    startMs: 1764120000124,
    endMs: 1764120000124.75,
    attributes: {
      count: 3,
      ratio: 0.25,
      ok: false,
      tags: ['a', 'b'],
      quoted: 'say "hi"\n\u00e9',
    },
    status: { code: SpanStatusCode.ERROR, message: 'stock service said "no"' },
    events: [
      { name: 'exception', timeMs: 1764120000124.5, attributes: { 'exception.message': 'boom' } },
      { name: 'retry', timeMs: 1764120000124.625 },
    ],
  },
  {
    // Fixed attributes of its kind, its own, and two set after it started.
    name: 'model.call',
    kind: SpanKind.SERVER,
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: '1234567890abcdef',
    parentSpanId: 'b7ad6b7169203331',
    traceFlags: 1,
    startMs: 1764120000124.5,
    endMs: 1764120000126,
    fixed: fixedAttributes({ 'rpc.system': 'clawmesh', 'rpc.service': 'models', 'rpc.method': 'complete' }),
    attributes: { 'clawmesh.conversation_id': 'c_1', 'gen_ai.request.model': 'fast' },
    late: ['http.response.status_code', 200, 'clawmesh.cache', 'miss'],
    status: { code: SpanStatusCode.UNSET },
    events: [],
  },
];

const resource = { attributes: { 'service.name': 'clawmesh-all', 'service.instance.id': 'i-1' } };

/** Packs records as the turn's thread does, and copies them as the message to the worker does. */
function packed(list: readonly SpanRecord[]): unknown[] {
  const out: unknown[] = [];
  for (const record of list) packSpan(record, out);
  // Packed spans are primitives only: what a worker gets is exactly what was packed.
  expect(structuredClone(out)).toEqual(out);
  return structuredClone(out);
}

const readable = (list: readonly SpanRecord[]) => list.map((r) => toReadableSpan(r, resource));

/** Many spans with values that need long lengths, signed and large integers, and UTF-8. */
function manyRecords(): SpanRecord[] {
  return Array.from({ length: 600 }, (_, i) => ({
    ...records[i % 2]!,
    spanId: i.toString(16).padStart(16, '0'),
    name: i % 3 === 0 ? `span ${'é'.repeat(i % 50)}` : `span-${i}`,
    startMs: 1764120000123.5 + i,
    endMs: 1764120000124.25 + i,
    attributes: {
      ...records[i % 2]!.attributes,
      index: i,
      negative: -i - 1,
      large: 2 ** 40 + i,
      text: 'x'.repeat((i * 37) % 300),
      ...(i === 7 ? { huge: 'y'.repeat(20_000) } : {}),
    },
  }));
}

describe('OTLP JSON encoding', () => {
  it('gives the same request as OpenTelemetry’s own JSON serializer', () => {
    const ours = JSON.parse(
      encodeJsonRequest(resource.attributes, packed(records), records.length).toString('utf8'),
    );
    const theirs = JSON.parse(
      Buffer.from(JsonTraceSerializer.serializeRequest(readable(records))!).toString('utf8'),
    );
    expect(ours).toEqual(theirs);
    expect(ours.resourceSpans[0].scopeSpans[0].spans).toHaveLength(3);
  });

  it('writes times as nanoseconds since the epoch, in decimal strings', () => {
    expect(unixNanos(1764120000123.5)).toBe('1764120000123500000');
    expect(unixNanos(1764120000000)).toBe('1764120000000000000');
    expect(unixNanos(0.9999999)).toBe('1000000');
    expect(unixNanos(12.000001)).toBe('12000001');
  });
});

describe('OTLP protobuf encoding', () => {
  it('writes the same bytes as OpenTelemetry’s own protobuf serializer', () => {
    const ours = encodeProtoRequest(resource.attributes, records);
    const theirs = Buffer.from(ProtobufTraceSerializer.serializeRequest(readable(records))!);
    expect(ours.toString('hex')).toBe(theirs.toString('hex'));
    // Fixed attributes are encoded once and copied after: a second request is the same.
    expect(records[2]!.fixed!.proto).toBeDefined();
    expect(encodeProtoRequest(resource.attributes, records).equals(ours)).toBe(true);
    const modelCall = decodeTraceRequest(ours).resourceSpans[0]!.scopeSpans[0]!.spans[2]!;
    expect(modelCall.attributes.map((a) => a.key)).toEqual([
      'rpc.system',
      'rpc.service',
      'rpc.method',
      'clawmesh.conversation_id',
      'gen_ai.request.model',
      'http.response.status_code',
      'clawmesh.cache',
    ]);
  });

  it('stays identical over a batch of 600 spans with long, multi-byte and numeric values', () => {
    const many = manyRecords();
    const ours = encodeProtoRequest(resource.attributes, many);
    const theirs = Buffer.from(ProtobufTraceSerializer.serializeRequest(readable(many))!);
    expect(ours.equals(theirs)).toBe(true);
    // And it reads back as the JSON encoding of the same spans.
    const json = JSON.parse(
      encodeJsonRequest(resource.attributes, packed(many), many.length).toString('utf8'),
    );
    const decoded = decodeTraceRequest(ours);
    const spans = decoded.resourceSpans[0]!.scopeSpans[0]!.spans;
    expect(spans).toHaveLength(600);
    expect(spans[7]).toMatchObject({
      spanId: json.resourceSpans[0].scopeSpans[0].spans[7].spanId,
      name: json.resourceSpans[0].scopeSpans[0].spans[7].name,
      startTimeUnixNano: json.resourceSpans[0].scopeSpans[0].spans[7].startTimeUnixNano,
    });
    expect(spans[7]!.attributes.find((a) => a.key === 'huge')!.value.stringValue).toHaveLength(20_000);
    expect(spans[9]!.attributes.find((a) => a.key === 'negative')!.value.intValue).toBe(-10);
    expect(spans[3]!.name).toBe(`span ${'é'.repeat(3)}`);
  });

  it('stays identical when short string attributes repeat, past the cache of each key, and near 128 bytes', () => {
    // Short string pairs are copied from a cache (at most 256 values a key): 400 conversation
    // ids cycle through it, and two-byte characters put some pairs just over its 127-byte limit.
    const repeated = Array.from({ length: 1200 }, (_, i) => ({
      ...records[i % 2]!,
      spanId: (i + 1).toString(16).padStart(16, '0'),
      attributes: {
        'clawmesh.conversation_id': `c_${(i % 400).toString(16).padStart(24, '0')}`,
        'rpc.system': 'clawmesh',
        accent: 'ü'.repeat(i % 70),
        '': i % 5 === 0 ? '' : 'v',
      },
    }));
    for (let pass = 0; pass < 2; pass++) {
      const ours = encodeProtoRequest(resource.attributes, repeated);
      const theirs = Buffer.from(ProtobufTraceSerializer.serializeRequest(readable(repeated))!);
      expect(ours.equals(theirs)).toBe(true);
    }
  });

  it('is smaller than the JSON encoding', () => {
    const many = manyRecords().slice(8);
    const proto = encodeProtoRequest(resource.attributes, many).length;
    const json = encodeJsonRequest(resource.attributes, packed(many), many.length).length;
    expect(proto).toBeLessThan(json * 0.8);
  });
});

describe('RecordingSpan', () => {
  const fixed = fixedAttributes({ 'rpc.system': 'clawmesh', 'rpc.method': 'handle' });
  const started = () => {
    const ended: SpanRecord[] = [];
    const span = new RecordingSpan(
      'turn',
      SpanKind.SERVER,
      'a'.repeat(32),
      'b'.repeat(16),
      1,
      { spanId: 'c'.repeat(16), isRemote: false },
      { first: 1 },
      fixed,
      (record) => ended.push(record),
    );
    return { span, ended };
  };

  it('records once, on end, with its attributes, status, events and parent', () => {
    const { span, ended } = started();
    span.setAttribute('second', 'two').setAttributes({ third: true });
    span.addEvent('checkpoint', { step: 1 });
    span.recordException(new TypeError('bad input'));
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'failed' });
    span.updateName('turn (renamed)');
    expect(span.isRecording()).toBe(true);
    span.end();
    span.end();
    span.setAttribute('late', 1);
    expect(span.isRecording()).toBe(false);
    expect(ended).toHaveLength(1);
    const record = ended[0]!;
    expect(record).toMatchObject({
      name: 'turn (renamed)',
      parentSpanId: 'c'.repeat(16),
      status: { code: SpanStatusCode.ERROR, message: 'failed' },
    });
    expect(spanAttributes(record)).toEqual({
      'rpc.system': 'clawmesh',
      'rpc.method': 'handle',
      first: 1,
      second: 'two',
      third: true,
    });
    expect(record.parentIsRemote).toBeUndefined();
    expect(spanAttributes(record)).not.toHaveProperty('late');
    expect(record.events.map((e) => e.name)).toEqual(['checkpoint', 'exception']);
    expect(record.events[1]!.attributes).toMatchObject({
      'exception.type': 'TypeError',
      'exception.message': 'bad input',
    });
    expect(record.endMs).toBeGreaterThanOrEqual(record.startMs);
  });

  it('lets a later value replace a given, fixed or late attribute, leaving the fixed ones of other spans alone', () => {
    const { span, ended } = started();
    span.setAttribute('first', 2).setAttribute('added', 'a').setAttribute('added', 'b');
    span.setAttribute('rpc.method', 'renamed');
    span.end();
    expect(spanAttributes(ended[0]!)).toEqual({
      'rpc.system': 'clawmesh',
      'rpc.method': 'renamed',
      first: 2,
      added: 'b',
    });
    expect(fixed.attributes['rpc.method']).toBe('handle');
    const other = started();
    other.span.end();
    expect(spanAttributes(other.ended[0]!)['rpc.method']).toBe('handle');
  });

  it('keeps OK once set and never lets UNSET replace a status', () => {
    const { span, ended } = started();
    span.setStatus({ code: SpanStatusCode.OK });
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'too late' });
    span.setStatus({ code: SpanStatusCode.UNSET });
    span.end();
    expect(ended[0]!.status).toEqual({ code: SpanStatusCode.OK });
  });
});

describe('the OTLP protocol from the environment', () => {
  it('is http/protobuf by default, http/json when asked, the traces variable first', () => {
    expect(otlpProtocolFromEnv({})).toEqual({ protocol: 'http/protobuf' });
    expect(otlpProtocolFromEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toEqual({
      protocol: 'http/json',
    });
    expect(
      otlpProtocolFromEnv({
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
      }),
    ).toEqual({ protocol: 'http/protobuf' });
  });

  it('falls back to http/protobuf with a warning naming the variable for anything else', () => {
    const { protocol, warning } = otlpProtocolFromEnv({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' });
    expect(protocol).toBe('http/protobuf');
    expect(warning).toMatch(/OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc" is not supported/);
  });
});
