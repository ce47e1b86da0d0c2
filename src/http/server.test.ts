import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClawmeshError } from '../core/errors.ts';
import { createLogger } from '../observability/logger.ts';
import { createHttpServer } from './server.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let app: FastifyInstance;
let port: number;
let url: string;
/** The JSON lines the server logged. */
const logged: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  const destination = { write: (line: string) => logged.push(JSON.parse(line)) };
  app = createHttpServer({ logger: createLogger({ level: 'debug', destination }), bodyLimitBytes: 1024 });
  app.post('/echo', async (request) => request.body);
  app.get('/crash/store', async () => {
    // What a store failure looks like once a caller wrapped it on its way up.
    throw ClawmeshError.from(new Error('append messages: NOT NULL constraint failed: messages.content'));
  });
  app.get('/crash/bug', async () => {
    throw ClawmeshError.from(new TypeError("Cannot read properties of undefined (reading 'id')"));
  });
  app.get('/missing', async () => {
    throw new ClawmeshError('NOT_FOUND', 'no agent named "x" (agents: default)');
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as AddressInfo).port;
  url = `http://127.0.0.1:${port}`;
});

afterAll(() => app.close());

/** Writes raw bytes on a fresh connection; resolves with all the server sent before it closed. */
function rawRequest(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
    socket.setTimeout(5000, () => socket.destroy(new Error(`no close; got: ${received}`)));
  });
}

/** Splits a raw HTTP response into its status, lower-cased headers and parsed JSON body. */
function parseResponse(raw: string) {
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const headers = new Map(
    headerLines.map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const;
    }),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(body) as unknown };
}

describe('requests the HTTP parser rejects', () => {
  it('answers a non-numeric Content-Length with the Clawmesh error shape and an x-request-id', async () => {
    const raw = await rawRequest(
      'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}',
    );
    const response = parseResponse(raw);
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: { code: 'INVALID_ARGUMENT', message: 'invalid Content-Length' } });
    expect(response.headers.get('x-request-id')).toMatch(UUID);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Number(response.headers.get('content-length'))).toBe(
      Buffer.byteLength(JSON.stringify(response.body)),
    );
  });

  it('answers Content-Length together with Transfer-Encoding with a 400 of the same shape', async () => {
    const raw = await rawRequest(
      'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        'Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
    );
    const response = parseResponse(raw);
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: {
        code: 'INVALID_ARGUMENT',
        message: 'invalid Content-Length: it cannot be sent with Transfer-Encoding',
      },
    });
    expect(response.headers.get('x-request-id')).toMatch(UUID);
  });

  it('answers a duplicate Content-Length as an invalid Content-Length', async () => {
    const raw = await rawRequest(
      'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
    );
    const response = parseResponse(raw);
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: { code: 'INVALID_ARGUMENT', message: 'invalid Content-Length' } });
  });

  it('gives each rejected request its own id, and keeps serving afterwards', async () => {
    const bad = 'GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n';
    const [first, second] = await Promise.all([rawRequest(bad), rawRequest(bad)]);
    const ids = [first, second].map((raw) => parseResponse(raw).headers.get('x-request-id'));
    expect(ids[0]).toMatch(UUID);
    expect(ids[1]).not.toBe(ids[0]);
    const ok = await fetch(`${url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"n":1}',
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ n: 1 });
  });

  it("answers any other malformed request with a 400 naming the parser's reason", async () => {
    const response = parseResponse(await rawRequest('NOT-A-METHOD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: { code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^malformed HTTP request: /) },
    });
    expect(response.headers.get('x-request-id')).toMatch(UUID);
  });

  it('only closes a connection whose peer reset it', async () => {
    const handler = app.server.listeners('clientError')[0] as (err: Error, socket: unknown) => void;
    let destroyed = false;
    let written = '';
    const socket = {
      writable: true,
      destroy: () => {
        destroyed = true;
      },
      end: (data: string) => {
        written += data;
      },
      write: (data: string) => {
        written += data;
      },
    };
    handler(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), socket);
    expect(destroyed).toBe(true);
    expect(written).toBe('');
  });
});

describe('the error handler', () => {
  it('says only "internal error" for an INTERNAL error wrapped from an unexpected exception', async () => {
    for (const path of ['/crash/store', '/crash/bug']) {
      const response = await fetch(`${url}${path}`, { headers: { 'x-request-id': `req-${path.slice(7)}` } });
      expect(response.status).toBe(500);
      expect(response.headers.get('x-request-id')).toBe(`req-${path.slice(7)}`);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error).toMatchObject({ code: 'INTERNAL', message: 'internal error' });
      expect(JSON.stringify(body)).not.toMatch(/NOT NULL|Cannot read/);
    }
  });

  it('logs the real cause of an INTERNAL error with the request id', async () => {
    await fetch(`${url}/crash/store`, { headers: { 'x-request-id': 'req-logged' } });
    const line = logged.find((entry) => entry.requestId === 'req-logged');
    expect(line).toMatchObject({ level: 50 });
    expect(JSON.stringify(line)).toContain('NOT NULL constraint failed: messages.content');
  });

  it('keeps the message of a ClawmeshError of another code', async () => {
    const response = await fetch(`${url}/missing`);
    expect(response.status).toBe(404);
    expect(response.headers.get('x-request-id')).toMatch(UUID);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: 'NOT_FOUND', message: 'no agent named "x" (agents: default)' });
  });
});
