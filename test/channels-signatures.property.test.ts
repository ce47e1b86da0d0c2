/**
 * Property tests of the four signed channels' request checks (issue 5): any change to the body,
 * the signature or the timestamp of a valid request is rejected, and so is a body re-serialized
 * from its parsed JSON wherever the platform signs raw bytes (Discord, WhatsApp, Slack).
 * Telegram signs nothing: its webhook carries a shared secret token, so the property there is
 * that any other token is rejected. Each property runs on the pure verification function, and a
 * few runs go through real HTTP to the running gateway, which must answer 401 and start no turn.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discordPublicKey, verifyDiscordSignature } from '../src/gateway/channels/discord/signature.ts';
import { verifySlackRequest } from '../src/gateway/channels/slack/verify.ts';
import { verifyTelegramRequest } from '../src/gateway/channels/telegram/verify.ts';
import { verifyWhatsAppSignature } from '../src/gateway/channels/whatsapp/signature.ts';
import type { ClawmeshPlugin } from '../src/plugins/types.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import {
  DISCORD_APPLICATION_ID,
  discordAskInteraction,
  discordKeyPair,
  discordSignature,
  type FakeDiscord,
  type FakeSlack,
  type FakeTelegram,
  type FakeWhatsApp,
  slackMessageEvent,
  slackSignature,
  startFakeDiscord,
  startFakeSlack,
  startFakeTelegram,
  startFakeWhatsApp,
  TELEGRAM_TOKEN,
  telegramTextUpdate,
  WHATSAPP_PHONE_NUMBER_ID,
  whatsappMessageWebhook,
  whatsappSignature,
} from './support/fake-platforms.ts';

// ─── Arbitraries ───────────────────────────────────────────────────────────────────────────────

/** Text as people type it: any Unicode, including characters JSON may escape. */
const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 80 });

/** One change to a byte string; always yields different bytes. */
type Mutation =
  | { op: 'flip'; at: number; mask: number }
  | { op: 'insert'; at: number; byte: number }
  | { op: 'delete'; at: number }
  | { op: 'append'; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
);

/** Applies a mutation; the result always differs from the input (an empty input only grows). */
function mutate(input: Buffer, change: Mutation): Buffer {
  const bytes = Buffer.from(input);
  if (bytes.length === 0 && change.op !== 'insert') return Buffer.from([0x20]);
  switch (change.op) {
    case 'flip': {
      const at = change.at % bytes.length;
      bytes[at] = bytes[at]! ^ change.mask;
      return bytes;
    }
    case 'insert': {
      const at = change.at % (bytes.length + 1);
      return Buffer.concat([bytes.subarray(0, at), Buffer.from([change.byte]), bytes.subarray(at)]);
    }
    case 'delete': {
      const at = change.at % bytes.length;
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
    }
    case 'append':
      return Buffer.concat([bytes, change.bytes]);
  }
}

/** Mutates text that must stay one header value: flips among printable ASCII only. */
const headerMutation = fc.record({ at: fc.nat(), to: fc.integer({ min: 0x21, max: 0x7e }) });
function mutateHeader(value: string, change: { at: number; to: number }): string {
  if (value.length === 0) return String.fromCharCode(change.to);
  const at = change.at % value.length;
  const replaced =
    value.charCodeAt(at) === change.to ? (change.to === 0x21 ? 0x22 : change.to - 1) : change.to;
  return value.slice(0, at) + String.fromCharCode(replaced) + value.slice(at + 1);
}

/** Ways a proxy or framework re-serializes JSON it has parsed. */
const RESERIALIZERS: Record<string, (raw: string) => string> = {
  pretty: (raw) => JSON.stringify(JSON.parse(raw), null, 2),
  spaced: (raw) => JSON.stringify(JSON.parse(raw)).replace(/":/g, '": ').replace(/,"/g, ', "'),
  reversedKeys: (raw) => JSON.stringify(reverseKeys(JSON.parse(raw))),
  sortedKeys: (raw) => JSON.stringify(sortKeys(JSON.parse(raw))),
  asciiEscaped: (raw) =>
    JSON.stringify(JSON.parse(raw)).replace(
      /[\u007f-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    ),
  unescaped: (raw) => JSON.stringify(JSON.parse(raw)),
  trailingNewline: (raw) => `${JSON.stringify(JSON.parse(raw))}\n`,
};
const reserializer = fc.constantFrom(...Object.keys(RESERIALIZERS));

function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reverseKeys(v)]),
  );
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => [k, sortKeys(v)]),
  );
}

