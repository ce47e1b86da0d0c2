import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createClient } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import { runPairing } from '../src/cli/pairing.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import {
  eventually,
  type FakeTelegram,
  startFakeTelegram,
  TELEGRAM_BOT,
  TELEGRAM_TOKEN,
  telegramTextUpdate,
} from './support/fake-platforms.ts';

const SECRET = 'access-secret';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
let nextUpdate = 1000;

describe('channel access', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup(telegram: Record<string, unknown>, overrides: Record<string, unknown> = {}) {
    const fake = await startFakeTelegram();
    cleanups.push(() => fake.close());
    const { channels, ...rest } = overrides;
    const app = await startTestApp({
      channels: {
        telegram: { botToken: TELEGRAM_TOKEN, webhookSecret: SECRET, apiRoot: fake.url, ...telegram },
        delivery: { baseDelayMs: 10, maxDelayMs: 100, maxAttempts: 2 },
        ...(channels as Record<string, unknown> | undefined),
      },
      ...rest,
    });
    cleanups.push(() => app.stop());
    return { fake, app };
  }

  /** Sends a text message from `userId` and waits until its inbox entry is finished; returns the entry. */
  async function send(app: TestApp, options: Omit<Parameters<typeof telegramTextUpdate>[0], 'updateId'>) {
    nextUpdate += 1;
    const updateId = nextUpdate;
    const res = await app.post('/channels/telegram/webhook', telegramTextUpdate({ updateId, ...options }), {
      'x-telegram-bot-api-secret-token': SECRET,
    });
    expect(res.status).toBe(200);
    const id = `telegram:${TELEGRAM_BOT.id}:${updateId}`;
    let entry: { status: string; outcome?: string } | undefined;
    await eventually(async () => {
      const found = await fetch(`${app.url}/v1/deliveries/${encodeURIComponent(id)}`);
      entry = found.status === 200 ? ((await found.json()) as typeof entry) : undefined;
      return entry?.status === 'done' || entry?.status === 'failed';
    });
    return entry!;
  }

  const repliesTo = (fake: FakeTelegram, chatId: number) =>
    fake.sent().filter((body) => body.chat_id === chatId);

  it('open: answers anyone', async () => {
    const { fake, app } = await setup({ dmPolicy: 'open' });
    expect(await send(app, { text: 'hello', userId: 1 })).toMatchObject({ outcome: 'replied' });
    expect(repliesTo(fake, 1)).toHaveLength(1);
  });

  it('allowlist: answers listed senders only, silently ignoring the rest', async () => {
    const { fake, app } = await setup({ dmPolicy: 'allowlist', allowlist: ['21'] });
    expect(await send(app, { text: 'hello', userId: 21 })).toMatchObject({ outcome: 'replied' });
    expect(await send(app, { text: 'hello', userId: 22 })).toMatchObject({ outcome: 'denied:not-allowed' });
    expect(repliesTo(fake, 21)).toHaveLength(1);
    expect(repliesTo(fake, 22)).toHaveLength(0);
  });

  it('disabled: answers no direct message, but still answers a mention in a group', async () => {
    const { fake, app } = await setup({ dmPolicy: 'disabled' });
    expect(await send(app, { text: 'hello', userId: 31 })).toMatchObject({ outcome: 'denied:dm-disabled' });
    expect(repliesTo(fake, 31)).toHaveLength(0);
    const mention = `@${TELEGRAM_BOT.username}`;
    const inGroup = await send(app, {
      text: `${mention} hello`,
      userId: 31,
      chatId: -31,
      chatType: 'group',
      entities: [{ type: 'mention', offset: 0, length: mention.length }],
    });
    expect(inGroup).toMatchObject({ outcome: 'replied' });
  });

  it('pairing: gives an unknown sender a code, the operator approves it with the CLI, then answers', async () => {
    const { fake, app } = await setup({ dmPolicy: 'pairing' });
    expect(await send(app, { text: 'hello', userId: 41 })).toMatchObject({ outcome: 'denied:pairing' });
    const notice = repliesTo(fake, 41)[0]!.text as string;
    const code = /pairing code: ([A-Z0-9]{8})/.exec(notice)?.[1];
    expect(code).toBeDefined();
    expect(notice).toContain(`clawmesh pairing approve telegram ${code}`);

    // Asking again while the code lives gives the same code.
    await send(app, { text: 'hello?', userId: 41 });
    expect(repliesTo(fake, 41)[1]!.text).toContain(code);

    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (line: string) => out.push(line), err: (line: string) => err.push(line) };
    const env = { CLAWMESH_SQLITE_PATH: `${app.dir}/clawmesh.db` };
    const listed = await runPairing(['list', 'telegram'], { env, cwd: app.dir, io });
    expect(listed).toBe(0);
    expect(out.join('\n')).toMatch(new RegExp(`telegram\\s+${code}\\s+user 41`));
    expect(await runPairing(['approve', 'telegram', code!.toLowerCase()], { env, cwd: app.dir, io })).toBe(0);
    expect(out.at(-1)).toMatch(/approved: telegram user 41/);
    expect(err).toEqual([]);

    expect(await send(app, { text: 'how many red shirts are in stock?', userId: 41 })).toMatchObject({
      outcome: 'replied',
    });
    expect(repliesTo(fake, 41).at(-1)!.text).toMatch(/red shirt: 42 units/);
    // A code works once.
    expect(await runPairing(['approve', 'telegram', code!], { env, cwd: app.dir, io })).toBe(1);
    expect(err.at(-1)).toMatch(/no pairing code/);
  });

  it('pairing: an expired code is refused with a clear error', async () => {
    const { fake, app } = await setup({ dmPolicy: 'pairing', pairing: { codeTtlSeconds: 1 } });
    await send(app, { text: 'hello', userId: 51 });
    const code = /pairing code: ([A-Z0-9]{8})/.exec(repliesTo(fake, 51)[0]!.text)![1]!;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const err: string[] = [];
    const io = { out: () => undefined, err: (line: string) => err.push(line) };
    const code1 = await runPairing(['approve', 'telegram', code], {
      env: { CLAWMESH_SQLITE_PATH: `${app.dir}/clawmesh.db` },
      cwd: app.dir,
      io,
    });
    expect(code1).toBe(1);
    expect(err[0]).toMatch(/has expired/);
    expect(await send(app, { text: 'hello again', userId: 51 })).toMatchObject({ outcome: 'denied:pairing' });
    const fresh = /pairing code: ([A-Z0-9]{8})/.exec(repliesTo(fake, 51)[1]!.text)![1];
    expect(fresh).not.toBe(code);
  });

  it('pairing: senders on the allowlist need no code', async () => {
    const { app } = await setup({ dmPolicy: 'pairing', allowlist: ['61'] });
    expect(await send(app, { text: 'hello', userId: 61 })).toMatchObject({ outcome: 'replied' });
  });

  it('groups: answers without a mention when requireMention is false', async () => {
    const { app } = await setup({ dmPolicy: 'open', groups: { requireMention: false } });
    expect(await send(app, { text: 'hello all', userId: 71, chatId: -71, chatType: 'group' })).toMatchObject({
      outcome: 'replied',
    });
  });

  it('groups: ignores a message without a mention by default', async () => {
    const { fake, app } = await setup({ dmPolicy: 'open' });
    expect(await send(app, { text: 'hello all', userId: 72, chatId: -72, chatType: 'group' })).toMatchObject({
      outcome: 'denied:not-mentioned',
    });
    expect(repliesTo(fake, -72)).toHaveLength(0);
  });

  it('rate limits: per user, then for the whole channel', async () => {
    const { fake, app } = await setup({
      dmPolicy: 'open',
      rateLimit: {
        perUser: { points: 2, durationSeconds: 60 },
        perChannel: { points: 3, durationSeconds: 60 },
      },
    });
    expect(await send(app, { text: 'one', userId: 81 })).toMatchObject({ outcome: 'replied' });
    expect(await send(app, { text: 'two', userId: 81 })).toMatchObject({ outcome: 'replied' });
    expect(await send(app, { text: 'three', userId: 81 })).toMatchObject({ outcome: 'denied:rate-limited' });
    expect(await send(app, { text: 'one', userId: 82 })).toMatchObject({ outcome: 'replied' });
    expect(await send(app, { text: 'one', userId: 83 })).toMatchObject({ outcome: 'denied:rate-limited' });
    expect(repliesTo(fake, 81)).toHaveLength(2);
    expect(repliesTo(fake, 83)).toHaveLength(0);
  });

  it('rate limits on Redis: the counters live under redis.keyPrefix, so deployments sharing a Redis stay apart', async () => {
    const keyPrefix = `clawmesh-test-${randomUUID()}:`;
    const redis = createClient({ url: REDIS_URL });
    await redis.connect();
    cleanups.push(async () => {
      for await (const keys of redis.scanIterator({ MATCH: `${keyPrefix}*`, COUNT: 100 })) {
        if (keys.length > 0) await redis.del(keys);
      }
      await redis.close();
    });
    const { app } = await setup(
      { dmPolicy: 'open', rateLimit: { perUser: { points: 1, durationSeconds: 60 } } },
      { channels: { limiter: 'redis' }, redis: { url: REDIS_URL, keyPrefix } },
    );
    expect(await send(app, { text: 'one', userId: 91 })).toMatchObject({ outcome: 'replied' });
    expect(await send(app, { text: 'two', userId: 91 })).toMatchObject({ outcome: 'denied:rate-limited' });
    const keys: string[] = [];
    for await (const batch of redis.scanIterator({ MATCH: `${keyPrefix}rl*`, COUNT: 100 }))
      keys.push(...batch);
    expect(keys.length).toBeGreaterThan(0);
  });
  for (const kind of ['redis', 'postgres'] as const) {
    it(`pairing with a ${kind} store: a code issued by one gateway replica, approved with the CLI, lets the sender through every replica`, async () => {
      const id = randomUUID().replaceAll('-', '').slice(0, 12);
      const keyPrefix = `h2test-pairing-${id}:`;
      const schema = `h2_pairing_e2e_${id}`;
      const redis = createClient({ url: REDIS_URL });
      await redis.connect();
      cleanups.push(async () => {
        for await (const keys of redis.scanIterator({ MATCH: `${keyPrefix}*`, COUNT: 100 })) {
          if (keys.length > 0) await redis.del(keys);
        }
        await redis.close();
      });
      if (kind === 'postgres') {
        cleanups.push(async () => {
          const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
          await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          await pool.end();
        });
      }
      const fake = await startFakeTelegram();
      cleanups.push(() => fake.close());
      // Two gateways, each with its own SQLite file (the inbox), over one shared store.
      const replica = async (name: string) => {
        const app = await startTestApp({
          channels: {
            telegram: {
              botToken: TELEGRAM_TOKEN,
              webhookSecret: SECRET,
              apiRoot: fake.url,
              dmPolicy: 'pairing',
            },
            delivery: { baseDelayMs: 10, maxDelayMs: 100, maxAttempts: 2 },
          },
          store: { kind, path: join(mkdtempSync(join(tmpdir(), 'h2-pairing-')), `${name}.db`) },
          redis: { url: REDIS_URL, keyPrefix },
          postgres: { url: DATABASE_URL, schema },
        });
        cleanups.push(() => app.stop());
        return app;
      };
      const first = await replica('a');
      const second = await replica('b');
      expect(await send(first, { text: 'hello', userId: 71 })).toMatchObject({ outcome: 'denied:pairing' });
      const code = /pairing code: ([A-Z0-9]{8})/.exec(repliesTo(fake, 71)[0]!.text as string)![1]!;
      // The other replica gives the same sender the same code, not a second one.
      await send(second, { text: 'hello?', userId: 71 });
      expect(repliesTo(fake, 71)[1]!.text).toContain(code);

      const out: string[] = [];
      const err: string[] = [];
      const io = { out: (line: string) => out.push(line), err: (line: string) => err.push(line) };
      const env = {
        CLAWMESH_STORE: kind,
        REDIS_URL,
        DATABASE_URL,
        CLAWMESH_REDIS__KEY_PREFIX: keyPrefix,
        CLAWMESH_POSTGRES__SCHEMA: schema,
      };
      expect(await runPairing(['approve', 'telegram', code], { env, cwd: first.dir, io })).toBe(0);
      expect(err).toEqual([]);
      expect(await send(second, { text: 'hello again', userId: 71 })).toMatchObject({ outcome: 'replied' });
      expect(await send(first, { text: 'and again', userId: 71 })).toMatchObject({ outcome: 'replied' });
    });
  }
});
