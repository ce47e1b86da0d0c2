import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/observability/logger.ts';
import { startTestApp, type TestApp } from './support/app.ts';

describe('HTTP API: POST /v1/messages', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      gateway: { port: 0, rateLimit: { points: 5, durationSeconds: 60 }, bodyLimitBytes: 4096 },
    });
  });
  afterAll(() => t.stop());

  it('answers a stock question with a reply that used the inventory skill', async () => {
    const res = await t.post('/v1/messages', { userId: 'u1', text: 'how many red shirts are in stock?' });
    expect(res.status).toBe(200);
    expect(res.body.conversationId).toMatch(/^c_/);
    expect(res.body.toolCalls).toHaveLength(1);
    expect(res.body.toolCalls[0]).toMatchObject({ skill: 'inventory', tool: 'lookupStock', ok: true });
    expect(res.body.text).toMatch(/red shirt/i);
    await t.app.services.bus.drain();
    const audit = readFileSync(join(t.dir, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const invoked = audit.find((event) => event.type === 'skill.invoked');
    expect(invoked.data).toMatchObject({
      skill: 'inventory',
      tool: 'lookupStock',
      ok: true,
      conversationId: res.body.conversationId,
    });
    expect(audit.map((event) => event.type)).toEqual(
      expect.arrayContaining(['message.received', 'model.completed', 'skill.invoked', 'response.generated']),
    );
  });

  it('keeps the session of a user: a second message continues the same conversation', async () => {
    const first = await t.post('/v1/messages', { userId: 'u2', text: 'hello' });
    const second = await t.post('/v1/messages', { userId: 'u2', text: 'how many blue shirts are in stock?' });
    expect(second.body.conversationId).toBe(first.body.conversationId);
    const history = await t.app.conversation.history(
      { conversationId: first.body.conversationId },
      (await import('../src/core/context.ts')).createCallContext(),
    );
    expect(history.messages.filter((m) => m.role === 'user').map((m) => m.content)).toEqual([
      'hello',
      'how many blue shirts are in stock?',
    ]);
  });

  it('continues a conversation id the client chose', async () => {
    const res = await t.post('/v1/messages', { userId: 'u3', text: 'hi', conversationId: 'thread-42' });
    expect(res.status).toBe(200);
    expect(res.body.conversationId).toBe('thread-42');
  });

  it("refuses another user's conversation id with 404", async () => {
    const res = await t.post('/v1/messages', { userId: 'intruder', text: 'hi', conversationId: 'thread-42' });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });

  it("cannot claim another user's session conversation before its owner writes to it", async () => {
    // A session's id is derived from agent, channel and user, so anyone can compute it.
    const carols = `c_${createHash('sha256').update('default\u0000api\u0000carol').digest('hex').slice(0, 24)}`;
    const claim = await t.post('/v1/messages', { userId: 'mallory', text: 'hi', conversationId: carols });
    expect(claim.status).toBe(404);
    expect(claim.body.error.message).toContain(carols);
    const own = await t.post('/v1/messages', { userId: 'carol', text: 'hi' });
    expect(own.status).toBe(200);
    expect(own.body.conversationId).toBe(carols);
    // Naming one's own session explicitly continues it.
    const named = await t.post('/v1/messages', { userId: 'carol', text: 'again', conversationId: carols });
    expect(named.status).toBe(200);
    expect(named.body.conversationId).toBe(carols);
  });

  it("keeps a caller's x-request-id, and replaces one too long or with spaces by a fresh id", async () => {
    const send = (id: string) =>
      fetch(`${t.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': id },
        body: JSON.stringify({ userId: 'rid', text: 'hello' }),
      });
    const kept = 'checkout-7f3a';
    expect((await send(kept)).headers.get('x-request-id')).toBe(kept);
    const longest = 'r'.repeat(128);
    expect((await send(longest)).headers.get('x-request-id')).toBe(longest);
    for (const odd of ['r'.repeat(129), 'a'.repeat(3000), 'has spaces']) {
      const res = await send(odd);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('rejects malformed JSON with 400', async () => {
    const res = await t.post('/v1/messages', '{"userId": "u1", "text": ');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_ARGUMENT');
    expect(res.body.error.message).toMatch(/JSON/);
  });

  it('rejects a body that fails the schema with 400 naming the field', async () => {
    const missing = await t.post('/v1/messages', { userId: 'u1' });
    expect(missing.status).toBe(400);
    expect(missing.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(missing.body.error.message).toMatch(/text/);
    const wrongType = await t.post('/v1/messages', { userId: 42, text: 'x' });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.message).toMatch(/userId/);
    expect(wrongType.body.error.details.fields).toContain('userId');
    const badId = await t.post('/v1/messages', { userId: 'u1', text: 'x', conversationId: 'has spaces' });
    expect(badId.status).toBe(400);
    expect(badId.body.error.message).toMatch(/conversationId/);
  });

  it('rejects a body over the size limit with 413', async () => {
    const res = await t.post('/v1/messages', { userId: 'u1', text: 'x'.repeat(10_000) });
    expect(res.status).toBe(413);
    expect(res.body.error.message).toMatch(/too large/);
  });

  it('rejects a body that is not JSON with 415', async () => {
    const response = await fetch(`${t.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hi',
    });
    expect(response.status).toBe(415);
  });

  it('limits each user with 429 and Retry-After, leaving other users alone', async () => {
    const statuses: number[] = [];
    let last: Awaited<ReturnType<TestApp['post']>> | undefined;
    for (let i = 0; i < 7; i += 1) {
      last = await t.post('/v1/messages', { userId: 'flooder', text: `hello ${i}` });
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).toEqual([429, 429]);
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(last!.body.error.code).toBe('RATE_LIMITED');
    const other = await t.post('/v1/messages', { userId: 'calm', text: 'hello' });
    expect(other.status).toBe(200);
  });

  it('returns 404 in the error shape for an unknown route', async () => {
    const res = await t.post('/v1/nothing', {});
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });
});