/** A Unix-seconds timestamp around now, as text. */
const timestamp = fc.integer({ min: 1_600_000_000, max: 2_000_000_000 }).map(String);

// ─── Discord: Ed25519 over timestamp + raw body ────────────────────────────────────────────────

const discordKeys = discordKeyPair();
const discordKey = discordPublicKey(discordKeys.publicKeyHex);

/** A signed `/ask` interaction with a random question, serialized as Discord does (compact). */
const discordRequest = fc.record({ question: text, timestamp }).map(({ question, timestamp }) => {
  const body = JSON.stringify(discordAskInteraction({ question }));
  return { body, timestamp, signature: discordSignature(discordKeys.privateKey, timestamp, body) };
});

const discordValid = (r: { body: string | Buffer; timestamp: string; signature: string }) =>
  verifyDiscordSignature(discordKey, { signature: r.signature, timestamp: r.timestamp, rawBody: r.body });

describe('Discord signature properties (pure)', () => {
  it('accepts every request signed with the key', () => {
    fc.assert(fc.property(discordRequest, (r) => discordValid(r)));
  });

  it('rejects any change to the body', () => {
    fc.assert(
      fc.property(
        discordRequest,
        mutation,
        (r, change) => !discordValid({ ...r, body: mutate(Buffer.from(r.body), change) }),
      ),
    );
  });

  it('rejects any change to the signature', () => {
    fc.assert(
      fc.property(discordRequest, mutation, (r, change) => {
        const signature = mutate(Buffer.from(r.signature, 'hex'), change).toString('hex');
        return !discordValid({ ...r, signature });
      }),
    );
    fc.assert(
      fc.property(
        discordRequest,
        headerMutation,
        (r, change) => !discordValid({ ...r, signature: mutateHeader(r.signature, change) }),
      ),
    );
  });

  it('rejects any change to the timestamp', () => {
    fc.assert(
      fc.property(discordRequest, fc.oneof(timestamp, fc.string({ maxLength: 12 })), (r, other) => {
        fc.pre(other !== r.timestamp);
        return !discordValid({ ...r, timestamp: other });
      }),
    );
  });

  it('rejects a body re-serialized from its parsed JSON', () => {
    fc.assert(
      fc.property(discordRequest, reserializer, (r, how) => {
        const body = RESERIALIZERS[how]!(r.body);
        fc.pre(body !== r.body);
        return !discordValid({ ...r, body });
      }),
    );
  });
});

// ─── WhatsApp: HMAC-SHA256 of the raw body ─────────────────────────────────────────────────────

const WHATSAPP_SECRET = 'whatsapp-app-secret';

/**
 * A signed text-message notification with a random text. Meta sends non-ASCII as `\uXXXX`
 * escapes and signs those bytes, so half the bodies are escaped that way.
 */
const whatsappRequest = fc.record({ message: text, escaped: fc.boolean() }).map(({ message, escaped }) => {
  const compact = JSON.stringify(whatsappMessageWebhook({ text: message }));
  const body = escaped ? RESERIALIZERS.asciiEscaped!(compact) : compact;
  return { body, signature: whatsappSignature(WHATSAPP_SECRET, body) };
});

const whatsappValid = (r: { body: string | Buffer; signature: string }) =>
  verifyWhatsAppSignature(WHATSAPP_SECRET, r.signature, r.body);

