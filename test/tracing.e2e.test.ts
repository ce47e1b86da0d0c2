import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTraceRequest } from './support/otlp.ts';
import { type CliProcess, spawnCli } from './support/process.ts';
import { deleteRedisKeys } from './support/redis-keys.ts';

/*
 * One message through a split deployment — gateway, conversation, one skill host and models,
 * each its own OS process over NATS and Redis — gives one trace. Every process exports its
 * spans over OTLP/HTTP to a loopback receiver that reads the protobuf (or JSON) the exporter sends.
 */

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const API_KEY = 'tracing-test-key-0123';

/** A span as OTLP carries it, with the `service.name` of its resource. */
interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
}

const SERVER = 2;
const CLIENT = 3;
const CONSUMER = 5;

/** A loopback OTLP/HTTP receiver: `POST /v1/traces` with the body the exporter sends. */
function startReceiver(): Promise<{
  server: Server;
  url: string;
  spans: ReceivedSpan[];
  contentTypes: string[];
}> {
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      contentTypes.push(String(req.headers['content-type']));
      const payload = readTraceRequest(Buffer.concat(chunks), req.headers);
      for (const resource of payload.resourceSpans) {
        const service =
          resource.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '?';
        for (const scope of resource.scopeSpans) {
          for (const span of scope.spans) {
            spans.push({
              service,
              traceId: span.traceId,
              spanId: span.spanId,
              ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
              name: span.name,
              kind: span.kind,
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}`, spans, contentTypes });
    });
  });
}

const run = randomBytes(4).toString('hex');
const prefix = `trace${run}`;
const dir = mkdtempSync(join(tmpdir(), 'clawmesh-tracing-'));
const processes: CliProcess[] = [];
let receiver: Awaited<ReturnType<typeof startReceiver>>;
const urls: Record<string, string> = {};

async function startRole(args: string[], extra: Record<string, string> = {}): Promise<string> {
  const child = spawnCli(['start', ...args], {
    cwd: dir,
    env: {
      PORT: '0',
      CLAWMESH_TRANSPORT: 'nats',
      NATS_URL,
      CLAWMESH_NATS__SUBJECT_PREFIX: prefix,
      CLAWMESH_STORE: 'redis',
      REDIS_URL,
      CLAWMESH_REDIS__KEY_PREFIX: `${prefix}:`,
      CLAWMESH_BUS: 'redis',
      CLAWMESH_SKILLS__LOAD: '["inventory"]',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      LOG_LEVEL: 'info',
      ...extra,
    },
  });
  processes.push(child);
  return ((await child.waitForLog(/listening on/, 30_000)) as { url: string }).url;
}

/** Waits until `ready` holds for the spans received so far. */
async function spansWhere(ready: (spans: ReceivedSpan[]) => boolean, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!ready(receiver.spans)) {
    if (Date.now() > deadline) return receiver.spans;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return receiver.spans;
}

beforeAll(async () => {
  receiver = await startReceiver();
  // One role exports OTLP JSON, the others the default protobuf: one trace either way.
  urls.models = await startRole(['models'], { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
  urls.skills = await startRole(['skills', '--skills', 'inventory']);
  // The conversation role runs the audit consumer: its span joins the trace through the event.
  urls.conversation = await startRole(['conversation'], { CLAWMESH_AUDIT__PATH: join(dir, 'audit.jsonl') });
  urls.gateway = await startRole(['gateway'], { CLAWMESH_API_KEYS: API_KEY });
}, 120_000);

afterAll(async () => {
  for (const child of processes) if (child.child.exitCode === null) child.child.kill('SIGKILL');
  await new Promise<void>((resolve) => receiver?.server.close(() => resolve()));
  await deleteRedisKeys(REDIS_URL, `${prefix}:*`);
});

describe('tracing across a split deployment (OTLP/HTTP)', () => {
  it('gives one message one trace whose spans cover every hop, each parented in the trace', async () => {
    // Readiness probes call other services too; their traces are not sampled.
    for (const url of Object.values(urls)) expect((await fetch(`${url}/readyz`)).status).toBe(200);

    const response = await fetch(`${urls.gateway}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ userId: 'tracer', text: 'how many red shirts are in stock?' }),
    });
    expect(response.status).toBe(200);
    const reply = (await response.json()) as { toolCalls: { skill: string; ok: boolean }[] };
    expect(reply.toolCalls[0]).toMatchObject({ skill: 'inventory', ok: true });

    const rootOf = (spans: ReceivedSpan[]) => spans.find((s) => s.name === 'POST /v1/messages');
    const complete = (spans: ReceivedSpan[]) => {
      const root = rootOf(spans);
      if (!root) return false;
      const trace = spans.filter((s) => s.traceId === root.traceId);
      return (
        trace.some((s) => s.name === 'tool.call inventory.lookupStock') &&
        trace.filter((s) => s.name === 'model.call').length === 2 &&
        trace.some((s) => s.name === 'response.generated process')
      );
    };
    const spans = await spansWhere(complete);
    expect(new Set(receiver.contentTypes)).toEqual(new Set(['application/x-protobuf', 'application/json']));
    const root = rootOf(spans);
    expect(root, 'the gateway exported the root span').toBeDefined();
    const trace = spans.filter((s) => s.traceId === root!.traceId);

    // One trace: every span of the turn's kinds that any process exported belongs to it.
    for (const name of ['POST /v1/messages', 'turn', 'model.call', 'tool.call inventory.lookupStock']) {
      expect(
        spans.filter((s) => s.name === name).every((s) => s.traceId === root!.traceId),
        name,
      ).toBe(true);
    }
    expect(spans.some((s) => s.name === 'conversation/history')).toBe(false);

    // One root, and every other span's parent is a span of the same trace.
    const ids = new Set(trace.map((s) => s.spanId));
    expect(trace.filter((s) => !s.parentSpanId)).toEqual([root]);
    for (const span of trace) {
      if (span === root) continue;
      expect(ids.has(span.parentSpanId!), `${span.service} ${span.name} has its parent in the trace`).toBe(
        true,
      );
    }

    const by = (service: string, name: string, kind: number) =>
      trace.filter((s) => s.service === service && s.name === name && s.kind === kind);
    const parentOf = (span: ReceivedSpan) => trace.find((s) => s.spanId === span.parentSpanId)!;

    // The gateway: the root (server) and its call to the conversation service (client).
    expect(root).toMatchObject({ service: 'clawmesh-gateway', kind: SERVER });
    const [handleCall] = by('clawmesh-gateway', 'conversation/handle', CLIENT);
    expect(parentOf(handleCall!)).toBe(root);
    // The conversation role: the turn, a child of the gateway's call across NATS.
    const [turn] = by('clawmesh-conversation', 'turn', SERVER);
    expect(parentOf(turn!)).toBe(handleCall);
    // Models: each model call's server span is a child of the conversation's client span.
    const modelCalls = by('clawmesh-models', 'model.call', SERVER);
    expect(modelCalls).toHaveLength(2);
    for (const call of modelCalls) {
      expect(parentOf(call)).toMatchObject({
        service: 'clawmesh-conversation',
        name: 'models/complete',
        kind: CLIENT,
      });
      expect(parentOf(parentOf(call))).toBe(turn);
    }
    // Skills: the tool call, a child of the conversation's call.
    const [tool] = by('clawmesh-skills', 'tool.call inventory.lookupStock', SERVER);
    expect(parentOf(tool!)).toMatchObject({ name: 'skills.inventory/invoke', kind: CLIENT });
    expect(parentOf(parentOf(tool!))).toBe(turn);
    // Events: the audit consumer's spans are children of the turn that published them.
    const consumed = trace.filter((s) => s.kind === CONSUMER);
    expect(consumed.map((s) => s.name)).toContain('message.received process');
    for (const span of consumed) expect(parentOf(span)).toBe(turn);

    expect(new Set(trace.map((s) => s.service))).toEqual(
      new Set(['clawmesh-gateway', 'clawmesh-conversation', 'clawmesh-skills', 'clawmesh-models']),
    );
  }, 60_000);
});
