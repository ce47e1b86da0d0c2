import { appendFileSync, readFileSync } from 'node:fs';
import {
  type AddressInfo,
  connect as connectTcp,
  createServer as createTcpServer,
  type Socket,
} from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusEvent } from '../src/bus/types.ts';
import { randomHex } from '../src/core/ids.ts';
import { createApiKeyCheck } from '../src/gateway/auth.ts';
import { createHttpServer } from '../src/http/server.ts';
import { createServicesView, registerDashboard } from '../src/observability/dashboard/index.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { type MicroService, startMicroService } from '../src/transport/nats-micro.ts';
import { startTestApp, type TestApp } from './support/app.ts';

const KEY = 'dashboard-test-key-1';
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const API_PATHS = [
  '/dashboard/api/services',
  '/dashboard/api/conversations',
  '/dashboard/api/conversations/c_x',
  '/dashboard/api/audit',
  '/dashboard/api/usage',
];

interface Got {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field
  body: any;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Got> {
  const response = await fetch(url, { headers });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: response.status, headers: response.headers, body };
}

describe('dashboard API with API keys', () => {
  let t: TestApp;
  const modelEvents: BusEvent[] = [];
  let stockConversation: string;
  let helloConversation: string;
  const authed = (path: string) => get(`${t.url}${path}`, { authorization: `Bearer ${KEY}` });

  beforeAll(async () => {
    t = await startTestApp({ gateway: { port: 0, host: '127.0.0.1', apiKeys: [KEY] } });
    await t.app.services.bus.subscribe('model.completed', 'test-probe', (event) => {
      modelEvents.push(event);
    });
    const headers = { authorization: `Bearer ${KEY}` };
    const stock = await t.post(
      '/v1/messages',
      { userId: 'ana', text: 'how many red shirts are in stock?' },
      headers,
    );
    expect(stock.status).toBe(200);
    stockConversation = stock.body.conversationId;
    const hello = await t.post('/v1/messages', { userId: 'ben', text: 'hello there' }, headers);
    expect(hello.status).toBe(200);
    helloConversation = hello.body.conversationId;
    await t.app.services.bus.drain();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('serves the page without a key, with its own CSP, and revalidates it by ETag', async () => {
    const page = await get(`${t.url}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.body).toContain('<title>Clawmesh dashboard</title>');
    expect(page.body).not.toMatch(/https?:\/\//);
    const script = await get(`${t.url}/dashboard/dashboard.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const css = await get(`${t.url}/dashboard/dashboard.css`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    const again = await fetch(`${t.url}/dashboard/dashboard.js`, {
      headers: { 'if-none-match': script.headers.get('etag')! },
    });
    expect(again.status).toBe(304);
    expect((await get(`${t.url}/dashboard/`)).status).toBe(200);
    expect((await get(`${t.url}/dashboard/index.htm`)).status).toBe(404);
  });

  it('refuses every data endpoint without a key or with a wrong one', async () => {
    for (const path of API_PATHS) {
      const none = await get(`${t.url}${path}`);
      expect(none.status, path).toBe(401);
      expect(none.body.error.code).toBe('UNAUTHENTICATED');
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      const wrong = await get(`${t.url}${path}`, { authorization: 'Bearer not-the-key-at-all' });
      expect(wrong.status, path).toBe(401);
      expect(wrong.body.error.message).toBe('invalid API key');
      const head = await fetch(`${t.url}${path}`, { method: 'HEAD' });
      expect(head.status, `HEAD ${path}`).toBe(401);
    }
  });

  it('takes the key from any client address (the key is the gate)', async () => {
    const response = await t.app.http.inject({
      method: 'GET',
      url: '/dashboard/api/usage',
      remoteAddress: '203.0.113.7',
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('shows this process: its roles and its readiness checks, run live', async () => {
    const { status, body } = await authed('/dashboard/api/services');
    expect(status).toBe(200);
    expect(body.process).toMatchObject({ name: 'clawmesh', transport: 'local', status: 'ready' });
    expect([...body.process.roles].sort()).toEqual(['conversation', 'gateway', 'models', 'skills']);
    expect(body.process.checks.map((c: { name: string; ok: boolean }) => [c.name, c.ok])).toEqual(
      t.app.services.checks.map((c) => [c.name, true]),
    );
    expect(body.discovery).toBeUndefined();
  });

  it('lists recent conversations, newest first, with a preview and a limit', async () => {
    const { status, body } = await authed('/dashboard/api/conversations');
    expect(status).toBe(200);
    expect(body.available).toBe(true);
    expect(body.conversations.map((c: { id: string }) => c.id)).toEqual([
      helloConversation,
      stockConversation,
    ]);
    expect(body.conversations[1]).toMatchObject({
      peer: 'ana',
      channel: 'api',
      agentId: 'default',
      messageCount: 4,
      preview: 'red shirt: 42 units in stock',
    });
    const one = await authed('/dashboard/api/conversations?limit=1');
    expect(one.body.conversations).toHaveLength(1);
  });

  it('answers 400 for a bad limit, naming it', async () => {
    for (const limit of ['0', '-3', 'abc', '1.5', '201', '']) {
      const { status, body } = await authed(`/dashboard/api/conversations?limit=${limit}`);
      expect(status, limit).toBe(400);
      expect(body.error.code).toBe('INVALID_ARGUMENT');
      expect(body.error.message).toContain('limit');
    }
    const audit = await authed('/dashboard/api/audit?limit=1001');
    expect(audit.status).toBe(400);
  });

  it('shows a conversation as turns with the tool call, its arguments and result', async () => {
    const { status, body } = await authed(`/dashboard/api/conversations/${stockConversation}`);
    expect(status).toBe(200);
    expect(body.conversation).toMatchObject({ id: stockConversation, peer: 'ana', messageCount: 4 });
    expect(body.truncated).toBe(false);
    expect(body.turns).toHaveLength(1);
    const [turn] = body.turns;
    expect(turn).toMatchObject({
      user: 'how many red shirts are in stock?',
      steps: 2,
      reply: 'red shirt: 42 units in stock',
    });
    expect(turn.toolCalls).toHaveLength(1);
    expect(turn.toolCalls[0]).toMatchObject({
      name: 'inventory__lookupStock',
      skill: 'inventory',
      tool: 'lookupStock',
      arguments: { item: 'red shirts' },
      ok: true,
      result: { item: 'red shirt', units: 42 },
    });
    const hello = await authed(`/dashboard/api/conversations/${helloConversation}`);
    expect(hello.body.turns[0].toolCalls).toEqual([]);
  });

  it('answers 404 for an unknown conversation and 400 for a malformed id', async () => {
    const unknown = await authed('/dashboard/api/conversations/c_000000000000000000000000');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('NOT_FOUND');
    const bad = await authed(`/dashboard/api/conversations/${encodeURIComponent('bad id!')}`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_ARGUMENT');
  });

  it('tails the audit file newest first and skips lines that are not events', async () => {
    const file = join(t.dir, 'audit.jsonl');
    const written = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as BusEvent);
    expect(written.length).toBeGreaterThanOrEqual(8);
    const { status, body } = await authed('/dashboard/api/audit');
    expect(status).toBe(200);
    expect(body).toMatchObject({ available: true, file, skipped: 0 });
    expect(body.events.map((e: BusEvent) => e.id)).toEqual(written.map((e) => e.id).reverse());
    const types = new Set(body.events.map((e: BusEvent) => e.type));
    for (const type of ['message.received', 'model.completed', 'skill.invoked', 'response.generated']) {
      expect(types.has(type), type).toBe(true);
    }
    const three = await authed('/dashboard/api/audit?limit=3');
    expect(three.body.events.map((e: BusEvent) => e.id)).toEqual(
      written
        .slice(-3)
        .map((e) => e.id)
        .reverse(),
    );

    appendFileSync(file, '{"this is": not json\n{"id":"hand-1","type":"manual.note","data":{}}\n');
    const after = await authed('/dashboard/api/audit?limit=2');
    expect(after.body.events.map((e: BusEvent) => e.id)).toEqual(['hand-1', written.at(-1)!.id]);
    expect(after.body.skipped).toBe(1);
  });

  it('counts model usage by model from the model.completed events', async () => {
    expect(modelEvents.length).toBeGreaterThanOrEqual(3);
    const expected = new Map<string, { requests: number; inputTokens: number; outputTokens: number }>();
    for (const event of modelEvents) {
      const data = event.data as { model: string; inputTokens: number; outputTokens: number };
      const sum = expected.get(data.model) ?? { requests: 0, inputTokens: 0, outputTokens: 0 };
      sum.requests++;
      sum.inputTokens += data.inputTokens;
      sum.outputTokens += data.outputTokens;
      expected.set(data.model, sum);
    }
    const { status, body } = await authed('/dashboard/api/usage');
    expect(status).toBe(200);
    expect(body).toMatchObject({ available: true, source: 'events' });
    expect(body.models).toHaveLength(expected.size);
    for (const [model, sum] of expected) {
      expect(body.models.find((m: { model: string }) => m.model === model)).toMatchObject({
        ...sum,
        cached: 0,
      });
    }
    const totals = [...expected.values()].reduce((a, b) => ({
      requests: a.requests + b.requests,
      inputTokens: a.inputTokens + b.inputTokens,
      outputTokens: a.outputTokens + b.outputTokens,
    }));
    expect(body.totals).toMatchObject(totals);
    expect(body.models[0].model).toBe('local/default');
    expect(body.models[0].inputTokens).toBeGreaterThan(0);
  });
});

describe('dashboard API without API keys', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ audit: { enabled: false } });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('is open to loopback clients without a key', async () => {
    for (const path of ['/dashboard/api/services', '/dashboard/api/conversations', '/dashboard/api/usage']) {
      const { status } = await get(`${t.url}${path}`);
      expect(status, path).toBe(200);
    }
    const audit = await get(`${t.url}/dashboard/api/audit`);
    expect(audit.body).toEqual({ available: false, reason: 'the audit log is off (audit.enabled: false)' });
    const missing = await get(`${t.url}/dashboard/api/conversations/c_000000000000000000000000`);
    expect(missing.status).toBe(404);
  });

  it('refuses clients on other addresses, since no key guards the data', async () => {
    const response = await t.app.http.inject({
      method: 'GET',
      url: '/dashboard/api/conversations',
      remoteAddress: '203.0.113.7',
    });
    expect(response.statusCode).toBe(403);
    expect(response.json().error.code).toBe('PERMISSION_DENIED');
  });
});

describe('dashboard API over the nats transport', () => {
  let t: TestApp;
  let nc: NatsConnection;
  let stranger: MicroService;
  const prefix = `dash${randomHex(4)}`;

  beforeAll(async () => {
    t = await startTestApp({ transport: { kind: 'nats' }, nats: { url: NATS_URL, subjectPrefix: prefix } });
    // Another deployment's service on the same server: not one of ours.
    nc = await connect({ servers: NATS_URL });
    stranger = await startMicroService(nc, {
      name: 'conversation',
      version: '9.9.9',
      endpoints: [
        { name: 'handle', subject: `other${prefix}.conversation.handle`, handle: async () => undefined },
      ],
    });
  });
  afterAll(async () => {
    await stranger?.stop();
    await nc?.close();
    await t?.stop();
  });

  it('lists every instance of this deployment found by NATS discovery, with its request counts', async () => {
    const reply = await t.post('/v1/messages', { userId: 'cy', text: 'how many red shirts are in stock?' });
    expect(reply.status).toBe(200);
    const { status, body } = await get(`${t.url}/dashboard/api/services`);
    expect(status).toBe(200);
    expect(body.process.transport).toBe('nats');
    expect(body.discovery.ok).toBe(true);
    const instances = body.discovery.instances as {
      contract: string;
      id: string;
      process?: string;
      host?: string;
      local: boolean;
      requests: number;
      endpoints: { name: string; subject: string; requests: number }[];
    }[];
    expect(instances.map((i) => i.id)).not.toContain(stranger.id);
    const contracts = instances.map((i) => i.contract).sort();
    expect(contracts).toEqual(
      expect.arrayContaining(['conversation', 'gateway', 'models', 'skills.inventory']),
    );
    expect(instances.every((i) => i.local)).toBe(true);
    // Each names the process it runs in as its logs do, so a row can be matched with log lines.
    expect(new Set(instances.map((i) => i.process))).toEqual(new Set([body.process.instance]));
    expect(instances.every((i) => i.host === `${hostname()}:${process.pid}`)).toBe(true);
    for (const instance of instances) {
      for (const endpoint of instance.endpoints) expect(endpoint.subject.startsWith(`${prefix}.`)).toBe(true);
    }
    const conversation = instances.find((i) => i.contract === 'conversation')!;
    expect(conversation.endpoints.find((e) => e.name === 'handle')!.requests).toBeGreaterThanOrEqual(1);
    expect(instances.find((i) => i.contract === 'skills.inventory')!.requests).toBeGreaterThanOrEqual(1);
  });
});

describe('dashboard API over the nats transport, with the NATS server hung', () => {
  let t: TestApp;
  let relay: ReturnType<typeof createTcpServer>;
  /** While true the relay holds what either side sends (a hung server); then it passes it on. */
  let hung = false;
  const held: (() => void)[] = [];

  beforeAll(async () => {
    const target = new URL(NATS_URL);
    relay = createTcpServer((client) => {
      const server = connectTcp(Number(target.port || 4222), target.hostname);
      const pass = (from: Socket, to: Socket) =>
        from.on('data', (chunk) => (hung ? held.push(() => to.write(chunk)) : to.write(chunk)));
      pass(client, server);
      pass(server, client);
      for (const socket of [client, server]) socket.on('error', () => undefined);
      client.on('close', () => server.destroy());
      server.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const url = `nats://127.0.0.1:${(relay.address() as AddressInfo).port}`;
    t = await startTestApp({
      transport: { kind: 'nats' },
      nats: { url, subjectPrefix: `dashhung${randomHex(4)}` },
    });
  });
  afterAll(async () => {
    hung = false;
    for (const send of held.splice(0)) send();
    await t?.stop();
    await new Promise<void>((resolve) => relay.close(() => resolve()));
  });

  it('says discovery failed, rather than that no instance runs', async () => {
    const before = await get(`${t.url}/dashboard/api/services`);
    expect(before.body.discovery).toMatchObject({ kind: 'nats', ok: true });
    expect(before.body.discovery.instances.length).toBeGreaterThan(0);
    hung = true;
    // Past the discovery cache (2 s).
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const during = await get(`${t.url}/dashboard/api/services`);
    expect(during.status).toBe(200);
    expect(during.body.discovery).toEqual({
      kind: 'nats',
      ok: false,
      error: 'the NATS server did not answer within 2000 ms',
    });
  }, 20_000);
});

describe('dashboard API of a process without the conversation role', () => {
  it('says which sections it does not have, and marks a failing check', async () => {
    const http = createHttpServer({ logger: silentLogger(), bodyLimitBytes: 1024 });
    registerDashboard(http, {
      auth: createApiKeyCheck([]),
      services: createServicesView({
        process: { version: '0.0.0', roles: ['gateway'], transport: 'http' },
        checks: [{ name: 'store:redis', check: () => Promise.reject(new Error('ECONNREFUSED')) }],
      }),
      auditFile: join(import.meta.dirname, 'no-such-audit.jsonl'),
    });
    try {
      const url = await http.listen({ port: 0, host: '127.0.0.1' });
      const services = await get(`${url}/dashboard/api/services`);
      expect(services.body.process).toMatchObject({ roles: ['gateway'], status: 'not ready' });
      expect(services.body.process.checks[0]).toMatchObject({
        name: 'store:redis',
        ok: false,
        error: 'ECONNREFUSED',
      });
      const conversations = await get(`${url}/dashboard/api/conversations`);
      expect(conversations.body).toMatchObject({
        available: false,
        reason: expect.stringContaining('conversation role'),
      });
      const one = await get(`${url}/dashboard/api/conversations/c_1`);
      expect(one.status).toBe(404);
      const audit = await get(`${url}/dashboard/api/audit`);
      expect(audit.body).toMatchObject({
        available: false,
        reason: expect.stringContaining('no-such-audit.jsonl'),
      });
      const usage = await get(`${url}/dashboard/api/usage`);
      expect(usage.body).toEqual({ available: false, reason: 'this process does not count model usage' });
    } finally {
      await http.close();
    }
  });
});