describe('WhatsApp signature properties (pure)', () => {
  it('accepts every notification signed with the app secret', () => {
    fc.assert(fc.property(whatsappRequest, (r) => whatsappValid(r)));
  });

  it('rejects any change to the body', () => {
    fc.assert(
      fc.property(
        whatsappRequest,
        mutation,
        (r, change) => !whatsappValid({ ...r, body: mutate(Buffer.from(r.body), change) }),
      ),
    );
  });

  it('rejects any change to the signature', () => {
    fc.assert(
      fc.property(
        whatsappRequest,
        headerMutation,
        (r, change) => !whatsappValid({ ...r, signature: mutateHeader(r.signature, change) }),
      ),
    );
    fc.assert(
      fc.property(whatsappRequest, mutation, (r, change) => {
        const digest = mutate(Buffer.from(r.signature.slice('sha256='.length), 'hex'), change);
        return !whatsappValid({ ...r, signature: `sha256=${digest.toString('hex')}` });
      }),
    );
  });

  it('rejects a body re-serialized from its parsed JSON', () => {
    fc.assert(
      fc.property(whatsappRequest, reserializer, (r, how) => {
        const body = RESERIALIZERS[how]!(r.body);
        fc.pre(body !== r.body);
        return !whatsappValid({ ...r, body });
      }),
    );
  });
});

// ─── Telegram: a shared secret token, no body signature ────────────────────────────────────────

const telegramSecret = fc.stringMatching(/^[A-Za-z0-9_-]{1,256}$/);
const telegramValid = (secret: string, header: string | undefined) => {
  try {
    verifyTelegramRequest({ headers: { 'x-telegram-bot-api-secret-token': header } }, secret);
    return true;
  } catch (err) {
    expect(err).toMatchObject({ code: 'UNAUTHENTICATED' });
    return false;
  }
};

describe('Telegram secret-token properties (pure)', () => {
  it('accepts the configured secret token', () => {
    fc.assert(fc.property(telegramSecret, (secret) => telegramValid(secret, secret)));
  });

  it('rejects any other token, and none', () => {
    fc.assert(
      fc.property(
        telegramSecret,
        headerMutation,
        (secret, change) => !telegramValid(secret, mutateHeader(secret, change)),
      ),
    );
    fc.assert(
      fc.property(telegramSecret, fc.string(), (secret, other) => {
        fc.pre(other !== secret);
        return !telegramValid(secret, other);
      }),
    );
    fc.assert(fc.property(telegramSecret, (secret) => !telegramValid(secret, undefined)));
  });
});

// ─── Slack: v0 HMAC-SHA256 of `v0:{timestamp}:{raw body}`, 5-minute window ───────────────────

const SLACK_SECRET = 'slack-signing-secret';

/** A signed `event_callback` with a random text, signed at a random time (checked at that time). */
const slackRequest = fc.record({ message: text, timestamp }).map(({ message, timestamp }) => {
  const body = JSON.stringify(slackMessageEvent({ eventId: `Ev${timestamp}`, text: message }));
  return {
    body,
    timestamp,
    signature: slackSignature(SLACK_SECRET, timestamp, body),
    now: Number(timestamp),
  };
});

const slackValid = (r: { body: string | Buffer; timestamp: string; signature: string; now: number }) => {
  try {
    verifySlackRequest(
      {
        headers: { 'x-slack-request-timestamp': r.timestamp, 'x-slack-signature': r.signature },
        rawBody: Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body),
      },
      SLACK_SECRET,
      r.now,
    );
    return true;
  } catch (err) {
    expect(err).toMatchObject({ code: 'UNAUTHENTICATED' });
    return false;
  }
};

describe('Slack signature properties (pure)', () => {
  it('accepts every request signed with the signing secret within the window', () => {
    fc.assert(
      fc.property(slackRequest, fc.integer({ min: -300, max: 300 }), (r, skew) =>
        slackValid({ ...r, now: r.now + skew }),
      ),
    );
  });

  it('rejects any change to the body', () => {
    fc.assert(
      fc.property(
        slackRequest,
        mutation,
        (r, change) => !slackValid({ ...r, body: mutate(Buffer.from(r.body), change) }),
      ),
    );
  });

  it('rejects any change to the signature', () => {
    fc.assert(
      fc.property(
        slackRequest,
        headerMutation,
        (r, change) => !slackValid({ ...r, signature: mutateHeader(r.signature, change) }),
      ),
    );
  });

  it('rejects any change to the timestamp, even one inside the window', () => {
    fc.assert(
      fc.property(slackRequest, fc.integer({ min: -300, max: 300 }), (r, delta) => {
        fc.pre(delta !== 0);
        return !slackValid({ ...r, timestamp: String(Number(r.timestamp) + delta) });
      }),
    );
  });

  it('rejects a validly signed request older than five minutes (replay)', () => {
    fc.assert(
      fc.property(
        slackRequest,
        fc.integer({ min: 301, max: 1_000_000 }),
        (r, age) => !slackValid({ ...r, now: r.now + age }),
      ),
    );
  });

  it('rejects a body re-serialized from its parsed JSON', () => {
    fc.assert(
      fc.property(slackRequest, reserializer, (r, how) => {
        const body = RESERIALIZERS[how]!(r.body);
        fc.pre(body !== r.body);
        return !slackValid({ ...r, body });
      }),
    );
  });
});

