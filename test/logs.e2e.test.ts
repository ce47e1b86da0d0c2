import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type FakeOpenAI, startFakeOpenAI } from './support/fake-openai.ts';
import { readTraceRequest } from './support/otlp.ts';
import { type CliProcess, spawnCli } from './support/process.ts';

/*
 * The JSON lines a `clawmesh start` process writes on stdout while it answers a message: every
 * line of the turn names the same trace and conversation (with service, instance, request and
 * span), and no secret the process was given appears anywhere in its output.
 */

const SECRETS = {
  CLAWMESH_API_KEYS: `api-key-${randomBytes(8).toString('hex')}`,
  OPENAI_API_KEY: `sk-test-${randomBytes(12).toString('hex')}`,
  STORE_API_KEY: `store-${randomBytes(8).toString('hex')}`,
  TELEGRAM_WEBHOOK_SECRET: `tg-${randomBytes(8).toString('hex')}`,
  SLACK_SIGNING_SECRET: `slack-${randomBytes(8).toString('hex')}`,
};
const QUESTION = 'how many red shirts are in stock?';

let openai: FakeOpenAI;
let server: CliProcess;
let url: string;
/** A loopback OTLP/HTTP receiver: the ids of the spans exported, by trace id. */
let collector: Server;
const exported = new Map<string, Set<string>>();

function startCollector(): Promise<string> {
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const payload = readTraceRequest(Buffer.concat(chunks), req.headers);
      for (const resource of payload.resourceSpans) {
        for (const scope of resource.scopeSpans) {
          for (const span of scope.spans) {
            const ids = exported.get(span.traceId) ?? new Set<string>();
            exported.set(span.traceId, ids.add(span.spanId));
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) =>
    collector.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(collector.address() as AddressInfo).port}`),
    ),
  );
}

/** Parsed stdout lines written from `from` on. */
function linesSince(from: number): Record<string, unknown>[] {
  return server
    .stdout()
    .slice(from)
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Sends a message with a known trace; resolves with the reply and the lines the turn wrote. */
async function turn(done: RegExp) {
  const from = server.stdout().length;
  const traceId = randomBytes(16).toString('hex');
  const response = await fetch(`${url}/v1/messages`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${SECRETS.CLAWMESH_API_KEYS}`,
      traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
    },
    body: JSON.stringify({ userId: 'logged-user', text: QUESTION }),
  });
  const body = (await response.json()) as { conversationId?: string };
  const deadline = Date.now() + 5000;
  while (!linesSince(from).some((line) => done.test(String(line.msg))) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // Anything the turn still writes after its last expected line (event consumers) belongs to it too.
  await new Promise((resolve) => setTimeout(resolve, 200));
  return {
    response,
    body,
    traceId,
    requestId: response.headers.get('x-request-id'),
    lines: linesSince(from),
  };
}

beforeAll(async () => {
  openai = await startFakeOpenAI();
  const endpoint = await startCollector();
  server = spawnCli(['start'], {
    cwd: mkdtempSync(join(tmpdir(), 'clawmesh-logs-')),
    env: {
      PORT: '0',
      LOG_LEVEL: 'debug',
      OPENAI_BASE_URL: openai.url,
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      ...SECRETS,
    },
  });
  url = ((await server.waitForLog(/^Clawmesh listening/, 30_000)) as { url: string }).url;
}, 60_000);

afterAll(async () => {
  if (server?.child.exitCode === null) {
    server.child.kill('SIGTERM');
    await server.exited;
  }
  await openai?.close();
  await new Promise<void>((resolve) => (collector ? collector.close(() => resolve()) : resolve()));
});

