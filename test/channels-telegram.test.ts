import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/observability/logger.ts';
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

const SECRET = 'webhook-secret_42';
const WEBHOOK = '/channels/telegram/webhook';

/** A plugin that counts turns and can replace the reply text or slow the turn down. */
function turnProbe() {
  const probe: { turns: number; reply: string | undefined; delayMs: number; plugin: ClawmeshPlugin } = {
    turns: 0,
    reply: undefined,
    delayMs: 0,
    plugin: {
      name: 'turn-probe',
      timeoutMs: 10_000,
      async onMessageReceived(_ctx, message) {
        probe.turns += 1;
        if (probe.delayMs) await new Promise((resolve) => setTimeout(resolve, probe.delayMs));
        return message;
      },
      onResponseGenerated(_ctx, response) {
        return probe.reply ?? response;
      },
    },
  };
  return probe;
}

function telegramConfig(fake: FakeTelegram, extra: Record<string, unknown> = {}) {
  return {
    channels: {
      telegram: {
        botToken: TELEGRAM_TOKEN,
        webhookSecret: SECRET,
        apiRoot: fake.url,
        dmPolicy: 'open',
        ...extra,
      },
      delivery: { baseDelayMs: 10, maxDelayMs: 200, maxAttempts: 3 },
    },
  };
}

/** POSTs an update to the webhook with the secret token header (`null`: none). */
async function postUpdate(t: TestApp, update: unknown, secret: string | null = SECRET) {
  return t.post(WEBHOOK, update, secret === null ? {} : { 'x-telegram-bot-api-secret-token': secret });
}

