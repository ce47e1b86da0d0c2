import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startFakeOpenAI } from '../../test/support/fake-openai.ts';
import { createCallContext } from '../core/context.ts';
import { conversationContract } from '../core/contracts/conversation.ts';
import { modelsContract } from '../core/contracts/models.ts';
import { randomHex } from '../core/ids.ts';
import { createLogger, silentLogger } from '../observability/logger.ts';
import { createNatsTransport } from '../transport/nats.ts';
import { createClawmesh } from './clawmesh.ts';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A conversation role over the http transport that answers each turn after `delayMs`. */
async function slowConversation(delayMs: number): Promise<string> {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      setTimeout(() => {
        response.setHeader('content-type', 'application/json');
        response.end(
          JSON.stringify({ conversationId: 'c_0123456789abcdef01234567', text: 'late', toolCalls: [] }),
        );
      }, delayMs);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('a gateway-only process shutting down', () => {
  it('waits for the turns it is waiting on from the conversation role before closing connections', async () => {
    const conversationUrl = await slowConversation(1800);
    const dir = mkdtempSync(join(tmpdir(), 'clawmesh-gw-stop-'));
    const app = await createClawmesh({
      baseDir: dir,
      logger: silentLogger(),
      configOptions: {
        env: {},
        overrides: {
          roles: ['gateway'],
          transport: { kind: 'http', urls: { conversation: conversationUrl } },
          store: { kind: 'memory' },
          audit: { enabled: false },
          gateway: { port: 0 },
          shutdownTimeoutMs: 10_000,
        },
      },
    });
    const url = await app.listen();
    const reply = fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'u1', text: 'hello' }),
    });
    // The turn is on its way to the conversation role when the signal comes.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const inFlight = app.inFlight;
    const stopped = app.stop();
    const response = await reply;
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ text: 'late' });
    await stopped;
    expect(inFlight).toBe(1); // as the shutdown log line reports it
    expect(app.inFlight).toBe(0);
  });
});

describe('a models process shutting down', () => {
  it('answers the OpenAI-compatible completions in flight, plain and streamed, before closing connections', async () => {
    const upstream = await startFakeOpenAI();
    upstream.setDefault({ type: 'text', content: 'late answer', delayMs: 800 });
    const app = await createClawmesh({
      baseDir: mkdtempSync(join(tmpdir(), 'clawmesh-models-stop-')),
      logger: silentLogger(),
      configOptions: {
        env: {},
        overrides: {
          roles: ['models'],
          models: { openai: { apiKey: 'sk-upstream-0123', baseUrl: upstream.url, model: 'gpt-test' } },
          store: { kind: 'memory' },
          audit: { enabled: false },
          gateway: { port: 0 },
          shutdownTimeoutMs: 10_000,
        },
      },
    });
    const url = await app.listen();
    const ask = (stream: boolean) =>
      fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'openai', stream, messages: [{ role: 'user', content: 'hello' }] }),
      }).then(async (response) => ({ status: response.status, text: await response.text() }));
    const replies = Promise.all([ask(false), ask(true)]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const inFlight = app.inFlight;
    const stopped = app.stop();
    const [plain, streamed] = await replies;
    await stopped;
    await upstream.close();
    expect(inFlight).toBe(2);
    expect(plain.status).toBe(200);
    expect(JSON.parse(plain.text).choices[0].message.content).toBe('late answer');
    expect(streamed.status).toBe(200);
    expect(streamed.text).toMatch(/data: \[DONE\]\n\n$/);
  });
});

/** An OpenAI-compatible server whose completions take `delayMs`. */
async function slowModelServer(delayMs: number): Promise<string> {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      setTimeout(() => {
        response.setHeader('content-type', 'application/json');
        response.end(
          JSON.stringify({
            id: 'chatcmpl-1',
            object: 'chat.completion',
            created: 1,
            model: 'slow',
            choices: [
              { index: 0, message: { role: 'assistant', content: 'slow answer' }, finish_reason: 'stop' },
            ],
            usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
          }),
        );
      }, delayMs);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
}

