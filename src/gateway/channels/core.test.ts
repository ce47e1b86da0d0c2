import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.ts';
import { ChannelsConfigSchema } from '../../config/schema-channels.ts';
import { ClawmeshError } from '../../core/errors.ts';
import { sessionConversationId } from '../../core/ids.ts';
import { createLogger, silentLogger } from '../../observability/logger.ts';
import { createMemoryInboxStore } from '../../store/inbox-memory.ts';
import type { InboxStore } from '../../store/inbox-types.ts';
import { createMemoryDedupeStore } from '../../store/memory.ts';
import { createDelivery, inboxIdOf } from './delivery.ts';
import { parseRetryAfter } from './http.ts';
import { channelStatuses } from './index.ts';
import { createChannelMetrics } from './metrics.ts';
import { createChannelRouter, sessionPeer } from './routing.ts';
import { createKeyedScheduler } from './scheduler.ts';
import { backoffDelay } from './sender.ts';
import { splitText } from './split.ts';
import { type ChannelAdapter, type ChannelMessage, ChannelSendError } from './types.ts';

describe('splitText', () => {
  it('keeps a text within the limit whole', () => {
    expect(splitText('  hello  ', 10)).toEqual(['hello']);
    expect(splitText('', 10)).toEqual([]);
  });

  it('breaks at a paragraph, then a line, then a space, then mid-word', () => {
    expect(splitText('aaaa bbbb\n\ncccc', 12)).toEqual(['aaaa bbbb', 'cccc']);
    expect(splitText('aaaa bbbb\ncccc dd', 12)).toEqual(['aaaa bbbb', 'cccc dd']);
    expect(splitText('aaaa bbbb cccc', 12)).toEqual(['aaaa bbbb', 'cccc']);
    expect(splitText('abcdefghijkl', 5)).toEqual(['abcde', 'fghij', 'kl']);
  });

  it('never splits a surrogate pair and never exceeds the limit', () => {
    const text = '😀'.repeat(10);
    const parts = splitText(text, 5);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(5);
      expect(part).toBe([...part].join(''));
      expect(/[\uD800-\uDBFF]$/.test(part)).toBe(false);
    }
    expect(parts.join('')).toBe(text);
  });

  it('rejects a limit that is not a positive integer', () => {
    expect(() => splitText('x', 0)).toThrow(RangeError);
  });
});

describe('parseRetryAfter and ChannelSendError', () => {
  it('reads delay-seconds and HTTP dates', () => {
    expect(parseRetryAfter('30')).toBe(30_000);
    expect(parseRetryAfter('1.5')).toBe(1500);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 5_000)).toBe(5_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });

  it('is retryable without an answer, on 408, 429 and 5xx, not on other 4xx', () => {
    expect(new ChannelSendError('x').retryable).toBe(true);
    expect(new ChannelSendError('x', { status: 429, retryAfterMs: 2000 })).toMatchObject({
      code: 'RATE_LIMITED',
      retryable: true,
      retryAfterMs: 2000,
      details: { status: 429, retryAfterMs: 2000 },
    });
    expect(new ChannelSendError('x', { status: 503 }).retryable).toBe(true);
    expect(new ChannelSendError('x', { status: 403 })).toMatchObject({
      code: 'PERMISSION_DENIED',
      retryable: false,
    });
    expect(new ChannelSendError('x', { status: 400 })).toMatchObject({
      code: 'INVALID_ARGUMENT',
      retryable: false,
    });
  });
});

describe('backoffDelay', () => {
  const settings = { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 1000 };
  it('doubles from the base with equal jitter, capped', () => {
    expect(backoffDelay(1, settings, () => 0)).toBe(50);
    expect(backoffDelay(1, settings, () => 0.999)).toBe(100);
    expect(backoffDelay(3, settings, () => 0)).toBe(200);
    expect(backoffDelay(10, settings, () => 0.999)).toBe(1000);
  });
});

