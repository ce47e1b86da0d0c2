/**
 * The Discord channel through real HTTP: a loopback fake plays Discord's REST API, interactions
 * are signed with an Ed25519 key generated here (its public half is DISCORD_PUBLIC_KEY), and the
 * real adapter, pipeline and webhook client run unchanged.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registerDiscordCommands } from '../src/gateway/channels/discord/api.ts';
import type { ClawmeshPlugin } from '../src/plugins/types.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import {
  DISCORD_APPLICATION_ID,
  discordAskInteraction,
  discordHeaders,
  discordKeyPair,
  discordPing,
  eventually,
  type FakeDiscord,
  startFakeDiscord,
} from './support/fake-platforms.ts';

const keys = discordKeyPair();
const PATH = '/channels/discord/interactions';
/** The message id a turn carries: the inbox id `discord:<application id>:<interaction id>`. */
const turnId = (interactionId: string) => `discord:${DISCORD_APPLICATION_ID}:${interactionId}`;

/** Records each turn the channel starts and each reply it produces; can hold turns at a gate. */
function turnRecorder() {
  const turns: { channel: string; messageId?: string; text: string }[] = [];
  const replies: string[] = [];
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  let rewrite: ((text: string) => string) | undefined;
  const plugin: ClawmeshPlugin = {
    name: 'turn-recorder',
    timeoutMs: 10_000,
    async onMessageReceived(_context, message) {
      turns.push({
        channel: message.channel,
        text: message.text,
        ...(message.messageId ? { messageId: message.messageId } : {}),
      });
      await gate;
      return message;
    },
    onResponseGenerated(_context, response) {
      replies.push(response.text);
      return rewrite ? { ...response, text: rewrite(response.text) } : response;
    },
  };
  return {
    plugin,
    turns,
    replies,
    hold() {
      gate = new Promise((resolve) => {
        open = resolve;
      });
    },
    release() {
      open?.();
      gate = undefined;
    },
    /** Replaces the replies' text (the local model answers briefly). */
    rewriteReplies(next: ((text: string) => string) | undefined) {
      rewrite = next;
    },
    reset() {
      turns.length = 0;
      replies.length = 0;
    },
  };
}

