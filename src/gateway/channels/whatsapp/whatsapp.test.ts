import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type FakeWhatsApp,
  startFakeWhatsApp,
  WHATSAPP_PHONE_NUMBER_ID,
  whatsappHeaders,
  whatsappMessageWebhook,
  whatsappSignature,
  whatsappStatusWebhook,
} from '../../../../test/support/fake-platforms.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { type ChannelRequest, ChannelSendError } from '../types.ts';
import { createWhatsAppAdapter, NON_TEXT_REPLY } from './adapter.ts';
import { createWhatsAppClient, whatsAppMessagesUrl } from './api.ts';
import { normalizeWebhook, parseWebhook } from './payload.ts';
import { signWhatsAppBody, verifyWhatsAppSignature } from './signature.ts';

const SECRET = 'app-secret-for-tests';

function request(
  method: 'GET' | 'POST',
  body: string,
  headers: Record<string, string> = {},
  query: Record<string, string> = {},
): ChannelRequest {
  return { method, url: '/channels/whatsapp/webhook', headers, query, rawBody: Buffer.from(body) };
}

describe('WhatsApp signature', () => {
  const body = JSON.stringify(whatsappMessageWebhook({ text: 'hi' }));

  it('accepts sha256= HMAC-SHA256 of the raw body with the app secret', () => {
    expect(signWhatsAppBody(SECRET, body)).toBe(whatsappSignature(SECRET, body));
    expect(verifyWhatsAppSignature(SECRET, whatsappSignature(SECRET, body), body)).toBe(true);
    expect(verifyWhatsAppSignature(SECRET, whatsappSignature(SECRET, body), Buffer.from(body))).toBe(true);
  });

  it('rejects another secret, a missing or malformed header, and an empty secret', () => {
    expect(verifyWhatsAppSignature(SECRET, whatsappSignature('other', body), body)).toBe(false);
    expect(verifyWhatsAppSignature(SECRET, undefined, body)).toBe(false);
    expect(verifyWhatsAppSignature(SECRET, whatsappSignature(SECRET, body).slice(7), body)).toBe(false);
    expect(verifyWhatsAppSignature(SECRET, 'sha256=abc', body)).toBe(false);
    expect(verifyWhatsAppSignature('', whatsappSignature('', body), body)).toBe(false);
  });
});

describe('WhatsApp webhook payloads', () => {
  it('reads a text message: id, sender, profile name, business number, text', () => {
    const webhook = whatsappMessageWebhook({ text: 'Does it come in another color?', id: 'wamid.ABC' });
    expect(normalizeWebhook(parseWebhook(JSON.stringify(webhook)))).toEqual([
      expect.objectContaining({
        kind: 'text',
        messageId: 'wamid.ABC',
        from: '16505551234',
        name: 'Sheena Nelson',
        phoneNumberId: WHATSAPP_PHONE_NUMBER_ID,
        text: 'Does it come in another color?',
      }),
    ]);
  });

  it('reads taps on reply buttons as text', () => {
    const webhook = whatsappMessageWebhook({
      type: 'interactive',
      extra: { interactive: { type: 'button_reply', button_reply: { id: 'yes', title: 'Yes please' } } },
    });
    expect(normalizeWebhook(parseWebhook(JSON.stringify(webhook)))).toEqual([
      expect.objectContaining({ kind: 'text', text: 'Yes please' }),
    ]);
  });

  it('reads statuses and non-text messages as such', () => {
    const statuses = normalizeWebhook(
      parseWebhook(JSON.stringify(whatsappStatusWebhook({ status: 'read' }))),
    );
    expect(statuses).toEqual([expect.objectContaining({ kind: 'status', status: 'read' })]);
    const image = whatsappMessageWebhook({
      type: 'image',
      extra: { image: { id: 'MEDIA', mime_type: 'image/jpeg' } },
    });
    expect(normalizeWebhook(parseWebhook(JSON.stringify(image)))).toEqual([
      expect.objectContaining({ kind: 'non-text', type: 'image', answer: true }),
    ]);
  });

  it('rejects a body that is not a notification', () => {
    expect(() => parseWebhook('not json')).toThrow(/malformed webhook body/);
    expect(() => parseWebhook(JSON.stringify({ entry: [] }))).toThrow(/object/);
  });
});