describe('routing', () => {
  const message = { channel: 'slack', account: 'T1', chatId: 'C1', userId: 'U1' };
  it('picks the most specific binding, then the first written', () => {
    const router = createChannelRouter(
      [
        { channel: 'slack', agent: 'general' },
        { channel: 'slack', account: 'T1', agent: 'team' },
        { channel: 'slack', chat: 'C1', agent: 'room' },
        { channel: 'slack', chat: 'C1', agent: 'room-later' },
        { channel: 'slack', peer: 'U9', agent: 'vip' },
      ],
      ['general', 'team', 'room', 'room-later', 'vip'],
    );
    expect(router.agentFor(message)).toBe('room');
    expect(router.agentFor({ ...message, chatId: 'C2' })).toBe('team');
    expect(router.agentFor({ ...message, chatId: 'C2', account: 'T2' })).toBe('general');
    expect(router.agentFor({ ...message, userId: 'U9' })).toBe('vip');
    expect(router.agentFor({ ...message, channel: 'telegram' })).toBeUndefined();
  });

  it('refuses a binding to an unknown agent, naming it', () => {
    expect(() => createChannelRouter([{ channel: 'slack', agent: 'ghost' }], ['default'])).toThrow(
      /channels.bindings.0: no agent "ghost"/,
    );
  });

  it('keys a DM session by sender and a group session by chat', () => {
    expect(sessionPeer({ isGroup: false, chatId: 'D1', userId: 'U1' })).toBe('U1');
    expect(sessionPeer({ isGroup: true, chatId: 'C1', userId: 'U1' })).toBe('group:C1');
  });
});