// ─── Through real HTTP: the gateway answers 401 and starts no turn ─────────────────────────────

/** How each tampered request differs from a valid one. */
const tamper = fc.oneof(
  fc.record({ part: fc.constant('body' as const), change: mutation }),
  fc.record({ part: fc.constant('signature' as const), change: headerMutation }),
  fc.record({
    part: fc.constant('timestamp' as const),
    delta: fc.integer({ min: -299, max: 299 }).filter((d) => d !== 0),
  }),
  fc.record({ part: fc.constant('reserialized' as const), how: reserializer }),
);
type Tamper = typeof tamper extends fc.Arbitrary<infer T> ? T : never;

/** A signed request to send, before tampering. */
interface SignedRequest {
  body: string;
  /** Headers other than the signed ones. */
  headers: Record<string, string>;
  timestamp?: string;
  /** Signs body and timestamp; returns the signature headers. */
  sign(body: string | Buffer, timestamp?: string): Record<string, string>;
  signatureHeader: string;
}

/** The tampered request: a body changed after signing, or a signature or timestamp changed. */
function tampered(
  request: SignedRequest,
  how: Tamper,
): { body: Buffer; headers: Record<string, string> } | undefined {
  const signed = request.sign(request.body, request.timestamp);
  const headers = { ...request.headers, ...signed };
  const body = Buffer.from(request.body);
  switch (how.part) {
    case 'body':
      return { body: mutate(body, how.change), headers };
    case 'signature':
      return {
        body,
        headers: {
          ...headers,
          [request.signatureHeader]: mutateHeader(signed[request.signatureHeader]!, how.change),
        },
      };
    case 'timestamp': {
      const name = Object.keys(signed).find((h) => h.endsWith('timestamp'));
      if (!name || request.timestamp === undefined) return undefined;
      return { body, headers: { ...headers, [name]: String(Number(request.timestamp) + how.delta) } };
    }
    case 'reserialized': {
      const again = RESERIALIZERS[how.how]!(request.body);
      return again === request.body ? undefined : { body: Buffer.from(again), headers };
    }
  }
}