describe('a role over NATS shutting down', () => {
  const start = async (
    roles: ('conversation' | 'models' | 'skills')[],
    subjectPrefix: string,
    modelUrl: string,
  ) =>
    createClawmesh({
      baseDir: mkdtempSync(join(tmpdir(), 'clawmesh-nats-stop-')),
      logger: silentLogger(),
      configOptions: {
        env: {},
        overrides: {
          roles,
          transport: { kind: 'nats' },
          nats: { url: NATS_URL, subjectPrefix },
          store: { kind: 'memory', lease: 'memory' },
          audit: { enabled: false },
          gateway: { port: 0 },
          models: { openai: { apiKey: 'test', baseUrl: modelUrl, model: 'slow' } },
          shutdownTimeoutMs: 10_000,
        },
      },
    });
  const client = async (subjectPrefix: string) => {
    const transport = await createNatsTransport({ servers: NATS_URL, subjectPrefix });
    return transport;
  };

  it('answers the completion in flight of a models role before it exits', async () => {
    const prefix = `stop${randomHex(4)}`;
    const app = await start(['models'], prefix, await slowModelServer(800));
    const caller = await client(prefix);
    try {
      const models = caller.client(modelsContract);
      const reply = models.complete(
        { messages: [{ role: 'user', content: 'hello' }] },
        createCallContext({ timeoutMs: 10_000 }),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      const inFlight = app.inFlight;
      const stopped = app.stop();
      await expect(reply).resolves.toMatchObject({ content: 'slow answer' });
      await stopped;
      expect(inFlight).toBe(1);
    } finally {
      await caller.close();
    }
  });

  it('takes no new turn once a conversation replica is stopping, and finishes the one it runs', async () => {
    const prefix = `stop${randomHex(4)}`;
    const app = await start(['conversation', 'models', 'skills'], prefix, await slowModelServer(800));
    const caller = await client(prefix);
    try {
      const conversation = caller.client(conversationContract);
      const turn = (userId: string) =>
        conversation.handle(
          { channel: 'api', userId, text: 'hello' },
          createCallContext({ timeoutMs: 10_000 }),
        );
      const running = turn('u1');
      await new Promise((resolve) => setTimeout(resolve, 300));
      const stopped = app.stop();
      await new Promise((resolve) => setTimeout(resolve, 100));
      // No replica takes it now: the caller (the gateway) would send it to another one.
      await expect(turn('u2')).rejects.toMatchObject({ code: 'UNAVAILABLE', message: /no NATS responders/ });
      await expect(running).resolves.toMatchObject({ text: 'slow answer' });
      await stopped;
    } finally {
      await caller.close();
    }
  });
});

describe('a gateway whose conversation role cannot be reached', () => {
  it('logs the failed request with its id and the whole reason, while the client gets the scrubbed 503', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      level: 'info',
      destination: new Writable({
        write(chunk, _encoding, done) {
          lines.push(JSON.parse(String(chunk)));
          done();
        },
      }),
    });
    const app = await createClawmesh({
      baseDir: mkdtempSync(join(tmpdir(), 'clawmesh-gw-fail-')),
      logger,
      configOptions: {
        env: {},
        overrides: {
          roles: ['gateway'],
          transport: { kind: 'http', urls: { conversation: `http://127.0.0.1:${port}` } },
          store: { kind: 'memory' },
          audit: { enabled: false },
          gateway: { port: 0, attemptTimeoutMs: 300 },
        },
      },
    });
    try {
      const url = await app.listen();
      const response = await fetch(`${url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'req-gw-fail-1' },
        body: JSON.stringify({ userId: 'u1', text: 'hello' }),
      });
      expect(response.status).toBe(503);
      expect(await response.text()).not.toContain(String(port));
      const failed = lines.find((line) => line.msg === 'request failed');
      expect(failed).toMatchObject({
        level: 40,
        requestId: 'req-gw-fail-1',
        traceId: expect.stringMatching(/^[0-9a-f]{32}$/),
        status: 503,
        code: 'UNAVAILABLE',
      });
      expect(String(failed!.err)).toContain(`127.0.0.1:${port}`);
    } finally {
      await app.stop();
    }
  });
});

describe('a role over the http transport without the URL of the service it calls', () => {
  it.each([
    ['gateway', 'CONVERSATION_SERVICE_URL'],
    ['conversation', 'MODELS_SERVICE_URL'],
  ] as const)('refuses to start a %s role, naming %s', async (role, variable) => {
    const start = createClawmesh({
      baseDir: mkdtempSync(join(tmpdir(), 'clawmesh-no-url-')),
      logger: silentLogger(),
      configOptions: {
        env: {},
        overrides: {
          roles: [role],
          transport: { kind: 'http' },
          store: { kind: 'memory', lease: 'memory' },
          audit: { enabled: false },
          gateway: { port: 0 },
        },
      },
    });
    await expect(start).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining(`set ${variable}=http://<host>:<port>`),
    });
  });
});