describe('WhatsApp adapter routes', () => {
  const adapter = createWhatsAppAdapter({
    appSecret: SECRET,
    verifyToken: 'verify-me',
    accessToken: 'EAAG-token',
    phoneNumberId: WHATSAPP_PHONE_NUMBER_ID,
    logger: silentLogger(),
  });
  const get = adapter.routes.find((r) => r.method === 'GET')!;
  const post = adapter.routes.find((r) => r.method === 'POST')!;

  it('answers the subscription challenge as plain text when the verify token matches', async () => {
    const query = { 'hub.mode': 'subscribe', 'hub.verify_token': 'verify-me', 'hub.challenge': '1158201444' };
    const outcome = await get.handle(request('GET', '', {}, query));
    expect(outcome).toEqual({
      kind: 'respond',
      response: { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '1158201444' },
    });
  });

  it('refuses the challenge with 403 for a wrong token or mode', async () => {
    for (const query of <Record<string, string>[]>[
      { 'hub.mode': 'subscribe', 'hub.verify_token': 'wrong', 'hub.challenge': '1' },
      { 'hub.mode': 'unsubscribe', 'hub.verify_token': 'verify-me', 'hub.challenge': '1' },
      { 'hub.mode': 'subscribe', 'hub.challenge': '1' },
    ]) {
      const outcome = await get.handle(request('GET', '', {}, query));
      expect(outcome).toMatchObject({ kind: 'respond', response: { status: 403 } });
    }
  });

  it('throws ChannelAuthError (401) for a bad X-Hub-Signature-256', () => {
    const body = JSON.stringify(whatsappMessageWebhook({ text: 'hi' }));
    expect(() => post.verify!(request('POST', body, whatsappHeaders('wrong', body)))).toThrow(
      expect.objectContaining({ httpStatus: 401 }),
    );
    expect(() => post.verify!(request('POST', body, whatsappHeaders(SECRET, body)))).not.toThrow();
  });

  it('accepts a text message as a direct message to the bot, replying to the sender', async () => {
    const body = JSON.stringify(whatsappMessageWebhook({ text: 'hello', id: 'wamid.X1' }));
    const outcome = await post.handle(request('POST', body));
    expect(outcome).toEqual({
      kind: 'accept',
      messages: [
        expect.objectContaining({
          updateId: 'wamid.X1',
          channel: 'whatsapp',
          account: WHATSAPP_PHONE_NUMBER_ID,
          chatId: '16505551234',
          userId: '16505551234',
          userName: 'Sheena Nelson',
          text: 'hello',
          isGroup: false,
          mentioned: true,
          replyTo: { to: '16505551234' },
        }),
      ],
    });
  });

  it('answers a sticker, photo or voice note with a fixed reply instead of a turn', async () => {
    const body = JSON.stringify(
      whatsappMessageWebhook({ type: 'sticker', id: 'wamid.S1', extra: { sticker: { id: 'S' } } }),
    );
    const outcome = await post.handle(request('POST', body));
    expect(outcome).toEqual({
      kind: 'accept',
      messages: [
        expect.objectContaining({
          updateId: 'wamid.S1',
          userId: '16505551234',
          text: '[sticker]',
          fixedReply: NON_TEXT_REPLY,
          replyTo: { to: '16505551234' },
        }),
      ],
    });
  });

  it('acknowledges statuses, reactions and other numbers without a message', async () => {
    for (const webhook of [
      whatsappStatusWebhook(),
      whatsappMessageWebhook({
        type: 'reaction',
        extra: { reaction: { message_id: 'wamid.X', emoji: '👍' } },
      }),
      whatsappMessageWebhook({ text: 'for another number', phoneNumberId: '999' }),
    ]) {
      const outcome = await post.handle(request('POST', JSON.stringify(webhook)));
      expect(outcome).toEqual({ kind: 'respond', response: { status: 200, body: { ok: true } } });
    }
  });
});

describe('WhatsApp Graph API client (against a fake Graph API)', () => {
  let graph: FakeWhatsApp;
  beforeAll(async () => {
    graph = await startFakeWhatsApp({ accessToken: 'EAAG-token' });
  });
  afterAll(() => graph.close());

  const client = () =>
    createWhatsAppClient({
      accessToken: 'EAAG-token',
      phoneNumberId: WHATSAPP_PHONE_NUMBER_ID,
      apiRoot: graph.url,
    });

  it('builds the messages URL from root, version and number; a versioned root keeps its version', () => {
    expect(whatsAppMessagesUrl({ phoneNumberId: '1', apiRoot: 'https://graph.facebook.com/' })).toBe(
      'https://graph.facebook.com/v21.0/1/messages',
    );
    expect(whatsAppMessagesUrl({ phoneNumberId: '1', apiVersion: 'v19.0' })).toBe(
      'https://graph.facebook.com/v19.0/1/messages',
    );
    expect(whatsAppMessagesUrl({ phoneNumberId: '1', apiRoot: 'https://graph.facebook.com/v20.0' })).toBe(
      'https://graph.facebook.com/v20.0/1/messages',
    );
  });

  it('sends a text message with the bearer token and returns its wamid', async () => {
    const id = await client().sendText('16505551234', 'Hi there');
    expect(id).toMatch(/^wamid\./);
    const sent = graph.requestsTo(graph.messagesPath).at(-1)!;
    expect(sent.headers.authorization).toBe('Bearer EAAG-token');
    expect(sent.body).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: '16505551234',
      type: 'text',
      text: { preview_url: false, body: 'Hi there' },
    });
  });

  it("maps Graph's throttling codes to a retryable 429 with a wait", async () => {
    graph.on('POST', graph.messagesPath, (req) =>
      req.body?.to === 'pair-limited'
        ? {
            status: 400,
            body: {
              error: { message: '(#131056) pair rate limit hit', type: 'OAuthException', code: 131056 },
            },
          }
        : undefined,
    );
    const error = await client()
      .sendText('pair-limited', 'x')
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ChannelSendError);
    expect(error).toMatchObject({ status: 429, retryable: true, retryAfterMs: 6000, platformCode: '131056' });
  });

  it('honours Retry-After on an HTTP 429', async () => {
    graph.on('POST', graph.messagesPath, (req) =>
      req.body?.to === 'throttled'
        ? {
            status: 429,
            headers: { 'retry-after': '3' },
            body: { error: { message: 'slow down', code: 130429 } },
          }
        : undefined,
    );
    await expect(client().sendText('throttled', 'x')).rejects.toMatchObject({
      retryAfterMs: 3000,
      retryable: true,
    });
  });

  it('treats an expired token as final', async () => {
    const bad = createWhatsAppClient({
      accessToken: 'expired',
      phoneNumberId: WHATSAPP_PHONE_NUMBER_ID,
      apiRoot: graph.url,
    });
    await expect(bad.sendText('16505551234', 'x')).rejects.toMatchObject({
      status: 401,
      retryable: false,
      platformCode: '190',
    });
  });
});
