import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClawmeshPlugin } from '../src/plugins/types.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import {
  eventually,
  type FakeTelegram,
  startFakeTelegram,
  TELEGRAM_BOT,
  TELEGRAM_TOKEN,
  telegramTextUpdate,
} from './support/fake-platforms.ts';

const SECRET = 'delivery-secret';
const WEBHOOK = '/channels/telegram/webhook';
const INBOX_ID = (updateId: number) => `telegram:${TELEGRAM_BOT.id}:${updateId}`;

/** Counts turns (by message text) and can hold them on a gate. */
function turnCounter() {
  let release: ((go: boolean) => void) | undefined;
  const counter = {
    turns: [] as string[],
    hold: false,
    /** Lets held turns go on: answered when `go`, else their message is dropped (no reply). */
    release: (go = false) => release?.(go),
    plugin: {
      name: 'turn-counter',
      timeoutMs: 60_000,
      async onMessageReceived(_ctx, message) {
        counter.turns.push(message.text);
        if (!counter.hold) return message;
        const go = await new Promise<boolean>((resolve) => {
          release = resolve;
        });
        return go ? message : null;
      },
    } satisfies ClawmeshPlugin,
  };
  return counter;
}

describe('channel delivery', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup(options: { dir?: string; overrides?: Record<string, unknown> } = {}) {
    const fake = await startFakeTelegram();
    const counter = turnCounter();
    const app = await start(fake, counter, options);
    cleanups.push(() => fake.close());
    return { fake, counter, app };
  }

  async function start(
    fake: FakeTelegram,
    counter: ReturnType<typeof turnCounter>,
    options: { dir?: string; overrides?: Record<string, unknown> } = {},
  ): Promise<TestApp> {
    const app = await startTestApp(
      {
        channels: {
          telegram: { botToken: TELEGRAM_TOKEN, webhookSecret: SECRET, apiRoot: fake.url, dmPolicy: 'open' },
          delivery: { baseDelayMs: 20, maxDelayMs: 100, maxAttempts: 3 },
        },
        ...(options.dir
          ? { store: { kind: 'sqlite', path: join(options.dir, 'clawmesh.db') }, audit: { enabled: false } }
          : {}),
        ...options.overrides,
      },
      { plugins: [counter.plugin] },
    );
    cleanups.push(() => app.stop());
    return app;
  }

  const post = (t: TestApp, update: unknown) =>
    t.post(WEBHOOK, update, { 'x-telegram-bot-api-secret-token': SECRET });

  async function deliveries(t: TestApp, query = '') {
    const res = await fetch(`${t.url}/v1/deliveries${query}`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { deliveries: unknown }).deliveries as {
      id: string;
      status: string;
      error?: string;
      attempts: number;
    }[];
  }

  it('gives one turn and one reply for five deliveries of one update, concurrent or not', async () => {
    const { fake, counter, app } = await setup();
    const update = telegramTextUpdate({ updateId: 42, text: 'how many red shirts are in stock?' });
    const concurrent = await Promise.all([1, 2, 3].map(() => post(app, update)));
    const sequential = [await post(app, update), await post(app, update)];
    for (const res of [...concurrent, ...sequential]) expect(res.status).toBe(200);
    await fake.waitFor(fake.method('sendMessage'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(counter.turns).toEqual(['how many red shirts are in stock?']);
    expect(fake.sent()).toHaveLength(1);
    const [entry] = await deliveries(app);
    expect(entry).toMatchObject({ id: INBOX_ID(42), status: 'done', outcome: 'replied' });
  });

  it('records a reply that fails every retry as failed, visible at /v1/deliveries?status=failed and in /metrics', async () => {
    const { fake, app } = await setup();
    fake.on('POST', fake.method('sendMessage'), () => ({
      status: 500,
      body: { ok: false, error_code: 500, description: 'Internal Server Error' },
    }));
    await post(app, telegramTextUpdate({ updateId: 7, text: 'hello' }));
    await eventually(async () => (await deliveries(app, '?status=failed')).length === 1);
    const [failed] = await deliveries(app, '?status=failed');
    expect(failed).toMatchObject({ id: INBOX_ID(7), status: 'failed', attempts: 3 });
    expect(failed!.error).toMatch(/500 Internal Server Error after 3 attempts/);
    expect(fake.requestsTo(fake.method('sendMessage'))).toHaveLength(3);
    expect(await deliveries(app, '?status=done')).toHaveLength(0);
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(/clawmesh_channel_delivery_failures_total\{channel="telegram"\} 1/);
    expect(metrics).toMatch(/clawmesh_channel_send_retries_total\{channel="telegram"\} 2/);

    // The operator retries it once the platform is back.
    fake.on('POST', fake.method('sendMessage'), () => ({ body: { ok: true, result: { message_id: 1 } } }));
    const retry = await app.post(`/v1/deliveries/${encodeURIComponent(INBOX_ID(7))}/retry`, {});
    expect(retry.status).toBe(202);
    await eventually(async () => (await deliveries(app, '?status=done')).length === 1);
    const again = await app.post(`/v1/deliveries/${encodeURIComponent(INBOX_ID(7))}/retry`, {});
    expect(again.status).toBe(409);
  });

  it('protects /v1/deliveries with the API keys of /v1/messages', async () => {
    const { app } = await setup({ overrides: { gateway: { port: 0, apiKeys: ['operator-key-123'] } } });
    expect((await fetch(`${app.url}/v1/deliveries`)).status).toBe(401);
    const ok = await fetch(`${app.url}/v1/deliveries?status=failed`, {
      headers: { authorization: 'Bearer operator-key-123' },
    });
    expect(ok.status).toBe(200);
    const bad = await fetch(`${app.url}/v1/deliveries?status=lost`, {
      headers: { authorization: 'Bearer operator-key-123' },
    });
    expect(bad.status).toBe(400);
  });

  it("honours a 429's retry_after before sending again", async () => {
    const { fake, app } = await setup();
    let calls = 0;
    fake.on('POST', fake.method('sendMessage'), () => {
      calls += 1;
      if (calls > 1) return undefined;
      return {
        status: 429,
        body: {
          ok: false,
          error_code: 429,
          description: 'Too Many Requests: retry after 1',
          parameters: { retry_after: 1 },
        },
      };
    });
    await post(app, telegramTextUpdate({ updateId: 8, text: 'hello' }));
    const second = await fake.waitFor(fake.method('sendMessage'), 2, 5000);
    const first = fake.requestsTo(fake.method('sendMessage'))[0]!;
    expect(second.at - first.at).toBeGreaterThanOrEqual(990);
    await eventually(async () => (await deliveries(app, '?status=done')).length === 1);
  });

  it('answers the platform before the turn runs, and runs a pending entry again after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clawmesh-restart-'));
    const fake = await startFakeTelegram();
    cleanups.push(() => fake.close());
    const first = turnCounter();
    first.hold = true;
    const crashed = await start(fake, first, { dir, overrides: { shutdownTimeoutMs: 500 } });
    const update = telegramTextUpdate({ updateId: 99, text: 'how many blue shirts are in stock?' });
    const accepted = await post(crashed, update);
    expect(accepted.status).toBe(200);
    await eventually(() => first.turns.length === 1);
    expect((await deliveries(crashed))[0]).toMatchObject({ id: INBOX_ID(99), status: 'pending' });

    // The first process is stuck mid-turn (as good as dead); a new one starts on the same files.
    const second = turnCounter();
    const restarted = await start(fake, second, { dir });
    const sent = await fake.waitFor(fake.method('sendMessage'));
    expect(sent.body.text).toMatch(/blue shirt/);
    expect(second.turns).toEqual(['how many blue shirts are in stock?']);
    await eventually(async () => (await deliveries(restarted, '?status=done')).length === 1);

    // Telegram delivering the update again after the restart gives no second turn.
    expect((await post(restarted, update)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(second.turns).toHaveLength(1);
    expect(fake.sent()).toHaveLength(1);
    first.release();
  });

  it('finishes a turn in flight at shutdown and sends its reply before stopping', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clawmesh-stop-'));
    const fake = await startFakeTelegram();
    cleanups.push(() => fake.close());
    const counter = turnCounter();
    counter.hold = true;
    const app = await start(fake, counter, { dir });
    expect((await post(app, telegramTextUpdate({ updateId: 77, text: 'hello' }))).status).toBe(200);
    await eventually(() => counter.turns.length === 1);
    let stopped = false;
    const stopping = app.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(stopped).toBe(false);
    counter.release(true);
    await stopping;
    expect(fake.sent()).toHaveLength(1);
    const { createSqliteInboxStore } = await import('../src/store/inbox-sqlite.ts');
    const inbox = createSqliteInboxStore({ path: join(dir, 'clawmesh.db') });
    expect(await inbox.get(INBOX_ID(77))).toMatchObject({ status: 'done', outcome: 'replied' });
    await inbox.close();
  });

  it('resumes a reply whose first part went out at the next part, never sending a part twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clawmesh-resume-'));
    const fake = await startFakeTelegram();
    cleanups.push(() => fake.close());
    const { createSqliteInboxStore } = await import('../src/store/inbox-sqlite.ts');
    const inbox = createSqliteInboxStore({ path: join(dir, 'clawmesh.db') });
    const message = {
      updateId: '123',
      channel: 'telegram',
      account: String(TELEGRAM_BOT.id),
      chatId: '1001',
      userId: '1001',
      text: 'long one',
      isGroup: false,
      mentioned: true,
      replyTo: { chatId: 1001 },
    };
    await inbox.add({ id: INBOX_ID(123), channel: 'telegram', message });
    await inbox.setReply(INBOX_ID(123), { parts: ['part one', 'part two', 'part three'] });
    await inbox.progress(INBOX_ID(123), { partsSent: 1, attempts: 1 });
    await inbox.close();
    const counter = turnCounter();
    const app = await start(fake, counter, { dir });
    await eventually(() => fake.sent().length === 2);
    expect(fake.sent().map((body) => body.text)).toEqual(['part two', 'part three']);
    await eventually(async () => (await deliveries(app, '?status=done')).length === 1);
    expect(counter.turns).toHaveLength(0);
  });
});