describe('a role over the http transport with a service URL that is not one', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });
  it.each([
    ['gateway', 'CONVERSATION_SERVICE_URL', '127.0.0.1:8084'],
    ['conversation', 'SKILLS_INVENTORY_SERVICE_URL', 'ftp://skills:8082'],
  ] as const)('refuses to start a %s role, naming %s', async (role, variable, url) => {
    // The transport reads the service URLs from the process's environment.
    vi.stubEnv('CONVERSATION_SERVICE_URL', 'http://127.0.0.1:1');
    vi.stubEnv('MODELS_SERVICE_URL', 'http://127.0.0.1:1');
    vi.stubEnv(variable, url);
    const start = createClawmesh({
      baseDir: mkdtempSync(join(tmpdir(), 'clawmesh-bad-url-')),
      logger: silentLogger(),
      configOptions: {
        env: {},
        overrides: {
          roles: [role],
          transport: { kind: 'http' },
          store: { kind: 'memory', lease: 'memory' },
          audit: { enabled: false },
          gateway: { port: 0 },
        },
      },
    });
    await expect(start).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining(
        `"${url}" is not an http or https URL such as http://<host>:<port> (set by ${variable})`,
      ),
    });
  });
});

describe('a conversation role whose turn lease needs a Redis that does not answer', () => {
  it('says the Redis is for the turn lease, and how a single process can do without', async () => {
    const start = createClawmesh({
      baseDir: mkdtempSync(join(tmpdir(), 'clawmesh-lease-redis-')),
      logger: silentLogger(),
      configOptions: {
        env: {},
        overrides: {
          store: { kind: 'postgres' },
          postgres: { url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
          redis: { url: 'redis://127.0.0.1:1' },
          audit: { enabled: false },
          gateway: { port: 0 },
        },
      },
    });
    await expect(start).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringMatching(
        /^cannot connect to Redis \(REDIS_URL\) at redis:\/\/127\.0\.0\.1:1.*needed for the turn lease.*CLAWMESH_STORE__LEASE=memory/,
      ),
    });
  });
});

describe('listening on a port another process holds', () => {
  it('fails with the port and the setting that changes it, and stops cleanly', async () => {
    const taken = createServer();
    servers.push(taken);
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    const app = await createClawmesh({
      baseDir: mkdtempSync(join(tmpdir(), 'clawmesh-port-taken-')),
      logger: silentLogger(),
      configOptions: {
        env: {},
        overrides: { store: { kind: 'memory' }, audit: { enabled: false }, gateway: { port } },
      },
    });
    try {
      const failure = await app.listen().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toMatchObject({
        code: 'UNAVAILABLE',
        retryable: false,
        message: expect.stringContaining(`port 127.0.0.1:${port} is already in use`),
      });
      expect((failure as Error).message).toContain('set PORT (or gateway.port)');
      expect((failure as Error).cause).toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await app.stop();
    }
  });
});
