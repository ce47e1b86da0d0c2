import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DISCORD_APPLICATION_ID,
  discordAskInteraction,
  discordHeaders,
  discordKeyPair,
  discordPing,
  discordSignature,
  type FakeDiscord,
  startFakeDiscord,
} from '../../../../test/support/fake-platforms.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { type ChannelRequest, ChannelSendError } from '../types.ts';
import { createDiscordAdapter } from './adapter.ts';
import { createDiscordWebhookClient, registerDiscordCommands } from './api.ts';
import { normalizeInteraction, parseInteraction, snowflakeTime } from './payload.ts';
import { discordPublicKey, verifyDiscordSignature } from './signature.ts';

const keys = discordKeyPair();

function request(body: string, headers: Record<string, string>): ChannelRequest {
  return {
    method: 'POST',
    url: '/channels/discord/interactions',
    headers,
    query: {},
    rawBody: Buffer.from(body),
  };
}

describe('Discord signature', () => {
  const key = discordPublicKey(keys.publicKeyHex);
  const body = JSON.stringify(discordPing());
  const timestamp = '1700000000';
  const signature = discordSignature(keys.privateKey, timestamp, body);

  it('accepts an Ed25519 signature over timestamp + raw body', () => {
    expect(verifyDiscordSignature(key, { signature, timestamp, rawBody: body })).toBe(true);
    expect(verifyDiscordSignature(key, { signature, timestamp, rawBody: Buffer.from(body) })).toBe(true);
  });

  it('rejects a signature made with another key, and missing or malformed headers', () => {
    const other = discordKeyPair();
    const foreign = discordSignature(other.privateKey, timestamp, body);
    expect(verifyDiscordSignature(key, { signature: foreign, timestamp, rawBody: body })).toBe(false);
    expect(verifyDiscordSignature(key, { signature: undefined, timestamp, rawBody: body })).toBe(false);
    expect(verifyDiscordSignature(key, { signature, timestamp: undefined, rawBody: body })).toBe(false);
    expect(verifyDiscordSignature(key, { signature: 'zz', timestamp, rawBody: body })).toBe(false);
    expect(
      verifyDiscordSignature(key, { signature: signature.toUpperCase(), timestamp, rawBody: body }),
    ).toBe(false);
  });

  it('refuses a timestamp outside the replay window when one is set', () => {
    const now = 1_700_000_000_000;
    const options = { maxAgeSeconds: 300, now };
    expect(verifyDiscordSignature(key, { signature, timestamp, rawBody: body }, options)).toBe(true);
    expect(
      verifyDiscordSignature(
        key,
        { signature, timestamp, rawBody: body },
        { ...options, now: now + 301_000 },
      ),
    ).toBe(false);
  });

  it('refuses a public key that is not 32 bytes of hex', () => {
    expect(() => discordPublicKey('abc')).toThrow(/64 hex digits/);
  });
});

describe('Discord interactions', () => {
  it('reads /ask in a server: the question, the member, the channel, a group chat', () => {
    const interaction = discordAskInteraction({ question: '  what is 2+2?  ', id: '1190000000000000555' });
    const event = normalizeInteraction(parseInteraction(JSON.stringify(interaction)));
    expect(event).toMatchObject({
      kind: 'ask',
      interactionId: '1190000000000000555',
      applicationId: DISCORD_APPLICATION_ID,
      token: interaction.token,
      userId: '80351110224678912',
      userName: 'Ada',
      channelId: '290926798626357999',
      guildId: '290926798626357250',
      isGroup: true,
      text: 'what is 2+2?',
    });
  });

  it('reads /ask in a DM with the bot as a direct message', () => {
    const event = normalizeInteraction(
      parseInteraction(JSON.stringify(discordAskInteraction({ question: 'hi', guildId: null }))),
    );
    expect(event).toMatchObject({ kind: 'ask', isGroup: false, userId: '80351110224678912' });
    expect(event).not.toHaveProperty('guildId');
  });

  it('marks other commands and interaction types unsupported', () => {
    const other = normalizeInteraction(
      parseInteraction(JSON.stringify(discordAskInteraction({ command: 'roll' }))),
    );
    expect(other).toMatchObject({ kind: 'unsupported', type: 2, command: 'roll' });
  });

  it('rejects a body that is not an interaction with INVALID_ARGUMENT naming the field', () => {
    expect(() => parseInteraction('{')).toThrow(/malformed interaction/);
    expect(() => parseInteraction(JSON.stringify({ id: '1', type: 2 }))).toThrow(/application_id/);
  });

  it('reads the time out of a snowflake', () => {
    expect(snowflakeTime('175928847299117063')).toBe(1462015105796);
  });
});