describe('createKeyedScheduler', () => {
  it('runs one task at a time per key, in order, and bounds concurrency overall', async () => {
    const scheduler = createKeyedScheduler(2);
    const log: string[] = [];
    let running = 0;
    let peak = 0;
    const task = (name: string, ms: number) => async () => {
      running += 1;
      peak = Math.max(peak, running);
      log.push(`start ${name}`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      log.push(`end ${name}`);
      running -= 1;
    };
    void scheduler.run('a', task('a1', 20));
    void scheduler.run('a', task('a2', 1));
    void scheduler.run('b', task('b1', 5));
    void scheduler.run('c', task('c1', 5));
    expect(scheduler.size).toBe(4);
    await scheduler.idle();
    expect(peak).toBe(2);
    expect(log.indexOf('start a2')).toBeGreaterThan(log.indexOf('end a1'));
    expect(scheduler.size).toBe(0);
  });

  it('goes on with a key after a task of it fails', async () => {
    const scheduler = createKeyedScheduler(1);
    const failed = scheduler.run('k', async () => {
      throw new Error('boom');
    });
    await expect(failed).rejects.toThrow('boom');
    let ran = false;
    await scheduler.run('k', async () => {
      ran = true;
    });
    expect(ran).toBe(true);
  });
});

describe('channelStatuses', () => {
  it('lists each channel off with the variables to set, and on once they are set', () => {
    const off = channelStatuses(ChannelsConfigSchema.parse({}));
    expect(off.find((s) => s.name === 'telegram')).toEqual({
      name: 'telegram',
      on: false,
      missing: ['TELEGRAM_BOT_TOKEN', 'TELEGRAM_WEBHOOK_SECRET'],
    });
    expect(off.find((s) => s.name === 'slack')?.missing).toEqual(['SLACK_SIGNING_SECRET', 'SLACK_BOT_TOKEN']);
    const polling = channelStatuses(
      ChannelsConfigSchema.parse({ telegram: { botToken: '1:x', mode: 'polling' } }),
    );
    expect(polling.find((s) => s.name === 'telegram')).toMatchObject({ on: true, missing: [] });
  });
});

describe('channel settings from the environment', () => {
  it('reads every platform variable into channels.<name>, numbers kept as strings', () => {
    const { config } = loadConfig({
      cwd: '/nonexistent',
      env: {
        TELEGRAM_BOT_TOKEN: '1:tok',
        TELEGRAM_WEBHOOK_SECRET: 'sec',
        TELEGRAM_API_ROOT: 'http://127.0.0.1:9/tg',
        DISCORD_PUBLIC_KEY: 'ab'.repeat(32),
        DISCORD_APPLICATION_ID: '1234567890',
        DISCORD_BOT_TOKEN: 'dbt',
        DISCORD_API_ROOT: 'http://127.0.0.1:9/dc',
        WHATSAPP_APP_SECRET: 'was',
        WHATSAPP_VERIFY_TOKEN: 'wvt',
        WHATSAPP_ACCESS_TOKEN: 'wat',
        WHATSAPP_PHONE_NUMBER_ID: '1098765',
        WHATSAPP_API_ROOT: 'http://127.0.0.1:9/wa',
        SLACK_SIGNING_SECRET: 'sss',
        SLACK_BOT_TOKEN: 'xoxb-1',
        SLACK_API_ROOT: 'http://127.0.0.1:9/sl',
        CLAWMESH_CHANNELS__SLACK__DM_POLICY: 'open',
      },
    });
    const { telegram, discord, whatsapp, slack } = config.channels;
    expect(telegram).toMatchObject({
      botToken: '1:tok',
      webhookSecret: 'sec',
      apiRoot: 'http://127.0.0.1:9/tg',
    });
    expect(discord).toMatchObject({
      publicKey: 'ab'.repeat(32),
      applicationId: '1234567890',
      botToken: 'dbt',
    });
    expect(discord.apiRoot).toBe('http://127.0.0.1:9/dc');
    expect(whatsapp).toMatchObject({
      appSecret: 'was',
      verifyToken: 'wvt',
      accessToken: 'wat',
      phoneNumberId: '1098765',
    });
    expect(whatsapp.apiRoot).toBe('http://127.0.0.1:9/wa');
    expect(slack).toMatchObject({
      signingSecret: 'sss',
      botToken: 'xoxb-1',
      apiRoot: 'http://127.0.0.1:9/sl',
      dmPolicy: 'open',
    });
    expect(
      channelStatuses(config.channels)
        .filter((s) => s.on)
        .map((s) => s.name),
    ).toEqual(expect.arrayContaining(['telegram', 'slack']));
  });
});

describe('createDelivery when the inbox refuses', () => {
  const message: ChannelMessage = {
    updateId: '1',
    channel: 'test',
    account: 'a',
    chatId: 'c',
    userId: 'u',
    text: 'hi',
    isGroup: false,
    mentioned: true,
    replyTo: { chat: 'c' },
  };
  const adapter: ChannelAdapter = {
    name: 'test',
    routes: [],
    dedupeTtlMs: 60_000,
    textLimit: 100,
    send: async () => undefined,
  };

  it('rejects the accept and forgets the claim, so the platform retry is taken', async () => {
    const dedupe = createMemoryDedupeStore();
    const inbox = createMemoryInboxStore();
    let refuse = true;
    const flaky: InboxStore = {
      ...inbox,
      add: (entry) => (refuse ? Promise.reject(new Error('disk full')) : inbox.add(entry)),
    };
    const turns: string[] = [];
    const delivery = createDelivery({
      adapters: new Map([['test', adapter]]),
      dedupe,
      inbox: flaky,
      access: { check: async () => ({ allowed: true }) },
      router: { agentFor: () => undefined },
      conversation: {
        handle: async (input: { text: string }) => {
          turns.push(input.text);
          return { conversationId: 'c_1', text: 'hello', toolCalls: [] };
        },
      } as never,
      logger: silentLogger(),
      metrics: createChannelMetrics(),
      retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
      concurrency: 2,
      turnTimeoutMs: 5000,
    });
    await expect(delivery.accept(adapter, [message])).rejects.toThrow('disk full');
    refuse = false;
    await delivery.accept(adapter, [message]);
    await delivery.idle();
    expect(turns).toEqual(['hi']);
    expect((await inbox.get(inboxIdOf(message)))?.status).toBe('done');
    await delivery.stop();
    await expect(delivery.accept(adapter, [message])).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
  /**
   * Delivers one message (update `updateId`) to a turn that `handle` answers, through `inbox`,
   * and resolves with the JSON log lines written meanwhile.
   */
  const deliverLogged = async (updateId: string, handle: () => Promise<unknown>, inbox: InboxStore) => {
    const lines: Record<string, unknown>[] = [];
    const delivery = createDelivery({
      adapters: new Map([['test', adapter]]),
      dedupe: createMemoryDedupeStore(),
      inbox,
      access: { check: async () => ({ allowed: true }) },
      router: { agentFor: () => undefined },
      defaultAgentId: 'default',
      conversation: { handle } as never,
      logger: createLogger({ destination: { write: (line: string) => void lines.push(JSON.parse(line)) } }),
      metrics: createChannelMetrics(),
      retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
      concurrency: 2,
      turnTimeoutMs: 5000,
    });
    await delivery.accept(adapter, [{ ...message, updateId }]);
    await delivery.idle();
    await delivery.stop();
    return lines;
  };

  it("logs a delivery the inbox fails mid-way with the message's request, trace and conversation", async () => {
    const inbox = createMemoryInboxStore();
    const session = sessionConversationId('default', 'test', 'u');
    const lines = await deliverLogged(
      '7',
      async () => ({ conversationId: session, text: 'hello', toolCalls: [] }),
      // The reply went out, then the inbox's store went away.
      { ...inbox, finish: () => Promise.reject(new Error('connection lost')) },
    );
    expect(lines).toEqual([
      expect.objectContaining({
        level: 50,
        msg: 'channel delivery crashed',
        channel: 'test',
        err: 'connection lost',
        requestId: expect.stringMatching(/.+/),
        traceId: expect.stringMatching(/^[0-9a-f]{32}$/),
        spanId: expect.stringMatching(/^[0-9a-f]{16}$/),
        conversationId: session,
      }),
    ]);
  });
  it('logs a failed turn with its request, trace and the conversation the message belongs to', async () => {
    const lines = await deliverLogged(
      '8',
      async () => Promise.reject(new ClawmeshError('DEADLINE_EXCEEDED', 'the turn ran out of time')),
      createMemoryInboxStore(),
    );
    expect(lines).toEqual([
      expect.objectContaining({
        msg: 'channel turn failed; recorded as failed (GET /v1/deliveries?status=failed)',
        code: 'DEADLINE_EXCEEDED',
        requestId: expect.stringMatching(/.+/),
        traceId: expect.stringMatching(/^[0-9a-f]{32}$/),
        spanId: expect.stringMatching(/^[0-9a-f]{16}$/),
        // The id the conversation service gives the default agent's conversation with this peer.
        conversationId: sessionConversationId('default', 'test', 'u'),
      }),
    ]);
  });
});

describe('createDelivery: notices and fixed replies', () => {
  const base: ChannelMessage = {
    updateId: '1',
    channel: 'test',
    account: 'a',
    chatId: 'c',
    userId: 'u',
    text: 'hi',
    isGroup: false,
    mentioned: true,
    replyTo: { chat: 'c' },
  };
  function setup(allowed: boolean) {
    const sent: string[] = [];
    const turns: string[] = [];
    const adapter: ChannelAdapter = {
      name: 'test',
      routes: [],
      dedupeTtlMs: 60_000,
      textLimit: 100,
      send: async (_target, text) => {
        sent.push(text);
      },
    };
    const inbox = createMemoryInboxStore();
    const delivery = createDelivery({
      adapters: new Map([['test', adapter]]),
      dedupe: createMemoryDedupeStore(),
      inbox,
      access: {
        check: async () => (allowed ? { allowed: true } : { allowed: false, reason: 'not-allowed' }),
      },
      router: { agentFor: () => undefined },
      conversation: {
        handle: async (input: { text: string }) => {
          turns.push(input.text);
          return { conversationId: 'c_1', text: '', toolCalls: [] };
        },
      } as never,
      logger: silentLogger(),
      metrics: createChannelMetrics(),
      retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
      concurrency: 2,
      turnTimeoutMs: 5000,
    });
    return { adapter, delivery, inbox, sent, turns };
  }

  it('sends a notice instead of silence when the message must be answered', async () => {
    const denied = setup(false);
    await denied.delivery.accept(denied.adapter, [{ ...base, mustAnswer: true }]);
    await denied.delivery.accept(denied.adapter, [{ ...base, updateId: '2' }]);
    await denied.delivery.idle();
    expect(denied.sent).toEqual(['You are not allowed to use this assistant.']);
    expect(await denied.inbox.get('test:a:1')).toMatchObject({
      status: 'done',
      outcome: 'denied:not-allowed',
    });
    expect(await denied.inbox.get('test:a:2')).toMatchObject({
      status: 'done',
      outcome: 'denied:not-allowed',
    });

    const empty = setup(true);
    await empty.delivery.accept(empty.adapter, [{ ...base, mustAnswer: true }]);
    await empty.delivery.idle();
    expect(empty.turns).toEqual(['hi']);
    expect(empty.sent).toEqual(['No answer to that message.']);
    expect(await empty.inbox.get('test:a:1')).toMatchObject({ outcome: 'no-reply' });
  });

  it('answers a fixed reply without a turn, after access', async () => {
    const allowed = setup(true);
    await allowed.delivery.accept(allowed.adapter, [
      { ...base, fixedReply: 'I can only read text messages.' },
    ]);
    await allowed.delivery.idle();
    expect(allowed.turns).toEqual([]);
    expect(allowed.sent).toEqual(['I can only read text messages.']);
    expect(await allowed.inbox.get('test:a:1')).toMatchObject({ status: 'done', outcome: 'fixed' });
    const denied = setup(false);
    await denied.delivery.accept(denied.adapter, [{ ...base, fixedReply: 'text only' }]);
    await denied.delivery.idle();
    expect(denied.sent).toEqual([]);
  });
});
