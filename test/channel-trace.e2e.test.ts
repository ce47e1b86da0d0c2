import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  type FakeTelegram,
  startFakeTelegram,
  TELEGRAM_TOKEN,
  telegramTextUpdate,
} from './support/fake-platforms.ts';
import { type OtlpSpan, readTraceRequest } from './support/otlp.ts';
import { type CliProcess, spawnCli } from './support/process.ts';

/*
 * A Telegram message through `clawmesh start` (the built CLI) with tracing on: its turn and the
 * sending of its reply are one trace, and every log line about it — the turn's and the reply's,
 * a failed send included — names that trace, its request and its conversation.
 */

const SECRET = 'channel-trace-webhook-secret';
let receiver: Server;
let receiverUrl: string;
const spans: OtlpSpan[] = [];
let telegram: FakeTelegram;
let app: CliProcess | undefined;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = readTraceRequest(Buffer.concat(chunks), req.headers);
      for (const resource of body.resourceSpans)
        for (const scope of resource.scopeSpans) spans.push(...scope.spans);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  telegram = await startFakeTelegram();
});

afterAll(async () => {
  app?.child.kill('SIGKILL');
  await telegram.close();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

type Line = Record<string, unknown>;

describe('a Telegram message with tracing on', () => {
  it('gives the reply its trace: a failed send is logged with the trace, span, request and conversation', async () => {
    // The first sendMessage fails (Telegram's 500), the retry goes through.
    let sends = 0;
    telegram.on('POST', telegram.method('sendMessage'), () => {
      sends += 1;
      return sends === 1
        ? { status: 500, body: { ok: false, error_code: 500, description: 'Internal Server Error' } }
        : undefined;
    });
    app = spawnCli(['start'], {
      cwd: mkdtempSync(join(tmpdir(), 'clawmesh-channel-trace-')),
      env: {
        PORT: '0',
        LOG_LEVEL: 'debug',
        TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN,
        TELEGRAM_WEBHOOK_SECRET: SECRET,
        TELEGRAM_API_ROOT: telegram.url,
        CLAWMESH_CHANNELS__TELEGRAM__DM_POLICY: 'open',
        CLAWMESH_CHANNELS__DELIVERY__BASE_DELAY_MS: '20',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
      },
    });
    const { url } = (await app.waitForLog(/listening on/, 20_000)) as { url: string };
    // The channel has started (getMe, setWebhook or deleteWebhook) once /readyz says so.
    await eventually(async () => {
      const ready = (await (await fetch(`${url}/readyz`)).json()) as {
        checks: { name: string; ok: boolean }[];
      };
      return ready.checks.some((check) => check.name === 'channel:telegram' && check.ok);
    }, 10_000);
    const webhook = await fetch(`${url}/channels/telegram/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRET },
      body: JSON.stringify(telegramTextUpdate({ updateId: 501, text: 'how many red shirts are in stock?' })),
    });
    expect(webhook.status).toBe(200);
    await eventually(() => telegram.sent().length === 2, 10_000);
    app.child.kill('SIGTERM');
    expect(await app.exited).toBe(0);

    const lines = app
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Line);
    const turn = lines.find((line) => line.msg === 'turn finished');
    const retry = lines.find((line) => line.msg === 'channel reply send failed; retrying');
    expect(turn).toBeDefined();
    expect(retry).toBeDefined();
    const root = spans.find((span) => span.name === 'channel telegram');
    expect(root).toBeDefined();
    expect(root!.parentSpanId ?? '').toBe('');
    // The turn runs under the channel's span, in its trace.
    const turnSpan = spans.find((span) => span.name === 'turn');
    expect(turnSpan?.traceId).toBe(root!.traceId);
    expect(turnSpan?.parentSpanId).toBe(root!.spanId);
    expect(turn).toMatchObject({ traceId: root!.traceId });
    // The failed send: the same trace, written in the channel's span, with the turn's request and conversation.
    expect(retry).toMatchObject({
      traceId: root!.traceId,
      spanId: root!.spanId,
      requestId: turn!.requestId,
      conversationId: turn!.conversationId,
      channel: 'telegram',
      code: 'UNAVAILABLE',
    });
  }, 40_000);
});