describe('Telegram webhook', () => {
  let fake: FakeTelegram;
  let t: TestApp;
  const probe = turnProbe();
  beforeAll(async () => {
    fake = await startFakeTelegram();
    t = await startTestApp(telegramConfig(fake), { plugins: [probe.plugin] });
  });
  afterAll(async () => {
    await t.stop();
    await fake.close();
  });
  beforeEach(() => {
    probe.reply = undefined;
    probe.delayMs = 0;
  });

  it('answers a private text message with sendMessage through grammY', async () => {
    const res = await postUpdate(
      t,
      telegramTextUpdate({ updateId: 1, text: 'how many red shirts are in stock?' }),
    );
    expect(res.status).toBe(200);
    const sent = await fake.waitFor(fake.method('sendMessage'));
    expect(sent.body.chat_id).toBe(1001);
    expect(sent.body.text).toMatch(/red shirt: 42 units in stock/);
    expect(sent.body.reply_parameters).toBeUndefined();
    expect(fake.requestsTo(fake.method('getMe')).length).toBeGreaterThanOrEqual(1);
    const typing = fake.requestsTo(fake.method('sendChatAction'));
    expect(typing[0]?.body).toMatchObject({ chat_id: 1001, action: 'typing' });
    expect(typing[0]!.at).toBeLessThanOrEqual(sent.at);
  });

  it('rejects an update whose secret token differs, or is missing, with 401 and runs no turn', async () => {
    const before = probe.turns;
    const sentBefore = fake.sent().length;
    const wrong = await postUpdate(t, telegramTextUpdate({ updateId: 2, text: 'hi' }), 'not-the-secret');
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('UNAUTHENTICATED');
    const missing = await postUpdate(t, telegramTextUpdate({ updateId: 3, text: 'hi' }), null);
    expect(missing.status).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(probe.turns).toBe(before);
    expect(fake.sent().length).toBe(sentBefore);
  });

  it('rejects a body that is not a Telegram update with 400', async () => {
    const res = await postUpdate(t, '{"update_id": "x"');
    expect(res.status).toBe(400);
    const noId = await postUpdate(t, { message: {} });
    expect(noId.status).toBe(400);
  });

  it('accepts updates that are not text messages with 200 and does not answer them', async () => {
    const before = probe.turns;
    const res = await postUpdate(t, {
      update_id: 4,
      edited_message: telegramTextUpdate({ updateId: 4, text: 'edited' }).message,
    });
    expect(res.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(probe.turns).toBe(before);
  });

  it('splits a reply longer than 4096 characters on paragraph boundaries, in order', async () => {
    const paragraphs = Array.from({ length: 6 }, (_, i) => `${String(i)}${'x'.repeat(1499)}`);
    probe.reply = paragraphs.join('\n\n');
    const before = fake.sent().length;
    await postUpdate(t, telegramTextUpdate({ updateId: 5, text: 'tell me a long story', userId: 2002 }));
    await fake.waitFor(fake.method('sendMessage'), before + 3);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const parts = fake
      .sent()
      .slice(before)
      .map((body) => body.text as string);
    expect(parts).toHaveLength(3);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(4096);
    expect(parts.join('\n\n')).toBe(probe.reply);
    expect(parts[0]).toBe(paragraphs.slice(0, 2).join('\n\n'));
  });

  it('answers in a group only when mentioned, replying to the message, without the mention', async () => {
    const before = probe.turns;
    const sentBefore = fake.sent().length;
    await postUpdate(
      t,
      telegramTextUpdate({
        updateId: 6,
        text: 'just chatting',
        chatId: -100500,
        chatType: 'supergroup',
        userId: 3003,
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(probe.turns).toBe(before);
    const mention = `@${TELEGRAM_BOT.username}`;
    const update = telegramTextUpdate({
      updateId: 7,
      text: `${mention} how many blue shirts are in stock?`,
      chatId: -100500,
      chatType: 'supergroup',
      userId: 3003,
      entities: [{ type: 'mention', offset: 0, length: mention.length }],
    });
    await postUpdate(t, update);
    const sent = await fake.waitFor(fake.method('sendMessage'), sentBefore + 1);
    expect(sent.body.chat_id).toBe(-100500);
    expect(sent.body.reply_parameters).toMatchObject({ message_id: update.message.message_id });
    expect(sent.body.text).toMatch(/blue shirt/);
    expect(probe.turns).toBe(before + 1);
  });

  it('treats a reply to one of its messages as a mention', async () => {
    const sentBefore = fake.sent().length;
    await postUpdate(
      t,
      telegramTextUpdate({
        updateId: 8,
        text: 'and green ones?',
        chatId: -100501,
        chatType: 'group',
        replyToBot: true,
      }),
    );
    const sent = await fake.waitFor(fake.method('sendMessage'), sentBefore + 1);
    expect(sent.body.chat_id).toBe(-100501);
  });

  it('repeats the typing action about every 4 seconds while a turn runs', async () => {
    probe.delayMs = 4500;
    const chatId = 4004;
    const typingTo = () =>
      fake.requestsTo(fake.method('sendChatAction')).filter((r) => r.body.chat_id === chatId);
    const sentBefore = fake.sent().length;
    await postUpdate(t, telegramTextUpdate({ updateId: 9, text: 'hello', userId: chatId }));
    await fake.waitFor(fake.method('sendMessage'), sentBefore + 1, 10_000);
    const actions = typingTo();
    expect(actions.length).toBeGreaterThanOrEqual(2);
    const gap = actions[1]!.at - actions[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(3900);
    // About 4 s apart: not a burst, and well before Telegram's 5 s indicator runs out.
    expect(gap).toBeLessThan(5000);
  }, 15_000);
});

describe('Telegram long polling', () => {
  let fake: FakeTelegram;
  let t: TestApp;
  const probe = turnProbe();
  beforeEach(async () => {
    fake = await startFakeTelegram();
    t = await startTestApp(
      telegramConfig(fake, { mode: 'polling', webhookSecret: undefined, pollingTimeoutSeconds: 1 }),
      {
        plugins: [probe.plugin],
      },
    );
  });
  afterEach(async () => {
    await t.stop();
    await fake.close();
  });

  it('takes updates from getUpdates, answers them, and confirms them with the next offset', async () => {
    await fake.waitFor(fake.method('getUpdates'));
    expect(fake.requestsTo(fake.method('deleteWebhook'))).toHaveLength(1);
    fake.queueUpdates(
      telegramTextUpdate({ updateId: 500, text: 'how many red shirts are in stock?', userId: 11 }),
      telegramTextUpdate({ updateId: 501, text: 'hello', userId: 12 }),
    );
    await eventually(() => fake.sent().length === 2);
    expect(
      fake
        .sent()
        .map((body) => body.chat_id)
        .sort(),
    ).toEqual([11, 12]);
    await eventually(() => fake.requestsTo(fake.method('getUpdates')).some((r) => r.body?.offset === 502));
    expect(probe.turns).toBe(2);
  });

  it('serves no webhook route in polling mode', async () => {
    const res = await postUpdate(t, telegramTextUpdate({ updateId: 1, text: 'hi' }));
    expect(res.status).toBe(404);
  });

  it('stops polling when the app stops', async () => {
    await fake.waitFor(fake.method('getUpdates'));
    await t.stop();
    const calls = fake.requestsTo(fake.method('getUpdates')).length;
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(fake.requestsTo(fake.method('getUpdates')).length).toBe(calls);
  });
});

describe('Telegram unreachable at start', () => {
  let t: TestApp | undefined;
  let fake: FakeTelegram | undefined;
  afterEach(async () => {
    await t?.stop();
    await fake?.close();
    t = undefined;
    fake = undefined;
  });
  const capture = () => {
    const lines: Array<{ level: number; msg: string; channel?: string }> = [];
    const logger = createLogger({
      level: 'debug',
      destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
    });
    return { lines, logger };
  };

  it('serves the HTTP API at once and keeps starting the channel in the background, warning once', async () => {
    const { lines, logger } = capture();
    const started = Date.now();
    t = await startTestApp(
      {
        channels: {
          telegram: { botToken: TELEGRAM_TOKEN, webhookSecret: SECRET, apiRoot: 'http://127.0.0.1:1' },
        },
      },
      { logger },
    );
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    const answer = await t.post('/v1/messages', { userId: 'u1', text: 'how many red shirts are in stock?' });
    expect(answer.body.text).toMatch(/42 units/);
    // Tried again after 1 s, and still told once.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const ready = await fetch(`${t.url}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { checks: Array<{ name: string; ok: boolean; error?: string }> };
    const check = body.checks.find((c) => c.name === 'channel:telegram');
    expect(check).toMatchObject({ ok: false, optional: true });
    expect(check?.error).toMatch(/^starting: telegram getMe: no answer: .*ECONNREFUSED/);
    expect(check?.error).not.toContain(TELEGRAM_TOKEN);
    const warnings = lines.filter((line) => line.level === 40 && line.channel === 'telegram');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toMatch(/^channel telegram could not reach its platform; it keeps trying/);
    expect(
      lines.filter((line) => line.msg === 'channel telegram start failed again').length,
    ).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('reports the channel ready once its platform answers, and sets the webhook then', async () => {
    fake = await startFakeTelegram();
    let refused = 0;
    fake.on('POST', fake.method('getMe'), () =>
      refused++ < 2
        ? { status: 502, body: { ok: false, error_code: 502, description: 'Bad Gateway' } }
        : undefined,
    );
    const { lines, logger } = capture();
    t = await startTestApp(
      telegramConfig(fake, { webhookUrl: 'https://bot.example.com/channels/telegram/webhook' }),
      { logger },
    );
    const readyz = async () =>
      (
        (await (await fetch(`${t!.url}/readyz`)).json()) as { checks: Array<{ name: string; ok: boolean }> }
      ).checks.find((c) => c.name === 'channel:telegram');
    expect((await readyz())?.ok).toBe(false);
    await eventually(async () => (await readyz())?.ok === true, 10_000);
    expect(fake.requestsTo(fake.method('getMe'))).toHaveLength(3);
    expect(fake.requestsTo(fake.method('setWebhook'))).toHaveLength(1);
    expect(lines.filter((line) => line.level === 40 && line.channel === 'telegram')).toHaveLength(1);
    expect(lines).toContainEqual(expect.objectContaining({ level: 30, msg: 'channel telegram started' }));
  }, 30_000);
});