describe('Discord interactions over HTTP', () => {
  let discord: FakeDiscord;
  let t: TestApp;
  const recorder = turnRecorder();

  const post = async (body: string, headers: Record<string, string>) => {
    const started = Date.now();
    const response = await fetch(`${t.url}${PATH}`, { method: 'POST', headers, body });
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return {
      status: response.status,
      // biome-ignore lint/suspicious/noExplicitAny: asserted field by field
      body: json as any,
      ms: Date.now() - started,
      headers: response.headers,
    };
  };
  const signed = (payload: unknown) => {
    const body = JSON.stringify(payload);
    return post(body, discordHeaders(keys.privateKey, body));
  };

  beforeAll(async () => {
    discord = await startFakeDiscord();
    // The channel is configured from the environment, as in production.
    t = await startTestApp(
      {
        channels: {
          // In a server anyone may /ask; in a DM only the fixtures' default user.
          discord: { dmPolicy: 'allowlist', allowlist: ['80351110224678912'] },
          delivery: { baseDelayMs: 10, maxDelayMs: 5000 },
        },
      },
      { plugins: [recorder.plugin] },
      {
        DISCORD_PUBLIC_KEY: keys.publicKeyHex,
        DISCORD_APPLICATION_ID: DISCORD_APPLICATION_ID,
        DISCORD_API_ROOT: discord.apiRoot,
      },
    );
  });
  afterAll(async () => {
    await t?.stop();
    await discord?.close();
  });
  beforeEach(() => recorder.reset());

  it('answers a signed PING with a PONG', async () => {
    const res = await signed(discordPing());
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.body).toEqual({ type: 1 });
  });

  it('answers 401 to a bad or missing signature, and starts no turn', async () => {
    const body = JSON.stringify(discordAskInteraction({ question: 'sneaky' }));
    const good = discordHeaders(keys.privateKey, body);
    const other = discordKeyPair();
    const cases: Record<string, string>[] = [
      { 'content-type': 'application/json' },
      discordHeaders(other.privateKey, body),
      { ...good, 'x-signature-timestamp': String(Number(good['x-signature-timestamp']) + 1) },
      // The last byte flipped (never the same byte again, unlike a fixed replacement).
      { ...good, 'x-signature-ed25519': flipLastByte(good['x-signature-ed25519']!) },
    ];
    for (const headers of cases) {
      const res = await post(body, headers);
      expect(res.status).toBe(401);
    }
    const ping = JSON.stringify(discordPing());
    expect((await post(ping, discordHeaders(other.privateKey, ping))).status).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(recorder.turns).toEqual([]);
    expect(discord.edits()).toEqual([]);
  });

  it('defers /ask within 3 s while the turn runs, then edits @original with the reply', async () => {
    recorder.hold();
    const interaction = discordAskInteraction({ question: 'how many red shirts are in stock?' });
    const res = await signed(interaction);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ type: 5 });
    expect(res.ms).toBeLessThan(3000);
    // The turn has started but is held: the answer did not wait for it.
    await eventually(() => recorder.turns.length === 1);
    expect(discord.edits().filter((e) => e.token === interaction.token)).toEqual([]);
    recorder.release();

    const edit = await discord.waitFor(
      new RegExp(`/webhooks/${DISCORD_APPLICATION_ID}/${interaction.token}/messages/@original$`),
    );
    expect(edit.method).toBe('PATCH');
    expect(recorder.turns).toEqual([
      { channel: 'discord', messageId: turnId(interaction.id), text: 'how many red shirts are in stock?' },
    ]);
    expect(recorder.replies).toHaveLength(1);
    expect(edit.body).toEqual({ content: recorder.replies[0], allowed_mentions: { parse: [] } });
    expect(edit.body.content).toMatch(/red shirt/i);
  });

  it('gives five deliveries of one interaction one turn and one reply', async () => {
    const interaction = discordAskInteraction({ question: 'tell me about blue socks' });
    const body = JSON.stringify(interaction);
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => post(body, discordHeaders(keys.privateKey, body))),
    );
    for (const res of responses) expect(res.body).toEqual({ type: 5 });
    await discord.waitFor(new RegExp(`/${interaction.token}/messages/@original$`));
    // Give a second turn or reply every chance to show up.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(recorder.turns.filter((turn) => turn.messageId === turnId(interaction.id))).toHaveLength(1);
    expect(discord.edits().filter((e) => e.token === interaction.token)).toHaveLength(1);
    expect(discord.followUps().filter((e) => e.token === interaction.token)).toHaveLength(0);
  });

  it("honours a 429's retry_after before editing again", async () => {
    const interaction = discordAskInteraction({ question: 'is anything in stock?' });
    let refused = 0;
    discord.on('PATCH', new RegExp(`/${interaction.token}/messages/@original$`), () => {
      if (refused > 0) return undefined;
      refused += 1;
      return {
        status: 429,
        headers: { 'x-ratelimit-scope': 'user' },
        body: { message: 'You are being rate limited.', retry_after: 0.6, global: false },
      };
    });
    expect((await signed(interaction)).body).toEqual({ type: 5 });
    const path = new RegExp(`/${interaction.token}/messages/@original$`);
    const first = await discord.waitFor(path, 1);
    const second = await discord.waitFor(path, 2);
    // baseDelayMs is 10: only Discord's retry_after explains the wait.
    expect(second.at - first.at).toBeGreaterThanOrEqual(550);
    expect(second.body.content).toBe(first.body.content);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(discord.requestsTo(path)).toHaveLength(2);
  });

  it('splits a reply longer than 2000 characters: the first part edits @original, the rest follow up', async () => {
    const long = Array.from(
      { length: 60 },
      (_, i) => `Paragraph ${i}: ${'lorem ipsum '.repeat(6).trim()}.`,
    ).join('\n\n');
    const interaction = discordAskInteraction({ question: `echo ${long.length}` });
    recorder.reset();
    // The local model's answer is short; make this turn's reply long through the hook.
    recorder.rewriteReplies(() => long);
    try {
      await signed(interaction);
      await discord.waitFor(new RegExp(`/${interaction.token}/messages/@original$`));
      await eventually(() => discord.followUps().filter((f) => f.token === interaction.token).length >= 2);
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      recorder.rewriteReplies(undefined);
    }
    const edit = discord.edits().filter((e) => e.token === interaction.token);
    const followUps = discord.followUps().filter((f) => f.token === interaction.token);
    const parts = [...edit, ...followUps].map((p) => p.body.content as string);
    expect(edit).toHaveLength(1);
    expect(parts.every((p) => p.length <= 2000)).toBe(true);
    expect(parts.join('\n\n').replace(/\s+/g, ' ')).toBe(long.replace(/\s+/g, ' '));
  });

  it('answers /ask in a DM with the bot; a user the DM policy refuses gets a notice, not a hanging "thinking…"', async () => {
    const allowed = discordAskInteraction({ question: 'hello from a DM', guildId: null });
    expect((await signed(allowed)).body).toEqual({ type: 5 });
    await discord.waitFor(new RegExp(`/${allowed.token}/messages/@original$`));
    expect(recorder.turns.map((turn) => turn.messageId)).toEqual([turnId(allowed.id)]);

    const refused = discordAskInteraction({
      question: 'let me in',
      guildId: null,
      userId: '80351110224670000',
    });
    expect((await signed(refused)).body).toEqual({ type: 5 });
    const notice = await discord.waitFor(new RegExp(`/${refused.token}/messages/@original$`));
    expect(notice.body.content).toMatch(/not allowed/i);
    expect(recorder.turns.map((turn) => turn.messageId)).toEqual([turnId(allowed.id)]);
  });

  it('answers an /ask without a question ephemerally and runs no turn', async () => {
    const res = await signed(discordAskInteraction({ question: '  ' }));
    expect(res.body).toMatchObject({ type: 4, data: { flags: 64 } });
    expect(recorder.turns).toEqual([]);
  });

  it('registers /ask with the bot token against the fake', async () => {
    const commands = await registerDiscordCommands({
      applicationId: DISCORD_APPLICATION_ID,
      botToken: 'test-bot-token',
      apiRoot: discord.apiRoot,
    });
    expect(commands).toEqual([expect.objectContaining({ name: 'ask', type: 1 })]);
    const put = discord.requestsTo(`/api/v10/applications/${DISCORD_APPLICATION_ID}/commands`).at(-1)!;
    expect(put.headers.authorization).toBe('Bot test-bot-token');
  });
});

/** A hex string with its last byte inverted. */
function flipLastByte(hex: string): string {
  const last = (Number.parseInt(hex.slice(-2), 16) ^ 0xff).toString(16).padStart(2, '0');
  return `${hex.slice(0, -2)}${last}`;
}