describe('Discord adapter routes', () => {
  const adapter = createDiscordAdapter({
    publicKey: keys.publicKeyHex,
    applicationId: DISCORD_APPLICATION_ID,
    logger: silentLogger(),
  });
  const route = adapter.routes[0]!;

  it('serves POST /channels/discord/interactions with a 2000-character limit', () => {
    expect(route).toMatchObject({ method: 'POST', path: '/channels/discord/interactions' });
    expect(adapter.textLimit).toBe(2000);
  });

  it('throws ChannelAuthError (401) for a bad signature', () => {
    const body = JSON.stringify(discordPing());
    const headers = discordHeaders(keys.privateKey, body);
    expect(() => route.verify!(request(`${body} `, headers))).toThrow(
      expect.objectContaining({ httpStatus: 401 }),
    );
    expect(() => route.verify!(request(body, {}))).toThrow(/invalid request signature/);
    expect(() => route.verify!(request(body, headers))).not.toThrow();
  });

  it('refuses a validly signed request older than five minutes', () => {
    const body = JSON.stringify(discordPing());
    const old = String(Math.floor(Date.now() / 1000) - 600);
    expect(() => route.verify!(request(body, discordHeaders(keys.privateKey, body, old)))).toThrow(
      /signature/,
    );
  });

  it('answers a PING with a PONG', async () => {
    const body = JSON.stringify(discordPing());
    const outcome = await route.handle(request(body, {}));
    expect(outcome).toEqual({
      kind: 'respond',
      response: expect.objectContaining({ status: 200, body: { type: 1 } }),
    });
  });

  it('accepts /ask with a deferred response (type 5) and a message addressed to the bot', async () => {
    const interaction = discordAskInteraction({ question: 'hello there' });
    const outcome = await route.handle(request(JSON.stringify(interaction), {}));
    expect(outcome.kind).toBe('accept');
    if (outcome.kind !== 'accept') return;
    expect(outcome.response?.body).toEqual({ type: 5 });
    expect(outcome.messages).toEqual([
      expect.objectContaining({
        updateId: interaction.id,
        channel: 'discord',
        account: DISCORD_APPLICATION_ID,
        chatId: interaction.channel_id,
        userId: '80351110224678912',
        text: 'hello there',
        isGroup: true,
        mentioned: true,
        replyTo: { token: interaction.token, interactionId: interaction.id },
        mustAnswer: true,
      }),
    ]);
  });

  it('answers an empty question and other commands at once, ephemerally, without a turn', async () => {
    for (const interaction of [
      discordAskInteraction({ question: '   ' }),
      discordAskInteraction({ command: 'roll' }),
    ]) {
      const outcome = await route.handle(request(JSON.stringify(interaction), {}));
      expect(outcome.kind).toBe('respond');
      if (outcome.kind !== 'respond') continue;
      expect(outcome.response.body).toMatchObject({ type: 4, data: { flags: 64 } });
    }
  });

  it('answers autocomplete with no choices', async () => {
    const interaction = { ...discordAskInteraction({ question: 'x' }), type: 4 };
    const outcome = await route.handle(request(JSON.stringify(interaction), {}));
    expect(outcome).toMatchObject({
      kind: 'respond',
      response: { body: { type: 8, data: { choices: [] } } },
    });
  });
});