describe('the log lines of one turn', () => {
  it('all carry the service, instance, request, trace, span and conversation of the turn', async () => {
    openai.enqueue(
      { type: 'toolCalls', calls: [{ name: 'inventory__lookupStock', arguments: { item: 'red shirts' } }] },
      { type: 'text', content: 'red shirt: 42 units in stock' },
    );
    const { response, body, traceId, requestId, lines } = await turn(/^message answered$/);
    expect(response.status).toBe(200);
    expect(body.conversationId).toMatch(/^c_/);

    // Gateway, conversation, models (twice) and the skill host each wrote a line of this turn.
    const messages = lines.map((line) => line.msg);
    for (const msg of ['message answered', 'turn finished', 'tool call finished'])
      expect(messages).toContain(msg);
    expect(messages.filter((msg) => msg === 'model call finished')).toHaveLength(2);

    const spans = new Set<unknown>();
    for (const line of lines) {
      expect(line, String(line.msg)).toMatchObject({
        service: 'clawmesh',
        instance: expect.stringMatching(/.+/),
        requestId,
        traceId,
        spanId: expect.stringMatching(/^[0-9a-f]{16}$/),
        conversationId: body.conversationId,
      });
      spans.add(line.spanId);
    }
    // Each line names the span it was written in: spans the process exported in this trace.
    expect(spans.size).toBeGreaterThan(1);
    const deadline = Date.now() + 5000;
    const inTrace = () => [...spans].every((id) => exported.get(traceId)?.has(String(id)));
    while (!inTrace() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect([...spans].filter((id) => !exported.get(traceId)?.has(String(id)))).toEqual([]);
  }, 30_000);

  it('name the trace of a failed turn too, with the secret in the upstream error redacted', async () => {
    // A provider that echoes the key it refused, as some do in their error messages.
    openai.enqueue({
      type: 'status',
      status: 401,
      body: {
        error: {
          message: `Incorrect API key provided: ${SECRETS.OPENAI_API_KEY}`,
          type: 'invalid_request_error',
          code: 'invalid_api_key',
        },
      },
    });
    const { response, traceId, lines } = await turn(/^turn failed$/);
    expect(response.status).toBeGreaterThanOrEqual(500);
    const failed = lines.find((line) => line.msg === 'model call failed');
    expect(failed, 'the models service logged the failure').toBeDefined();
    expect(String(failed!.err)).toMatch(/Incorrect API key provided: \[redacted\]/);
    for (const line of lines) {
      expect(line).toMatchObject({ traceId, conversationId: expect.stringMatching(/^c_/) });
    }
    expect(new Set(lines.map((line) => line.conversationId)).size).toBe(1);
  }, 30_000);

  it("name the trace of a failed web chat turn too, the gateway's line about it included", async () => {
    openai.enqueue({
      type: 'status',
      status: 401,
      body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: null } },
    });
    const from = server.stdout().length;
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/webchat/ws`);
    const frames: Record<string, unknown>[] = [];
    const frame = (type: string) =>
      new Promise<Record<string, unknown>>((resolve) => {
        const check = () => {
          const found = frames.find((f) => f.type === type);
          if (found) resolve(found);
        };
        ws.on('message', check);
        check();
      });
    ws.on('message', (data) => frames.push(JSON.parse(String(data)) as Record<string, unknown>));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(
      JSON.stringify({
        type: 'hello',
        sessionId: randomBytes(16).toString('hex'),
        lastSeq: 0,
        key: SECRETS.CLAWMESH_API_KEYS,
      }),
    );
    const { conversationId } = (await frame('ready')) as { conversationId: string };
    ws.send(JSON.stringify({ type: 'message', clientMessageId: 'message-1', text: QUESTION }));
    expect(await frame('error')).toMatchObject({ replyTo: 'message-1' });
    ws.close();
    await server.waitForLog(/^web chat turn failed$/, 5000);
    await new Promise((resolve) => setTimeout(resolve, 200));

    const lines = linesSince(from);
    const messages = lines.map((line) => line.msg);
    for (const msg of ['model call failed', 'turn failed', 'web chat turn failed'])
      expect(messages).toContain(msg);
    const traceId = lines[0]!.traceId;
    const requestId = lines[0]!.requestId;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    for (const line of lines) {
      expect(line, String(line.msg)).toMatchObject({
        service: 'clawmesh',
        instance: expect.stringMatching(/.+/),
        requestId,
        traceId,
        spanId: expect.stringMatching(/^[0-9a-f]{16}$/),
        conversationId,
      });
    }
    // The gateway's line is written in the root span the web chat started: exported in this trace.
    const gateway = lines.find((line) => line.msg === 'web chat turn failed')!;
    const deadline = Date.now() + 5000;
    const inTrace = () => exported.get(String(traceId))?.has(String(gateway.spanId));
    while (!inTrace() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(inTrace()).toBe(true);
  }, 30_000);

  it('never contain a secret of the config or the message text, anywhere in the output', async () => {
    const output = server.stdout() + server.stderr();
    expect(output.length).toBeGreaterThan(0);
    for (const [name, value] of Object.entries(SECRETS)) expect(output.includes(value), name).toBe(false);
    expect(output).not.toContain(QUESTION);
  });
});
