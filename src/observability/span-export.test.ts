import { existsSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type OtlpKeyValue, type OtlpTraceRequest, readTraceRequest } from '../../test/support/otlp.ts';
import { createSpanExport, SPAN_BATCH_SIZE, type SpanExport, type SpanExportOptions } from './span-export.ts';
import type { SpanRecord } from './span-record.ts';

/** One POST the receiver got. */
interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: OtlpTraceRequest;
}

/** A loopback OTLP/HTTP receiver: answers `status` (200 `{}` by default), or holds the answer when `hold` is set. */
let server: Server;
let url: string;
const requests: Received[] = [];
let status = 200;
let hold = false;
const held: ServerResponse[] = [];

const answer = (res: ServerResponse) => {
  res
    .writeHead(status, { 'content-type': 'application/json' })
    .end(status === 200 ? '{}' : '{"message":"no"}');
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: readTraceRequest(Buffer.concat(chunks), req.headers),
      });
      if (hold) held.push(res);
      else answer(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Exports a test made; shut down after it (a test that shuts one down itself takes it out). */
const open: SpanExport[] = [];

beforeEach(() => {
  requests.length = 0;
  status = 200;
  hold = false;
});

afterEach(async () => {
  hold = false;
  for (const res of held.splice(0)) answer(res);
  await Promise.all(open.splice(0).map((spans) => spans.shutdown()));
});

const resource = { 'service.name': 'clawmesh-test', 'service.instance.id': 'i-1' };

/** The options of the tests' exports: in this thread, the timer a minute away. */
const optionsWith = (options: Partial<SpanExportOptions> = {}): SpanExportOptions => ({
  url,
  resource,
  protocol: 'http/protobuf',
  flushDelayMs: 60_000,
  inThread: true,
  ...options,
});

/** An export the tests shut down after each test. */
async function started(options: Partial<SpanExportOptions> = {}): Promise<SpanExport> {
  const spans = await createSpanExport(optionsWith(options));
  open.push(spans);
  return spans;
}

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const T0 = 1_764_120_000_000;

/** A finished span of trace {@link TRACE_ID}, its span id made from `n`. */
function record(n: number, overrides: Partial<SpanRecord> = {}): SpanRecord {
  return {
    name: `span ${n}`,
    kind: SpanKind.INTERNAL,
    traceId: TRACE_ID,
    spanId: n.toString(16).padStart(16, '0'),
    traceFlags: 1,
    startMs: T0 + n,
    endMs: T0 + n + 0.5,
    attributes: { index: n },
    status: { code: SpanStatusCode.UNSET },
    events: [],
    ...overrides,
  };
}

/** Every span the receiver got, in the order they came. */
const spansReceived = () =>
  requests.flatMap((r) => r.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));

/** OTLP `KeyValue`s as a plain object of their values. */
const valuesOf = (keyValues: OtlpKeyValue[]): Record<string, unknown> =>
  Object.fromEntries(keyValues.map(({ key, value }) => [key, Object.values(value)[0]]));

