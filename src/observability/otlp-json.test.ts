import { type Attributes, type HrTime, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { encodeRequest, packSpan, unixNanos } from './otlp-json.ts';
import { RecordingSpan } from './recording-span.ts';
import type { SpanRecord } from './span-record.ts';

/** Epoch milliseconds as OpenTelemetry's `[seconds, nanoseconds]`. */
function hrTimeOf(epochMs: number): HrTime {
  const seconds = Math.floor(epochMs / 1000);
  return [seconds, Math.round((epochMs - seconds * 1000) * 1e6)];
}

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
    attributes: record.attributes,
    links: [],
    events: record.events.map((event) => ({
      name: event.name,
      time: hrTimeOf(event.timeMs),
      ...(event.attributes ? { attributes: event.attributes } : {}),
      droppedAttributesCount: 0,
    })),
    ended: true,
    resource: resource as unknown as ReadableSpan['resource'],
    instrumentationScope: { name: 'clawmesh' },
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
];

describe('OTLP JSON encoding', () => {
  it('gives the same request as OpenTelemetry’s own JSON serializer', () => {
    const resource = { attributes: { 'service.name': 'clawmesh-all', 'service.instance.id': 'i-1' } };
    const packed: unknown[] = [];
    for (const record of records) packSpan(record, packed);
    // Packed spans are primitives only: what a worker gets is exactly what was packed.
    expect(structuredClone(packed)).toEqual(packed);
    const ours = JSON.parse(encodeRequest(resource.attributes, structuredClone(packed)).toString('utf8'));
    const theirs = JSON.parse(
      Buffer.from(
        JsonTraceSerializer.serializeRequest(records.map((r) => toReadableSpan(r, resource)))!,
      ).toString('utf8'),
    );
    expect(ours).toEqual(theirs);
    expect(ours.resourceSpans[0].scopeSpans[0].spans).toHaveLength(2);
  });

  it('writes times as nanoseconds since the epoch, in decimal strings', () => {
    expect(unixNanos(1764120000123.5)).toBe('1764120000123500000');
    expect(unixNanos(1764120000000)).toBe('1764120000000000000');
    expect(unixNanos(0.9999999)).toBe('1000000');
    expect(unixNanos(12.000001)).toBe('12000001');
  });
});

describe('RecordingSpan', () => {
  const started = () => {
    const ended: SpanRecord[] = [];
    const span = new RecordingSpan(
      'turn',
      SpanKind.SERVER,
      { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 },
      { spanId: 'c'.repeat(16), isRemote: false },
      { first: 1 },
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
      attributes: { first: 1, second: 'two', third: true },
      status: { code: SpanStatusCode.ERROR, message: 'failed' },
    });
    expect(record.parentIsRemote).toBeUndefined();
    expect(record.attributes).not.toHaveProperty('late');
    expect(record.events.map((e) => e.name)).toEqual(['checkpoint', 'exception']);
    expect(record.events[1]!.attributes).toMatchObject({
      'exception.type': 'TypeError',
      'exception.message': 'bad input',
    });
    expect(record.endMs).toBeGreaterThanOrEqual(record.startMs);
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
