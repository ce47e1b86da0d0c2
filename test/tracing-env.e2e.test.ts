import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OtlpTraceRequest, readTraceRequest } from './support/otlp.ts';
import { type CliProcess, spawnCli } from './support/process.ts';

/*
 * The standard OpenTelemetry variables, as an operator sets them for `clawmesh start` (the built
 * CLI, one process): each is read as the specification defines it. A loopback receiver takes
 * every POST, whatever its path, and keeps the path with the request.
 */

interface Post {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: OtlpTraceRequest;
}

let receiver: Server;
let receiverUrl: string;
const posts: Post[] = [];
const running: CliProcess[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      posts.push({
        path: req.url ?? '',
        headers: req.headers,
        body: readTraceRequest(Buffer.concat(chunks), req.headers),
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const p of running) p.child.kill('SIGKILL');
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

/** Starts a monolith with `env`, sends one message, stops it (which flushes its spans); returns its log. */
async function oneTurn(env: Record<string, string>, headers: Record<string, string> = {}): Promise<string> {
  const p = spawnCli(['start'], {
    cwd: mkdtempSync(join(tmpdir(), 'clawmesh-otel-env-')),
    env: { PORT: '0', LOG_LEVEL: 'info', ...env },
  });
  running.push(p);
  const { url } = (await p.waitForLog(/listening on/, 20_000)) as { url: string };
  const reply = await fetch(`${url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ userId: 'otel-env', text: 'how many red shirts are in stock?' }),
  });
  expect(reply.status).toBe(200);
  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);
  return p.stdout();
}

const resourceOf = (post: Post) =>
  Object.fromEntries(
    post.body.resourceSpans[0]!.resource.attributes.map((a) => [a.key, a.value.stringValue]),
  );

describe('OpenTelemetry variables of clawmesh start', () => {
  it('posts to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, adding no /v1/traces', async () => {
    posts.length = 0;
    await oneTurn({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiverUrl}/otlp/traces` });
    expect(posts.length).toBeGreaterThan(0);
    expect(new Set(posts.map((p) => p.path))).toEqual(new Set(['/otlp/traces']));
  }, 30_000);

  it('names the service by OTEL_SERVICE_NAME and adds the attributes of OTEL_RESOURCE_ATTRIBUTES', async () => {
    posts.length = 0;
    await oneTurn({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
      OTEL_SERVICE_NAME: 'support-bot',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=staging,team=shop%20floor,service.name=ignored',
    });
    expect(posts.length).toBeGreaterThan(0);
    expect(posts[0]!.path).toBe('/v1/traces');
    expect(resourceOf(posts[0]!)).toMatchObject({
      'service.name': 'support-bot',
      'service.namespace': 'clawmesh',
      'deployment.environment.name': 'staging',
      team: 'shop floor',
    });
    expect(resourceOf(posts[0]!)['service.instance.id']).toMatch(/.+/);
  }, 30_000);

  it('exports nothing with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none, and says so', async () => {
    posts.length = 0;
    const disabled = await oneTurn({ OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl, OTEL_SDK_DISABLED: 'true' });
    expect(disabled).toContain('"msg":"tracing: off (OTEL_SDK_DISABLED=true)"');
    expect(disabled).not.toContain('exporting spans over OTLP');
    const none = await oneTurn({ OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl, OTEL_TRACES_EXPORTER: 'none' });
    expect(none).toContain('"msg":"tracing: off (OTEL_TRACES_EXPORTER=none)"');
    expect(posts).toEqual([]);
  }, 30_000);

  it('turns tracing off with a warning for an endpoint without its scheme, instead of claiming to export', async () => {
    const log = await oneTurn({ OTEL_EXPORTER_OTLP_ENDPOINT: 'otel-collector:4318' });
    expect(log).toContain(
      '"msg":"OTEL_EXPORTER_OTLP_ENDPOINT=\\"otel-collector:4318\\" is not an http(s) URL such as http://otel-collector:4318: tracing is off"',
    );
    expect(log).not.toContain('exporting spans over OTLP');
  }, 30_000);

  it('says once when the endpoint refuses the spans, and again once it takes them', async () => {
    let refuse = true;
    const keyed = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (refuse) res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"bad key"}');
        else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => keyed.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(keyed.address() as AddressInfo).port}`;
    const p = spawnCli(['start'], {
      cwd: mkdtempSync(join(tmpdir(), 'clawmesh-otel-env-')),
      env: { PORT: '0', LOG_LEVEL: 'info', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint },
    });
    running.push(p);
    try {
      const { url } = (await p.waitForLog(/listening on/, 20_000)) as { url: string };
      const ask = async () => {
        const reply = await fetch(`${url}/v1/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ userId: 'otel-env', text: 'hello' }),
        });
        expect(reply.status).toBe(200);
      };
      await ask();
      await ask();
      const failing = await p.waitForLog(/^tracing: spans cannot be exported/, 10_000);
      expect(failing).toMatchObject({ level: 40, url: `${endpoint}/v1/traces` });
      expect(String(failing.err)).toMatch(/401/);
      refuse = false;
      await ask();
      expect(await p.waitForLog(/^tracing: spans are exported again$/, 10_000)).toMatchObject({ level: 30 });
      p.child.kill('SIGTERM');
      expect(await p.exited).toBe(0);
      // Once per change, not once per batch.
      expect(p.stdout().match(/spans cannot be exported/g)).toHaveLength(1);
    } finally {
      await new Promise<void>((resolve) => keyed.close(() => resolve()));
    }
  }, 40_000);

  it('starts a new trace for a traceparent whose trace or parent id is all zeros (invalid in W3C)', async () => {
    const zeroTrace = `00-${'0'.repeat(32)}-b7ad6b7169203331-01`;
    const zeroParent = `00-0af7651916cd43dd8448eb211c80319c-${'0'.repeat(16)}-01`;
    for (const traceparent of [zeroTrace, zeroParent]) {
      posts.length = 0;
      await oneTurn({ OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl }, { traceparent });
      const spans = posts.flatMap((p) =>
        p.body.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)),
      );
      const edge = spans.find((span) => span.name === 'POST /v1/messages');
      expect(edge, traceparent).toBeDefined();
      expect(edge!.parentSpanId ?? '', traceparent).toBe('');
      expect(edge!.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(edge!.traceId).not.toBe('0'.repeat(32));
      expect(edge!.traceId).not.toBe('0af7651916cd43dd8448eb211c80319c');
      for (const span of spans) expect(span.traceId).toBe(edge!.traceId);
    }
  }, 30_000);
});
