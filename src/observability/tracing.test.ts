import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp } from '../../test/support/app.ts';
import { readTraceRequest } from '../../test/support/otlp.ts';
import { createCallContext } from '../core/context.ts';
import { ClawmeshError } from '../core/errors.ts';
import { registerOpenAIRoutes } from '../models/api/routes.ts';
import { createLocalProvider } from '../models/providers/local/provider.ts';
import { createModelsService } from '../models/service.ts';
import type { ModelProvider } from '../models/types.ts';
import { createTransport } from '../transport/index.ts';
import { traceTransport } from './rpc-tracing.ts';
import { inEdgeSpan, inEventSpan, initTracing, inSpan, spanIdOf, tracing } from './tracing.ts';

/** A loopback OTLP/HTTP receiver counting the spans posted to it. */
let server: Server;
let endpoint: string;
const received: {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  status?: { code: number; message?: string };
  attributes?: { key: string; value: { stringValue?: string; intValue?: number | string } }[];
}[] = [];
let posts = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      posts += 1;
      const payload = readTraceRequest(Buffer.concat(chunks), req.headers);
      for (const resource of payload.resourceSpans)
        for (const scope of resource.scopeSpans) received.push(...scope.spans);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await tracing().shutdown();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT)', () => {
  it('stays disabled and makes every helper a pass-through', async () => {
    const traces = await initTracing({ serviceName: 'clawmesh-test', instanceId: 'i-1' });
    expect(traces.enabled).toBe(false);
    expect(traces.tracer).toBeUndefined();
    const ctx = createCallContext();
    const seen: unknown[] = [];
    const result = await inSpan('work', ctx, 'server', {}, async (inner, span) => {
      seen.push(inner, span);
      return 42;
    });
    expect(result).toBe(42);
    expect(seen[0]).toBe(ctx); // the same context object: nothing was added
    expect(seen[1]).toBeUndefined();
    expect(await inEdgeSpan('edge', ctx, {}, async (inner) => inner)).toBe(ctx);
    expect(await inEventSpan('event process', ctx.traceparent, {}, () => 'done')).toBe('done');

    const transport = await createTransport({ kind: 'local' });
    const { serve, client } = transport;
    expect(traceTransport(transport)).toBe(transport);
    expect(transport.serve).toBe(serve);
    expect(transport.client).toBe(client);
  });

  it('exports nothing while a whole turn runs', async () => {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    const app = await startTestApp();
    try {
      expect(tracing().enabled).toBe(false);
      const reply = await app.post('/v1/messages', {
        userId: 'u',
        text: 'how many red shirts are in stock?',
      });
      expect(reply.status).toBe(200);
      await tracing().flush();
      await new Promise((resolve) => setTimeout(resolve, 700)); // longer than the export delay
      expect(posts).toBe(0);
    } finally {
      await app.stop();
    }
  });
});