describe('createSpanExport', () => {
  it('exports in this thread under vitest: the compiled worker is not next to the sources', async () => {
    const workerFile = fileURLToPath(new URL('./trace-export-worker.js', import.meta.url));
    expect(existsSync(workerFile)).toBe(false);
    // Without inThread it would use the worker if it were there: it is not.
    const spans = await started({ inThread: false });
    expect(spans.mode).toBe('thread');
    const forced = await started({ inThread: true });
    expect(forced.mode).toBe('thread');
    // And the in-thread export really sends.
    spans.record(record(1));
    await spans.flush();
    expect(spansReceived().map((s) => s.name)).toEqual(['span 1']);
  });

  it.each([
    ['http/protobuf', 'application/x-protobuf'],
    ['http/json', 'application/json'],
  ] as const)('sends the recorded spans as OTLP %s on flush', async (protocol, contentType) => {
    const spans = await started({ protocol });
    const records = [
      record(1, {
        name: 'POST /v1/messages',
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': 'POST', 'http.route': '/v1/messages' },
      }),
      record(2, {
        name: 'turn',
        kind: SpanKind.INTERNAL,
        parentSpanId: record(1).spanId,
        attributes: { 'clawmesh.turn': 7, cached: false, ratio: 0.5 },
      }),
      record(3, {
        name: 'tool.call inventory.lookupStock',
        kind: SpanKind.CLIENT,
        parentSpanId: record(2).spanId,
        attributes: { 'tool.name': 'inventory.lookupStock' },
        status: { code: SpanStatusCode.ERROR, message: 'out of stock' },
      }),
    ];
    for (const r of records) spans.record(r);
    expect(requests).toHaveLength(0); // still queued: the timer is a minute away
    await spans.flush();

    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request!.method).toBe('POST');
    expect(request!.path).toBe('/v1/traces');
    expect(request!.headers['content-type']).toBe(contentType);
    expect(request!.body.resourceSpans).toHaveLength(1);
    const resourceSpans = request!.body.resourceSpans[0]!;
    expect(valuesOf(resourceSpans.resource.attributes)).toEqual(resource);
    expect(resourceSpans.scopeSpans.map((s) => s.scope.name)).toEqual(['clawmesh']);

    const sent = spansReceived();
    expect(sent).toHaveLength(3);
    expect(sent.map((s) => s.name)).toEqual(records.map((r) => r.name));
    for (const [i, span] of sent.entries()) {
      const r = records[i]!;
      expect(span.traceId).toBe(TRACE_ID);
      expect(span.spanId).toBe(r.spanId);
      expect(span.parentSpanId).toBe(r.parentSpanId);
      expect(span.kind).toBe(r.kind + 1); // OTLP's SpanKind counts from UNSPECIFIED = 0
      expect(valuesOf(span.attributes)).toEqual(r.attributes);
      expect(span.startTimeUnixNano).toBe(`${r.startMs}000000`);
      expect(span.endTimeUnixNano).toBe(`${Math.floor(r.endMs)}500000`);
      expect(span.flags & 0xff).toBe(1);
    }
    expect(sent.map((s) => s.kind)).toEqual([2, 1, 3]); // SERVER, INTERNAL, CLIENT
    expect(sent[0]!.parentSpanId).toBeUndefined();
    expect(sent[2]!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'out of stock' });
    expect(spans.lost).toBe(0);
  });

  it('sends a full batch of spans at once, without waiting for the timer', async () => {
    const spans = await started({ flushDelayMs: 60_000 });
    for (let n = 1; n < SPAN_BATCH_SIZE; n++) spans.record(record(n));
    // One span short of a batch: nothing goes before the timer.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(requests).toHaveLength(0);
    spans.record(record(SPAN_BATCH_SIZE));
    await vi.waitFor(() => expect(requests).toHaveLength(1), { timeout: 1000, interval: 10 });
    const sent = spansReceived();
    expect(sent).toHaveLength(SPAN_BATCH_SIZE);
    expect(sent[0]!.name).toBe('span 1');
    expect(sent.at(-1)!.name).toBe(`span ${SPAN_BATCH_SIZE}`);
    // The batch went: nothing is left for flush to send.
    await spans.flush();
    expect(requests).toHaveLength(1);
    expect(spans.lost).toBe(0);
  });

  it('sends queued spans when the flush delay passes, without flush', async () => {
    const spans = await started({ flushDelayMs: 50 });
    spans.record(record(1));
    spans.record(record(2));
    expect(requests).toHaveLength(0);
    await vi.waitFor(() => expect(spansReceived()).toHaveLength(2), { timeout: 1000, interval: 10 });
    expect(requests).toHaveLength(1); // one batch, both spans
    expect(spansReceived().map((s) => s.spanId)).toEqual([record(1).spanId, record(2).spanId]);
    // Spans recorded later start a new timer.
    spans.record(record(3));
    await vi.waitFor(() => expect(requests).toHaveLength(2), { timeout: 1000, interval: 10 });
    expect(spansReceived().map((s) => s.name)).toEqual(['span 1', 'span 2', 'span 3']);
  });

  it('counts the spans of a rejected export as lost', async () => {
    status = 400; // not retryable: the export fails at once
    const spans = await started();
    for (let n = 1; n <= 3; n++) spans.record(record(n));
    expect(spans.lost).toBe(0);
    await spans.flush();
    expect(requests).toHaveLength(1); // tried once: 400 is not retried
    expect(spansReceived()).toHaveLength(3);
    expect(spans.lost).toBe(3);

    // A later export that succeeds loses nothing more.
    status = 200;
    spans.record(record(4));
    await spans.flush();
    expect(requests).toHaveLength(2);
    expect(spans.lost).toBe(3);
  });

  it('drops and counts spans past a full batch while 8 exports are in flight', async () => {
    hold = true; // the endpoint takes the requests but does not answer yet
    const spans = await started({ flushDelayMs: 60_000 });
    let n = 0;
    for (let batch = 0; batch < 8; batch++)
      for (let i = 0; i < SPAN_BATCH_SIZE; i++) spans.record(record(++n));
    await vi.waitFor(() => expect(held).toHaveLength(8), { timeout: 1500, interval: 10 });
    // A ninth full batch waits in the queue (no ninth request) ...
    for (let i = 0; i < SPAN_BATCH_SIZE; i++) spans.record(record(++n));
    expect(spans.lost).toBe(0);
    // ... and the spans past it are dropped.
    spans.record(record(++n));
    spans.record(record(++n));
    expect(spans.lost).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(requests).toHaveLength(8);

    hold = false;
    for (const res of held.splice(0)) answer(res);
    await spans.flush();
    expect(requests).toHaveLength(9);
    expect(spansReceived()).toHaveLength(9 * SPAN_BATCH_SIZE);
    expect(spans.lost).toBe(2);
  });

  it('keeps a timed batch queued while 8 exports are in flight, and sends it once one is free', async () => {
    hold = true;
    const spans = await started({ flushDelayMs: 40 });
    let n = 0;
    for (let batch = 0; batch < 8; batch++)
      for (let i = 0; i < SPAN_BATCH_SIZE; i++) spans.record(record(++n));
    await vi.waitFor(() => expect(held).toHaveLength(8), { timeout: 1500, interval: 10 });
    spans.record(record(++n));
    // Several timer ticks pass with every slot taken: no ninth request.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(requests).toHaveLength(8);
    hold = false;
    for (const res of held.splice(0)) answer(res);
    await vi.waitFor(() => expect(requests).toHaveLength(9), { timeout: 1500, interval: 10 });
    expect(spans.lost).toBe(0);
  });

  it('writes each batch into memory used again once its export is done, never mixing two batches', async () => {
    const spans = await started();
    // Five batches: the first buffers come back after their exports and are written again.
    for (let batch = 0; batch < 5; batch++) {
      for (let i = 1; i <= 3; i++) spans.record(record(batch * 10 + i));
      await spans.flush();
    }
    // A span larger than a shared buffer goes on in memory of its own, and the next batch is whole.
    spans.record(record(100, { attributes: { big: 'x'.repeat(1_500_000) } }));
    spans.record(record(101));
    await spans.flush();
    spans.record(record(102));
    await spans.flush();
    const sent = spansReceived();
    expect(sent.map((s) => s.name)).toEqual([
      ...[0, 1, 2, 3, 4].flatMap((batch) => [1, 2, 3].map((i) => `span ${batch * 10 + i}`)),
      'span 100',
      'span 101',
      'span 102',
    ]);
    expect(valuesOf(sent[15]!.attributes).big).toHaveLength(1_500_000);
    expect(valuesOf(sent[17]!.attributes)).toEqual({ index: 102 });
    expect(requests).toHaveLength(7);
    expect(spans.lost).toBe(0);
  });

  it('ignores spans recorded after shutdown, and a second shutdown', async () => {
    const spans = await started({ flushDelayMs: 20 });
    spans.record(record(1));
    await spans.shutdown();
    spans.record(record(2));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await spans.flush();
    await spans.shutdown();
    expect(spansReceived().map((s) => s.name)).toEqual(['span 1']);
  });

  it('flushes what is queued on shutdown', async () => {
    const spans = await createSpanExport(optionsWith());
    spans.record(record(1));
    spans.record(record(2, { parentSpanId: record(1).spanId }));
    expect(requests).toHaveLength(0);
    await spans.shutdown();
    expect(requests).toHaveLength(1);
    expect(spansReceived().map((s) => [s.name, s.parentSpanId])).toEqual([
      ['span 1', undefined],
      ['span 2', record(1).spanId],
    ]);
    expect(spans.lost).toBe(0);
  });
});
