import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { probeHttp, probeOtlp } from './probes.ts';

describe('probeHttp', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  async function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
    server = createServer(handler);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('reaches a port fetch calls bad (6000, 6665-6669) and reports the network error, not "bad port"', async () => {
    // Nothing listens there: the probe must get as far as the connection.
    for (const port of [6000, 6665, 6669]) {
      await expect(probeHttp(`http://127.0.0.1:${port}/healthz`, { timeoutMs: 2000 })).rejects.toThrow(
        'ECONNREFUSED',
      );
    }
  });

  it('resolves with the status and body of any answer', async () => {
    const host = await listen((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"ready":false}');
    });
    expect(await probeHttp(`http://${host}/readyz`)).toEqual({ status: 503, body: '{"ready":false}' });
  });

  it("sends a URL's credentials as a Basic authorization header and never quotes them", async () => {
    let authorization: string | undefined;
    const host = await listen((req, res) => {
      authorization = req.headers.authorization;
      res.end('ok');
    });
    await probeHttp(`http://user:s%40cret@${host}/`);
    expect(authorization).toBe(`Basic ${Buffer.from('user:s@cret').toString('base64')}`);
  });

  it('rejects with the timeout when the server takes the connection and never answers', async () => {
    const host = await listen(() => undefined);
    await expect(probeHttp(`http://${host}/healthz`, { timeoutMs: 100 })).rejects.toThrow(
      'no answer within 100 ms',
    );
  });

  it('posts the OTLP probe with its content type and body', async () => {
    let received = '';
    const host = await listen((req, res) => {
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => {
        received += `${req.headers['content-type']} ${chunk}`;
      });
      req.on('end', () => res.end());
    });
    expect(await probeOtlp(`http://${host}/v1/traces`, 'application/json')).toBe(200);
    expect(received).toBe('application/json {"resourceSpans":[]}');
  });
});