describe('HTTP API: Idempotency-Key', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.stop());

  it('returns the first reply to a repeat without running a second turn', async () => {
    const headers = { 'idempotency-key': 'order-7-check' };
    const body = { userId: 'idem', text: 'how many black hoodies are in stock?' };
    const first = await t.post('/v1/messages', body, headers);
    const second = await t.post('/v1/messages', body, headers);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    const history = await t.app.services.conversations!.messages(first.body.conversationId);
    expect(history.filter((m) => m.role === 'user')).toHaveLength(1);
  });

  it('runs one turn for concurrent repeats', async () => {
    const headers = { 'idempotency-key': 'burst-1' };
    const body = { userId: 'idem-burst', text: 'how many white sneakers are in stock?' };
    const replies = await Promise.all([1, 2, 3, 4].map(() => t.post('/v1/messages', body, headers)));
    for (const reply of replies) expect(reply.status).toBe(200);
    expect(new Set(replies.map((r) => JSON.stringify(r.body))).size).toBe(1);
    const history = await t.app.services.conversations!.messages(replies[0]!.body.conversationId);
    expect(history.filter((m) => m.role === 'user')).toHaveLength(1);
  });

  it('keeps the keys of two users apart even when their parts hold colons', async () => {
    const first = await t.post('/v1/messages', { userId: 'a:b', text: 'hello' }, { 'idempotency-key': 'c' });
    const second = await t.post('/v1/messages', { userId: 'a', text: 'hi' }, { 'idempotency-key': 'b:c' });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.headers.get('idempotent-replayed')).toBeNull();
  });

  it('refuses a key reused with a different body with 409', async () => {
    await t.post('/v1/messages', { userId: 'idem2', text: 'hello' }, { 'idempotency-key': 'k-reuse' });
    const res = await t.post(
      '/v1/messages',
      { userId: 'idem2', text: 'something else' },
      { 'idempotency-key': 'k-reuse' },
    );
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('CONFLICT');
  });
});

describe('HTTP API: API keys', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ gateway: { port: 0, apiKeys: ['secret-key-1234'] } });
  });
  afterAll(() => t.stop());

  it('rejects a request without a key with 401', async () => {
    const res = await t.post('/v1/messages', { userId: 'u', text: 'hi' });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('UNAUTHENTICATED');
  });

  it('rejects a wrong key with 401 and accepts the right one', async () => {
    expect(
      (await t.post('/v1/messages', { userId: 'u', text: 'hi' }, { authorization: 'Bearer nope-nope-nope' }))
        .status,
    ).toBe(401);
    const ok = await t.post(
      '/v1/messages',
      { userId: 'u', text: 'hi' },
      { authorization: 'Bearer secret-key-1234' },
    );
    expect(ok.status).toBe(200);
  });

  it('keeps health and metrics open', async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
  });
});

describe('HTTP API: a turn that fails inside the platform', () => {
  let t: TestApp;
  const lines: Record<string, unknown>[] = [];
  beforeAll(async () => {
    const logger = createLogger({
      destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
    });
    t = await startTestApp({}, { logger });
  });
  afterAll(() => t.stop());

  it("logs the failure (the INTERNAL error's stack included) with the request, trace and conversation", async () => {
    const first = await t.post('/v1/messages', { userId: 'broken-store', text: 'hello' });
    expect(first.status).toBe(200);
    // The store's table goes away under the running process: the turn's write fails unexpectedly.
    const db = new Database(join(t.dir, 'clawmesh.db'));
    db.exec('DROP TABLE messages');
    db.close();
    const traceId = randomBytes(16).toString('hex');
    const failed = await t.post(
      '/v1/messages',
      { userId: 'broken-store', text: 'hello again' },
      { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    );
    expect(failed.status).toBe(500);
    const requestId = failed.headers.get('x-request-id');
    const turn = lines.filter((line) => line.requestId === requestId);
    expect(turn.map((line) => line.msg)).toEqual(expect.arrayContaining(['turn failed', 'internal error']));
    for (const line of turn) {
      expect(line, String(line.msg)).toMatchObject({
        traceId,
        spanId: expect.stringMatching(/^[0-9a-f]{16}$/),
        conversationId: first.body.conversationId,
      });
    }
  });
});
