import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Update } from 'grammy/types';
import { afterEach, describe, expect, it } from 'vitest';
import { TelegramConfigSchema } from '../../../config/schema-channels.ts';
import { silentLogger } from '../../../observability/logger.ts';
import type { ChannelMessage } from '../types.ts';
import { createTelegramAdapter } from './adapter.ts';

/** A Bot API on loopback that takes every request and never answers it (a black-holed proxy). */
async function startSilentBotApi(): Promise<{ url: string; calls: string[]; close(): Promise<void> }> {
  const calls: string[] = [];
  const open = new Set<ServerResponse>();
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    calls.push(request.url ?? '');
    open.add(response);
    request.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: async () => {
      for (const response of open) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('Telegram adapter start', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  for (const mode of ['webhook', 'polling'] as const) {
    it(`fails its start within the call timeout when the Bot API never answers (${mode})`, async () => {
      const api = await startSilentBotApi();
      close = api.close;
      const config = TelegramConfigSchema.parse({
        botToken: '123456:AAfake',
        apiRoot: api.url,
        mode,
        ...(mode === 'webhook'
          ? { webhookSecret: 'secret', webhookUrl: 'https://bot.example.com/channels/telegram/webhook' }
          : { pollingTimeoutSeconds: 1 }),
      });
      const adapter = createTelegramAdapter(config, silentLogger(), { startCallTimeoutMs: 300 });
      const stop = new AbortController();
      const started = Date.now();
      // The runtime tries again later (starter.ts); the start itself gives up after one call.
      await expect(
        adapter.start!({
          sink: { accept: async () => undefined },
          logger: silentLogger(),
          signal: stop.signal,
        }),
      ).rejects.toMatchObject({ code: 'UNAVAILABLE', retryable: true });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(api.calls.filter((url) => url.endsWith('/getMe'))).toHaveLength(1);
      stop.abort();
      await adapter.stop!();
    }, 10_000);
  }
});

/** A Bot API on loopback that hands out `batch` to getUpdates until the offset moves past it. */
async function startBatchBotApi(batch: Update[]) {
  const offsets: (number | undefined)[] = [];
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const method = (request.url ?? '').split('/').at(-1);
      const body = chunks.length
        ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { offset?: number })
        : {};
      let result: unknown = true;
      if (method === 'getMe') result = { id: 123456, is_bot: true, first_name: 'Claw', username: 'clawbot' };
      if (method === 'getUpdates') {
        offsets.push(body.offset);
        result = batch.filter((update) => update.update_id >= (body.offset ?? 0));
      }
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ ok: true, result }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    offsets,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const from = { id: 7, is_bot: false, first_name: 'Ada' };
const text = (updateId: number, message: Record<string, unknown>) =>
  ({
    update_id: updateId,
    message: { message_id: updateId, date: 1_700_000_000, from, text: 'hi', ...message },
  }) as unknown as Update;

describe('Telegram updates that cannot be read', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('polling skips them and goes on with the rest of the batch and the next offset', async () => {
    const api = await startBatchBotApi([
      text(10, {
        chat: { id: -5, type: 'group' },
        entities: [{ type: 'text_mention', offset: 0, length: 2 }],
      }),
      text(11, {}), // no chat
      text(12, { chat: { id: 7, type: 'private' } }),
    ]);
    close = api.close;
    const config = TelegramConfigSchema.parse({
      botToken: '123456:AAfake',
      apiRoot: api.url,
      mode: 'polling',
      pollingTimeoutSeconds: 0,
    });
    const adapter = createTelegramAdapter(config, silentLogger());
    const accepted: ChannelMessage[] = [];
    const stop = new AbortController();
    await adapter.start!({
      sink: { accept: async (messages) => void accepted.push(...messages) },
      logger: silentLogger(),
      signal: stop.signal,
    });
    const deadline = Date.now() + 5000;
    while (!api.offsets.includes(13) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    stop.abort();
    await adapter.stop!();
    expect(accepted.map((message) => message.updateId)).toEqual(['12']);
    expect(api.offsets).toContain(13);
  });

  it('the webhook answers them 400, not 500', async () => {
    const config = TelegramConfigSchema.parse({
      botToken: '123456:AAfake',
      apiRoot: 'http://127.0.0.1:9',
      webhookSecret: 'secret',
    });
    const adapter = createTelegramAdapter(config, silentLogger(), { startCallTimeoutMs: 100 });
    const route = adapter.routes[0]!;
    const request = (update: unknown) => ({
      method: 'POST',
      url: route.path,
      headers: { 'x-telegram-bot-api-secret-token': 'secret' },
      query: {},
      rawBody: Buffer.from(JSON.stringify(update)),
    });
    for (const update of [
      text(20, {}),
      text(21, { chat: null }),
      text(22, { chat: { id: -5, type: 'group' }, entities: {} }),
    ]) {
      await expect(Promise.resolve().then(() => route.handle(request(update)))).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    }
  });
});