describe('signature checks through real HTTP', () => {
  let app: TestApp;
  let telegram: FakeTelegram;
  let slack: FakeSlack;
  let discord: FakeDiscord;
  let whatsapp: FakeWhatsApp;
  let turns = 0;
  const counter: ClawmeshPlugin = {
    name: 'turn-counter',
    onMessageReceived(_context, message) {
      turns += 1;
      return message;
    },
  };
  const TELEGRAM_SECRET = 'telegram-webhook-secret';
  const now = () => String(Math.floor(Date.now() / 1000));
  let sequence = 0;

  beforeAll(async () => {
    [telegram, slack, discord, whatsapp] = await Promise.all([
      startFakeTelegram(),
      startFakeSlack(),
      startFakeDiscord(),
      startFakeWhatsApp(),
    ]);
    app = await startTestApp(
      {
        channels: {
          telegram: {
            botToken: TELEGRAM_TOKEN,
            webhookSecret: TELEGRAM_SECRET,
            apiRoot: telegram.url,
            dmPolicy: 'open',
          },
          slack: { signingSecret: SLACK_SECRET, botToken: 'xoxb-test', apiRoot: slack.url, dmPolicy: 'open' },
          discord: {
            publicKey: discordKeys.publicKeyHex,
            applicationId: DISCORD_APPLICATION_ID,
            apiRoot: discord.apiRoot,
            dmPolicy: 'open',
          },
          whatsapp: {
            appSecret: WHATSAPP_SECRET,
            verifyToken: 'verify',
            accessToken: 'token',
            phoneNumberId: WHATSAPP_PHONE_NUMBER_ID,
            apiRoot: whatsapp.url,
            dmPolicy: 'open',
          },
        },
      },
      { plugins: [counter] },
    );
  });
  afterAll(async () => {
    await app?.stop();
    await Promise.all([telegram?.close(), slack?.close(), discord?.close(), whatsapp?.close()]);
  });

  const send = async (path: string, body: string | Buffer, headers: Record<string, string>) => {
    const response = await fetch(`${app.url}${path}`, {
      method: 'POST',
      headers,
      body: new Uint8Array(Buffer.from(body)),
    });
    await response.arrayBuffer();
    return response.status;
  };

  /** The four channels: a fresh valid request of each, and where it goes. */
  const channels: { name: string; path: string; request: (text: string) => SignedRequest }[] = [
    {
      name: 'discord',
      path: '/channels/discord/interactions',
      request: (question) => ({
        body: JSON.stringify(discordAskInteraction({ question })),
        headers: { 'content-type': 'application/json' },
        timestamp: now(),
        signatureHeader: 'x-signature-ed25519',
        sign: (body, timestamp = now()) => ({
          'x-signature-ed25519': discordSignature(discordKeys.privateKey, timestamp, body),
          'x-signature-timestamp': timestamp,
        }),
      }),
    },
    {
      name: 'whatsapp',
      path: '/channels/whatsapp/webhook',
      request: (message) => ({
        body: JSON.stringify(whatsappMessageWebhook({ text: message })),
        headers: { 'content-type': 'application/json' },
        signatureHeader: 'x-hub-signature-256',
        sign: (body) => ({ 'x-hub-signature-256': whatsappSignature(WHATSAPP_SECRET, body) }),
      }),
    },
    {
      name: 'slack',
      path: '/channels/slack/events',
      request: (message) => {
        sequence += 1;
        return {
          body: JSON.stringify(slackMessageEvent({ eventId: `EvHTTP${sequence}`, text: message })),
          headers: { 'content-type': 'application/json' },
          timestamp: now(),
          signatureHeader: 'x-slack-signature',
          sign: (body, timestamp = now()) => ({
            'x-slack-request-timestamp': timestamp,
            'x-slack-signature': slackSignature(SLACK_SECRET, timestamp, Buffer.from(body).toString('utf8')),
          }),
        };
      },
    },
  ];

  it('accepts a valid request on each channel (the control)', async () => {
    for (const channel of channels) {
      const request = channel.request('control message');
      expect(
        await send(channel.path, request.body, {
          ...request.headers,
          ...request.sign(request.body, request.timestamp),
        }),
      ).toBe(200);
    }
    const update = JSON.stringify(telegramTextUpdate({ updateId: 900_001, text: 'control message' }));
    expect(
      await send('/channels/telegram/webhook', update, {
        'content-type': 'application/json',
        'x-telegram-bot-api-secret-token': TELEGRAM_SECRET,
      }),
    ).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(turns).toBe(4);
  });

  for (const channel of channels) {
    it(`answers 401 to any tampered ${channel.name} request and starts no turn`, async () => {
      const before = turns;
      await fc.assert(
        fc.asyncProperty(text, tamper, async (message, how) => {
          const request = tampered(channel.request(message), how);
          fc.pre(request !== undefined);
          expect(await send(channel.path, request!.body, request!.headers)).toBe(401);
        }),
        { numRuns: 25 },
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(turns).toBe(before);
    });
  }

  it('answers 401 to any other Telegram secret token and starts no turn', async () => {
    const before = turns;
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 1_000_000 }), headerMutation, async (id, change) => {
        const update = JSON.stringify(telegramTextUpdate({ updateId: 800_000 + id, text: 'hello' }));
        const token = mutateHeader(TELEGRAM_SECRET, change);
        expect(
          await send('/channels/telegram/webhook', update, {
            'content-type': 'application/json',
            'x-telegram-bot-api-secret-token': token,
          }),
        ).toBe(401);
      }),
      { numRuns: 25 },
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(turns).toBe(before);
  });
});