describe('Discord REST client (against a fake Discord)', () => {
  let discord: FakeDiscord;
  beforeAll(async () => {
    discord = await startFakeDiscord();
  });
  afterAll(() => discord.close());

  it('edits @original for the first part and posts follow-ups for the rest, without pings', async () => {
    const adapter = createDiscordAdapter({
      publicKey: keys.publicKeyHex,
      applicationId: DISCORD_APPLICATION_ID,
      apiRoot: discord.apiRoot,
      logger: silentLogger(),
    });
    const signal = new AbortController().signal;
    await adapter.send({ token: 'tok-1' }, 'first', { index: 0, count: 2 }, signal);
    await adapter.send({ token: 'tok-1' }, 'second', { index: 1, count: 2 }, signal);
    expect(discord.edits()).toEqual([
      { token: 'tok-1', body: { content: 'first', allowed_mentions: { parse: [] } } },
    ]);
    expect(discord.followUps()).toEqual([
      { token: 'tok-1', body: { content: 'second', allowed_mentions: { parse: [] } } },
    ]);
    const edit = discord.requestsTo(/@original$/)[0]!;
    expect(edit.path).toBe(`/api/v10/webhooks/${DISCORD_APPLICATION_ID}/tok-1/messages/@original`);
    expect(edit.headers['user-agent']).toMatch(/^DiscordBot \(/);
  });

  it("turns a 429 into a retryable ChannelSendError with Discord's retry_after", async () => {
    discord.on('PATCH', /\/tok-429\/messages\/@original$/, () => ({
      status: 429,
      body: { message: 'You are being rate limited.', retry_after: 1.25, global: false },
    }));
    const client = createDiscordWebhookClient({
      applicationId: DISCORD_APPLICATION_ID,
      apiRoot: discord.apiRoot,
    });
    const error = await client.editOriginal('tok-429', 'x').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ChannelSendError);
    expect(error).toMatchObject({ status: 429, retryAfterMs: 1250, retryable: true });
  });

  it('reads Retry-After when Discord sends only the header', async () => {
    discord.on('POST', /\/tok-429h$/, () => ({ status: 429, headers: { 'retry-after': '2' }, body: {} }));
    const client = createDiscordWebhookClient({
      applicationId: DISCORD_APPLICATION_ID,
      apiRoot: discord.apiRoot,
    });
    await expect(client.followUp('tok-429h', 'x')).rejects.toMatchObject({ retryAfterMs: 2000 });
  });

  it('fails an expired interaction token without retrying', async () => {
    discord.on('PATCH', /\/tok-gone\/messages\/@original$/, () => ({
      status: 404,
      body: { message: 'Unknown Webhook', code: 10015 },
    }));
    const client = createDiscordWebhookClient({
      applicationId: DISCORD_APPLICATION_ID,
      apiRoot: discord.apiRoot,
    });
    await expect(client.editOriginal('tok-gone', 'x')).rejects.toMatchObject({
      status: 404,
      retryable: false,
    });
  });

  it('registers /ask with the bot token by bulk overwrite, globally or in one server', async () => {
    const registered = await registerDiscordCommands({
      applicationId: DISCORD_APPLICATION_ID,
      botToken: 'bot-token-1',
      apiRoot: discord.apiRoot,
    });
    const put = discord.requestsTo(`/api/v10/applications/${DISCORD_APPLICATION_ID}/commands`)[0]!;
    expect(put.method).toBe('PUT');
    expect(put.headers.authorization).toBe('Bot bot-token-1');
    expect(put.body).toEqual([
      expect.objectContaining({
        name: 'ask',
        type: 1,
        options: [expect.objectContaining({ name: 'question', type: 3, required: true })],
      }),
    ]);
    expect(registered).toEqual([
      expect.objectContaining({ name: 'ask', application_id: DISCORD_APPLICATION_ID }),
    ]);

    await registerDiscordCommands({
      applicationId: DISCORD_APPLICATION_ID,
      botToken: 'bot-token-1',
      apiRoot: discord.apiRoot,
      guildId: '290926798626357250',
    });
    expect(
      discord.requestsTo(
        `/api/v10/applications/${DISCORD_APPLICATION_ID}/guilds/290926798626357250/commands`,
      ),
    ).toHaveLength(1);
  });

  it('reports a refused bot token as a non-retryable error', async () => {
    discord.on('PUT', /\/applications\/\d+\/commands$/, () => ({
      status: 401,
      body: { message: '401: Unauthorized', code: 0 },
    }));
    await expect(
      registerDiscordCommands({
        applicationId: DISCORD_APPLICATION_ID,
        botToken: 'bad',
        apiRoot: discord.apiRoot,
      }),
    ).rejects.toMatchObject({ code: 'UNAUTHENTICATED', retryable: false });
  });
});
