import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createCallContext } from '../core/context.ts';
import { defineContract } from '../core/contract.ts';
import { ClawmeshError } from '../core/errors.ts';
import { randomHex } from '../core/ids.ts';
import { createHttpServer } from '../http/server.ts';
import { createLogger, silentLogger } from '../observability/logger.ts';
import { describeTransport, rejection } from './conformance.ts';
import { createHttpTransport, type HttpTransport } from './http.ts';

describeTransport(
  'http',
  ({ maxPayloadBytes }) => {
    const server = createHttpTransport({ listen: { port: 0 }, maxPayloadBytes });
    // The replica listens only once it serves: until then every call goes to `server`.
    const replica = createHttpTransport({ listen: { port: 0 }, maxPayloadBytes });
    const client = createHttpTransport({
      maxPayloadBytes,
      urls: () => [server.address(), replica.address()].filter((url): url is string => url !== undefined),
    });
    return { server, client, replica };
  },
  { replicas: true },
);

const echo = defineContract({
  name: 'skill.echo-test',
  version: '1.0.0',
  methods: {
    say: { input: z.object({ text: z.string() }), output: z.object({ text: z.string() }) },
  },
});

const ctx = (timeoutMs = 5000) => createCallContext({ timeoutMs });

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('http transport', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of cleanup.splice(0).reverse()) await close();
  });

  const served = async (options: Parameters<typeof createHttpTransport>[0] = {}) => {
    let ran = 0;
    const server = createHttpTransport({ listen: { port: 0 }, ...options });
    cleanup.push(() => server.close());
    await server.serve(echo, {
      say: async ({ text }) => {
        ran += 1;
        return { text };
      },
    });
    const url = server.address()!;
    return { server, url, ran: () => ran };
  };
  const clientOf = (urls: Record<string, string | string[]>, options = {}): HttpTransport => {
    const transport = createHttpTransport({ urls, ...options });
    cleanup.push(() => transport.close());
    return transport;
  };

  it('serves on a Fastify instance it is given, beside its other routes, with the route limit', async () => {
    const app = createHttpServer({ logger: silentLogger(), bodyLimitBytes: 100 });
    app.get('/healthz', async () => ({ ok: true }));
    const server = createHttpTransport({ app, maxPayloadBytes: 4096 });
    await server.serve(echo, { say: async ({ text }) => ({ text: text.toUpperCase() }) });
    await app.listen({ port: 0, host: '127.0.0.1' });
    cleanup.push(() => app.close());
    cleanup.push(() => server.close());
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const client = clientOf({ 'skill.echo-test': url });
    const text = 'a'.repeat(1000);
    await expect(client.client(echo).say({ text }, ctx())).resolves.toEqual({ text: text.toUpperCase() });
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ ok: true });
    expect(server.address()).toBeUndefined();
  });

  it("logs a handler that threw with the call's ids, keeping the process's service field", async () => {
    const raw: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        raw.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const logger = createLogger({ service: 'clawmesh-skills', destination });
    const server = createHttpTransport({ listen: { port: 0 }, logger });
    cleanup.push(() => server.close());
    await server.serve(echo, {
      say: async () => {
        throw new TypeError('boom');
      },
    });
    const call = ctx();
    const failed = await rejection(
      clientOf({ 'skill.echo-test': server.address()! }).client(echo).say({ text: 'x' }, call),
    );
    expect(failed.code).toBe('INTERNAL');
    const line = raw.find((text) => text.includes('rpc handler threw'));
    expect(line).toBeDefined();
    expect(line!.match(/"service":/g)).toHaveLength(1);
    expect(JSON.parse(line!)).toMatchObject({
      service: 'clawmesh-skills',
      rpcService: 'skill.echo-test',
      rpcMethod: 'say',
      requestId: call.requestId,
      traceId: call.traceparent.slice(3, 35),
    });
  });

  it('speaks POST /rpc/<service>/<method> with context headers and { error } bodies', async () => {
    const { url, ran } = await served();
    const ok = await fetch(`${url}/rpc/skill.echo-test/say`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'r-1', 'clawmesh-deadline-ms': '2000' },
      body: JSON.stringify({ text: 'hi' }),
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ text: 'hi' });

    const invalid = await fetch(`${url}/rpc/skill.echo-test/say`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 7 }),
    });
    expect(invalid.status).toBe(400);
    const body = (await invalid.json()) as { error: { code: string; message: string; details: unknown } };
    expect(body.error).toMatchObject({
      code: 'INVALID_ARGUMENT',
      retryable: false,
      details: { fields: ['text'] },
    });
    expect(body.error.message).toMatch(/^skill\.echo-test\.say: text: /);

    const missing = await fetch(`${url}/rpc/skill.echo-test/shout`, { method: 'POST' });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');

    const unserved = await fetch(`${url}/rpc/conversation/handle`, { method: 'POST' });
    expect(unserved.status).toBe(503);
    expect(((await unserved.json()) as { error: { code: string } }).error.code).toBe('UNAVAILABLE');

    const malformed = await fetch(`${url}/rpc/skill.echo-test/say`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"text":',
    });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { code: string } }).error.code).toBe('INVALID_ARGUMENT');
    expect(ran()).toBe(1);
  });

  it('fails a request that arrives with no time left with DEADLINE_EXCEEDED without running it', async () => {
    const { url, ran } = await served();
    const response = await fetch(`${url}/rpc/skill.echo-test/say`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'clawmesh-deadline-ms': '0' },
      body: JSON.stringify({ text: 'late' }),
    });
    expect(response.status).toBe(504);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('DEADLINE_EXCEEDED');
    expect(ran()).toBe(0);
  });

  it('answers 413 for a body over the server limit, which the client reads as the payload error', async () => {
    const { url, ran } = await served({ maxPayloadBytes: 1024 });
    const client = clientOf({ 'skill.echo-test': url }, { maxPayloadBytes: 1024 * 1024 });
    const err = await rejection(client.client(echo).say({ text: 'z'.repeat(2000) }, ctx()));
    expect(err).toBeInstanceOf(ClawmeshError);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', retryable: false });
    expect(err.details).toMatchObject({ reason: 'PAYLOAD_TOO_LARGE', limitBytes: 1024 });
    const raw = await fetch(`${url}/rpc/skill.echo-test/say`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'z'.repeat(2000) }),
    });
    expect(raw.status).toBe(413);
    expect(ran()).toBe(0);
  });

  it('answers UNAVAILABLE at once for a service without a URL, naming the variable to set', async () => {
    const client = clientOf({});
    const err = await rejection(client.client(echo).say({ text: 'a' }, ctx()));
    expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect(err.message).toContain('SKILL_ECHO_TEST_SERVICE_URL');
  });

  it('answers UNAVAILABLE at once when the connection is refused', async () => {
    const port = await closedPort();
    const client = clientOf({ 'skill.echo-test': `http://127.0.0.1:${port}` });
    const started = Date.now();
    const err = await rejection(client.client(echo).say({ text: 'a' }, ctx(10_000)));
    expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect(err.message).toContain('ECONNREFUSED');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('answers UNAVAILABLE from a running server that does not serve the service', async () => {
    const { url } = await served();
    const other = defineContract({ ...echo, name: 'conversation' });
    const client = clientOf({ conversation: url });
    const err = await rejection(client.client(other).say({ text: 'a' }, ctx()));
    expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect(err.message).toContain('"conversation"');
  });

  it('moves on to the next URL of a service when one refuses the connection', async () => {
    const { url, ran } = await served();
    const port = await closedPort();
    const client = clientOf({ 'skill.echo-test': [`http://127.0.0.1:${port}`, url] });
    const say = client.client(echo).say;
    for (let i = 0; i < 4; i += 1)
      await expect(say({ text: `t${i}` }, ctx())).resolves.toEqual({ text: `t${i}` });
    expect(ran()).toBe(4);
  });

  it('keeps one connection alive across sequential calls', async () => {
    const app = createHttpServer({ logger: silentLogger(), bodyLimitBytes: 1024 });
    const server = createHttpTransport({ app });
    await server.serve(echo, { say: async ({ text }) => ({ text }) });
    let connections = 0;
    app.server.on('connection', () => {
      connections += 1;
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    cleanup.push(() => app.close());
    const client = clientOf({
      'skill.echo-test': `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    });
    const say = client.client(echo).say;
    for (let i = 0; i < 20; i += 1)
      await expect(say({ text: `k${i}` }, ctx())).resolves.toEqual({ text: `k${i}` });
    expect(connections).toBe(1);
  });

  it('codes a reply that is not a Clawmesh error by its status', async () => {
    const proxy: Server = createServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html>bad gateway</html>');
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => proxy.close(resolve)));
    const client = clientOf({
      'skill.echo-test': `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    });
    const err = await rejection(client.client(echo).say({ text: 'a' }, ctx()));
    expect(err).toMatchObject({ code: 'UNAVAILABLE' });
    expect(err.message).toContain('HTTP 502');
  });

  it('refuses to serve without an app or listen options, and a service name unfit for a URL', async () => {
    const transport = createHttpTransport({ urls: {} });
    cleanup.push(() => transport.close());
    await expect(transport.serve(echo, { say: async ({ text }) => ({ text }) })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    const odd = defineContract({ ...echo, name: `bad name ${randomHex(2)}` });
    expect(() => transport.client(odd)).toThrow(/service name/);
  });

  it('refuses a second registration of one service on one server with CONFLICT', async () => {
    const { server } = await served();
    await expect(server.serve(echo, { say: async ({ text }) => ({ text }) })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });
});