describe('tracing on', () => {
  it('exports spans to the endpoint, the edge span as a root and its work as children', async () => {
    const traces = await initTracing({
      serviceName: 'clawmesh-test',
      instanceId: 'i-1',
      url: `${endpoint}/v1/traces`,
      flushDelayMs: 50,
    });
    expect(traces.enabled).toBe(true);
    expect(traces.export).toEqual({ url: `${endpoint}/v1/traces`, protocol: 'http/protobuf' });
    const ctx = createCallContext();
    let innerParent: string | undefined;
    await inEdgeSpan('POST /v1/messages', ctx, {}, (edge) =>
      inSpan('turn', edge, 'server', {}, async (inner) => {
        innerParent = spanIdOf(edge.traceparent);
        expect(inner.traceparent).not.toBe(edge.traceparent);
        expect(inner.traceparent.slice(3, 35)).toBe(edge.traceparent.slice(3, 35));
      }),
    );
    await traces.flush();
    const edge = received.find((span) => span.name === 'POST /v1/messages');
    const turn = received.find((span) => span.name === 'turn');
    expect(edge?.parentSpanId ?? '').toBe('');
    expect(turn?.parentSpanId).toBe(innerParent);
    expect(turn?.traceId).toBe(edge?.traceId);
    // A fresh context's random parent is never used as the root's parent: a new trace starts.
    expect(edge?.traceId).not.toBe(ctx.traceparent.slice(3, 35));
  });

  it('gives each OpenAI-compatible API request a span, a child of its traceparent, streamed or not', async () => {
    const app = Fastify();
    registerOpenAIRoutes(app, {
      models: createModelsService({ providers: [createLocalProvider()], defaultModel: 'local' }),
    });
    const caller = '0af7651916cd43dd8448eb211c80319c';
    const before = received.length;
    for (const stream of [false, true]) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: { traceparent: `00-${caller}-b7ad6b7169203331-01` },
        payload: { model: 'fast', stream, messages: [{ role: 'user', content: 'hi' }] },
      });
      expect(res.statusCode).toBe(200);
    }
    await app.close();
    await tracing().flush();
    const spans = received.slice(before).filter((span) => span.name === 'POST /v1/chat/completions');
    expect(spans).toHaveLength(2);
    for (const span of spans) {
      expect(span.traceId).toBe(caller);
      expect(span.parentSpanId).toBe('b7ad6b7169203331');
    }
  });

  it('marks the span of an OpenAI-compatible stream failed when it breaks after its headers', async () => {
    const breaking: ModelProvider = {
      name: 'breaking',
      defaultModel: 'm',
      complete: async () => {
        throw new ClawmeshError('UNAVAILABLE', 'not used');
      },
      async *stream() {
        yield { type: 'text', text: 'half an ans' };
        throw new ClawmeshError('UNAVAILABLE', 'breaking: the stream was cut', {
          details: { streamCut: true },
        });
      },
    };
    const app = Fastify();
    registerOpenAIRoutes(app, {
      models: createModelsService({ providers: [breaking], defaultModel: 'breaking' }),
    });
    const caller = '1af7651916cd43dd8448eb211c80319c';
    const res = await app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { traceparent: `00-${caller}-b7ad6b7169203331-01` },
      payload: { model: 'breaking', stream: true, messages: [{ role: 'user', content: 'hi' }] },
    });
    await app.close();
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('"error"');
    expect(res.body).not.toContain('[DONE]');
    await tracing().flush();
    const span = received.find((s) => s.traceId === caller && s.name === 'POST /v1/chat/completions');
    expect(span?.status?.code).toBe(2);
    // The client got 200 and the error inside the stream: the span says so, not 503.
    expect(span?.attributes?.find((a) => a.key === 'http.response.status_code')?.value.intValue).toBe(200);
  });

  it('leaves the status of an HTTP server span unset for a 4xx answer and marks a 5xx failed, with the status code', async () => {
    const down: ModelProvider = {
      name: 'down',
      defaultModel: 'm',
      complete: async () => {
        throw new ClawmeshError('UNAVAILABLE', 'down: connect ECONNREFUSED');
      },
      // biome-ignore lint/correctness/useYield: a provider whose stream fails at once
      async *stream() {
        throw new ClawmeshError('UNAVAILABLE', 'down: connect ECONNREFUSED');
      },
    };
    const app = Fastify();
    registerOpenAIRoutes(app, {
      models: createModelsService({ providers: [createLocalProvider(), down], defaultModel: 'local' }),
    });
    const traces = {
      ok: '2af7651916cd43dd8448eb211c80319c',
      client: '3af7651916cd43dd8448eb211c80319c',
      server: '4af7651916cd43dd8448eb211c80319c',
    };
    const models = { ok: 'local', client: 'no-such-model', server: 'down' };
    const statuses: Record<string, number> = {};
    for (const outcome of ['ok', 'client', 'server'] as const) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: { traceparent: `00-${traces[outcome]}-b7ad6b7169203331-01` },
        payload: { model: models[outcome], messages: [{ role: 'user', content: 'hi' }] },
      });
      statuses[outcome] = res.statusCode;
    }
    await app.close();
    expect(statuses).toEqual({ ok: 200, client: 404, server: 503 });
    await tracing().flush();
    const spanOf = (outcome: keyof typeof traces) => {
      const span = received.find(
        (s) => s.traceId === traces[outcome] && s.name === 'POST /v1/chat/completions',
      );
      const attributes = Object.fromEntries(
        (span?.attributes ?? []).map((a) => [a.key, a.value.stringValue ?? Number(a.value.intValue)]),
      );
      return { status: span?.status?.code ?? 0, attributes };
    };
    expect(spanOf('ok')).toMatchObject({ status: 0, attributes: { 'http.response.status_code': 200 } });
    // The client's mistake: the server did its job (OpenTelemetry's HTTP conventions for server spans).
    expect(spanOf('client')).toMatchObject({
      status: 0,
      attributes: { 'http.response.status_code': 404, 'clawmesh.error.code': 'NOT_FOUND' },
    });
    expect(spanOf('server')).toMatchObject({
      status: 2,
      attributes: { 'http.response.status_code': 503, 'clawmesh.error.code': 'UNAVAILABLE' },
    });
  });

  it('follows the caller at the edge with the default sampler: a sampled caller, a new trace, and not an unsampled caller', async () => {
    const before = received.length;
    const caller = 'c'.repeat(32);
    const seen: string[] = [];
    const edge = (name: string, incoming?: string) =>
      inEdgeSpan(
        name,
        createCallContext(),
        {},
        async (inner) => {
          seen.push(inner.traceparent);
        },
        incoming,
      );
    await edge('edge sampled', `00-${caller}-${'d'.repeat(16)}-01`);
    await edge('edge new');
    await edge('edge unsampled', `00-${caller}-${'e'.repeat(16)}-00`);
    await tracing().flush();
    const names = received.slice(before).map((span) => span.name);
    expect(names).toContain('edge sampled');
    expect(names).toContain('edge new');
    expect(names).not.toContain('edge unsampled');
    expect(received.find((span) => span.name === 'edge sampled')).toMatchObject({
      traceId: caller,
      parentSpanId: 'd'.repeat(16),
    });
    // Inside: sampled, sampled, and the caller's unsampled trace with a new span id.
    expect(seen.map((traceparent) => traceparent.slice(-2))).toEqual(['01', '01', '00']);
    expect(seen[2]!.slice(3, 35)).toBe(caller);
  });

  it('records no span under a caller that did not sample its trace', async () => {
    const before = received.length;
    const unsampled = createCallContext({ traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-00` });
    await inSpan('probe', unsampled, 'client', {}, async () => undefined);
    await tracing().flush();
    expect(received.slice(before).map((span) => span.name)).not.toContain('probe');
  });
});
