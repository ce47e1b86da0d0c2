/**
 * The WhatsApp Cloud API channel through real HTTP: a loopback fake plays the Graph API, the
 * webhook notifications are the documented payloads signed with the app secret, and the real
 * adapter, pipeline and Graph client run unchanged.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NON_TEXT_REPLY } from '../src/gateway/channels/whatsapp/adapter.ts';
import type { ClawmeshPlugin } from '../src/plugins/types.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import {
  eventually,
  type FakeWhatsApp,
  startFakeWhatsApp,
  WHATSAPP_PHONE_NUMBER_ID,
  whatsappHeaders,
  whatsappMessageWebhook,
  whatsappSignature,
  whatsappStatusWebhook,
} from './support/fake-platforms.ts';

const SECRET = 'whatsapp-app-secret-for-tests';
const VERIFY_TOKEN = 'verify-token-for-tests';
const ACCESS_TOKEN = 'EAAGtest-access-token';
const PATH = '/channels/whatsapp/webhook';

const settle = (ms = 300) => new Promise((resolve) => setTimeout(resolve, ms));

describe('WhatsApp Cloud API over HTTP', () => {
  let graph: FakeWhatsApp;
  let t: TestApp;
  const turns: { channel: string; messageId?: string; text: string; userId: string }[] = [];
  const recorder: ClawmeshPlugin = {
    name: 'turn-recorder',
    onMessageReceived(_context, message) {
      turns.push({
        channel: message.channel,
        text: message.text,
        userId: message.userId,
        ...(message.messageId ? { messageId: message.messageId } : {}),
      });
      return message;
    },
  };

  const post = async (body: string, headers: Record<string, string>) => {
    const response = await fetch(`${t.url}${PATH}`, { method: 'POST', headers, body });
    return { status: response.status, text: await response.text() };
  };
  const notify = (payload: unknown) => {
    const body = JSON.stringify(payload);
    return post(body, whatsappHeaders(SECRET, body));
  };
  const sentTo = (to: string) => graph.sent().filter((m) => m.to === to);

  beforeAll(async () => {
    graph = await startFakeWhatsApp({ accessToken: ACCESS_TOKEN });
    // Secrets from the environment, as in production; the allowlist and delivery from the config.
    t = await startTestApp(
      {
        channels: {
          whatsapp: { allowlist: ['16505551234', '16505550001', '16505550002', '16505550003'] },
          delivery: { baseDelayMs: 10, maxDelayMs: 5000 },
        },
      },
      { plugins: [recorder] },
      {
        WHATSAPP_APP_SECRET: SECRET,
        WHATSAPP_VERIFY_TOKEN: VERIFY_TOKEN,
        WHATSAPP_ACCESS_TOKEN: ACCESS_TOKEN,
        WHATSAPP_PHONE_NUMBER_ID: WHATSAPP_PHONE_NUMBER_ID,
        WHATSAPP_API_ROOT: graph.url,
      },
    );
  });
  afterAll(async () => {
    await t?.stop();
    await graph?.close();
  });
  beforeEach(() => {
    turns.length = 0;
  });

  it('answers the subscription challenge as plain text when the verify token matches', async () => {
    const query = new URLSearchParams({
      'hub.mode': 'subscribe',
      'hub.verify_token': VERIFY_TOKEN,
      'hub.challenge': '1158201444',
    });
    const res = await fetch(`${t.url}${PATH}?${query}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe('1158201444');
  });

  it('refuses the challenge with 403 when the verify token or mode is wrong', async () => {
    for (const params of <Record<string, string>[]>[
      { 'hub.mode': 'subscribe', 'hub.verify_token': 'not-it', 'hub.challenge': '1' },
      { 'hub.mode': 'unsubscribe', 'hub.verify_token': VERIFY_TOKEN, 'hub.challenge': '1' },
      { 'hub.challenge': '1' },
    ]) {
      const res = await fetch(`${t.url}${PATH}?${new URLSearchParams(params)}`);
      expect(res.status).toBe(403);
      expect(await res.text()).not.toContain('1158201444');
    }
  });

  it('answers 401 to a bad or missing X-Hub-Signature-256 and starts no turn', async () => {
    const body = JSON.stringify(whatsappMessageWebhook({ text: 'let me in', from: '16505550009' }));
    const cases: Record<string, string>[] = [
      { 'content-type': 'application/json' },
      whatsappHeaders('some-other-secret', body),
      { 'content-type': 'application/json', 'x-hub-signature-256': whatsappSignature(SECRET, `${body} `) },
      { 'content-type': 'application/json', 'x-hub-signature-256': whatsappSignature(SECRET, body).slice(7) },
    ];
    for (const headers of cases) expect((await post(body, headers)).status).toBe(401);
    await settle(100);
    expect(turns).toEqual([]);
    expect(sentTo('16505550009')).toEqual([]);
  });

  it('turns a text message into a reply through the Graph API', async () => {
    const id = 'wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=';
    const webhook = whatsappMessageWebhook({ text: 'how many red shirts are in stock?', id });
    const res = await notify(webhook);
    expect(res.status).toBe(200);
    const request = await graph.waitFor(graph.messagesPath);
    expect(request.headers.authorization).toBe(`Bearer ${ACCESS_TOKEN}`);
    expect(request.body).toMatchObject({
      messaging_product: 'whatsapp',
      to: '16505551234',
      type: 'text',
      text: { body: expect.stringMatching(/red shirt/i) },
    });
    expect(turns).toEqual([
      {
        channel: 'whatsapp',
        messageId: `whatsapp:${WHATSAPP_PHONE_NUMBER_ID}:${id}`,
        text: 'how many red shirts are in stock?',
        userId: '16505551234',
      },
    ]);
  });

  it('accepts status callbacks and ignores them', async () => {
    const before = graph.sent().length;
    for (const status of ['sent', 'delivered', 'read']) {
      const res = await notify(whatsappStatusWebhook({ status }));
      expect(res.status).toBe(200);
    }
    await settle();
    expect(turns).toEqual([]);
    expect(graph.sent()).toHaveLength(before);
  });

  it('answers a photo politely without a turn, and ignores a reaction', async () => {
    const image = whatsappMessageWebhook({
      from: '16505550003',
      type: 'image',
      extra: { image: { id: '1479537139650973', mime_type: 'image/jpeg', sha256: 'abc' } },
    });
    const body = JSON.stringify(image);
    for (let i = 0; i < 3; i++) expect((await post(body, whatsappHeaders(SECRET, body))).status).toBe(200);
    const reaction = whatsappMessageWebhook({
      from: '16505550003',
      type: 'reaction',
      extra: { reaction: { message_id: 'wamid.earlier', emoji: '👍' } },
    });
    expect((await notify(reaction)).status).toBe(200);
    await eventually(() => sentTo('16505550003').length === 1);
    await settle();
    expect(sentTo('16505550003')).toEqual([
      expect.objectContaining({ type: 'text', text: expect.objectContaining({ body: NON_TEXT_REPLY }) }),
    ]);
    expect(turns).toEqual([]);
  });

  it('gives five deliveries of one message one turn and one reply', async () => {
    const webhook = whatsappMessageWebhook({ text: 'do you have blue socks?', from: '16505550001' });
    const body = JSON.stringify(webhook);
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => post(body, whatsappHeaders(SECRET, body))),
    );
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    await eventually(() => sentTo('16505550001').length >= 1);
    // Meta's later retries of the same notification, one at a time.
    for (let i = 0; i < 2; i++) expect((await post(body, whatsappHeaders(SECRET, body))).status).toBe(200);
    await settle();
    expect(turns.filter((turn) => turn.userId === '16505550001')).toHaveLength(1);
    expect(sentTo('16505550001')).toHaveLength(1);
  });

  it('retries a throttled send after the wait Graph asks for', async () => {
    let refused = 0;
    graph.on('POST', graph.messagesPath, (req) => {
      if (req.body?.to !== '16505550002' || refused > 0) return undefined;
      refused += 1;
      return {
        status: 429,
        headers: { 'retry-after': '1' },
        body: { error: { message: '(#130429) Rate limit hit', type: 'OAuthException', code: 130429 } },
      };
    });
    await notify(whatsappMessageWebhook({ text: 'anything in stock?', from: '16505550002' }));
    const first = await graph.waitFor(graph.messagesPath, graph.requestsTo(graph.messagesPath).length + 1);
    await eventually(() => sentTo('16505550002').length === 1, 5000);
    const attempts = graph.requestsTo(graph.messagesPath).filter((r) => r.body?.to === '16505550002');
    expect(attempts).toHaveLength(2);
    expect(attempts[1]!.at - first.at).toBeGreaterThanOrEqual(950);
  });

  it('answers an unknown number with a pairing code and no turn (dmPolicy pairing)', async () => {
    await notify(whatsappMessageWebhook({ text: 'hello?', from: '447700900123' }));
    await eventually(() => sentTo('447700900123').length === 1);
    expect(sentTo('447700900123')[0].text.body).toMatch(/pairing code: \S+/i);
    expect(sentTo('447700900123')[0].text.body).toContain('clawmesh pairing approve whatsapp');
    expect(turns).toEqual([]);
  });
});
