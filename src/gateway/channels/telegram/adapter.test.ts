import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TelegramConfigSchema } from '../../../config/schema-channels.ts';
import { silentLogger } from '../../../observability/logger.ts';
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
    it(`does not hold the gateway's start when the Bot API never answers (${mode})`, async () => {
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
      await adapter.start!({
        sink: { accept: async () => undefined },
        logger: silentLogger(),
        signal: stop.signal,
      });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(api.calls.some((url) => url.endsWith('/getMe'))).toBe(true);
      stop.abort();
      await adapter.stop!();
    }, 10_000);
  }
});
