import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ClawmeshPlugin } from '../src/plugins/types.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import {
  type FakeSlack,
  SLACK_BOT_USER,
  slackHeaders,
  slackMessageEvent,
  slackSignature,
  startFakeSlack,
} from './support/fake-platforms.ts';

const SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const EVENTS = '/channels/slack/events';

describe('Slack Events API', () => {
  let fake: FakeSlack;
  let t: TestApp;
  let turns = 0;
  let nextReply: string | undefined;
  const plugin: ClawmeshPlugin = {
    name: 'slack-probe',
    onMessageReceived(_ctx, message) {
      turns += 1;
      return message;
    },
    onResponseGenerated(_ctx, response) {
      return nextReply ?? response;
    },
  };
  beforeAll(async () => {
    fake = await startFakeSlack();
    t = await startTestApp(
      {
        channels: {
          slack: { signingSecret: SECRET, botToken: 'xoxb-test-token', apiRoot: fake.url, dmPolicy: 'open' },
          delivery: { baseDelayMs: 10, maxDelayMs: 200, maxAttempts: 3 },
        },
      },
      { plugins: [plugin] },
    );
  });
  afterAll(async () => {
    await t.stop();
    await fake.close();
  });
  beforeEach(() => {
    nextReply = undefined;
  });

  /** POSTs a signed raw body (signed exactly as sent). */
  const postSigned = (body: string, headers: Record<string, string> = {}) =>
    t.post(EVENTS, body, { ...slackHeaders(SECRET, body), ...headers });

  const quiet = () => new Promise((resolve) => setTimeout(resolve, 150));

  it('answers the url_verification challenge', async () => {
    const body = JSON.stringify({
      token: 'Jhj5dZrVaK7ZwHHjRyZWjbDl',
      challenge: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P',
      type: 'url_verification',
    });
    const res = await postSigned(body);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ challenge: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P' });
  });

  it('answers a direct message with chat.postMessage, bearer token and JSON', async () => {
    const before = fake.posted().length;
    const body = JSON.stringify(
      slackMessageEvent({ eventId: 'Ev01', text: 'how many red shirts are in stock?' }),
    );
    const res = await postSigned(body);
    expect(res.status).toBe(200);
    const request = await fake.waitFor('/chat.postMessage', before + 1);
    expect(request.headers.authorization).toBe('Bearer xoxb-test-token');
    expect(request.headers['content-type']).toMatch(/^application\/json/);
    expect(request.body).toMatchObject({ channel: 'D0001' });
    expect(request.body.thread_ts).toBeUndefined();
    expect(request.body.text).toMatch(/red shirt: 42 units in stock/);
  });

  it('deduplicates retries by event_id: one turn and one reply', async () => {
    const turnsBefore = turns;
    const before = fake.posted().length;
    const event = slackMessageEvent({
      eventId: 'Ev02RETRY',
      text: 'hello there',
      user: 'U0777',
      channel: 'D0777',
    });
    const body = JSON.stringify(event);
    expect((await postSigned(body)).status).toBe(200);
    for (const retry of ['1', '2', '3']) {
      const res = await postSigned(body, {
        'x-slack-retry-num': retry,
        'x-slack-retry-reason': 'http_timeout',
      });
      expect(res.status).toBe(200);
    }
    await fake.waitFor('/chat.postMessage', before + 1);
    await quiet();
    expect(turns).toBe(turnsBefore + 1);
    expect(fake.posted().slice(before)).toHaveLength(1);
  });

  it('rejects a wrong signature, a stale timestamp and a missing header with 401', async () => {
    const turnsBefore = turns;
    const body = JSON.stringify(slackMessageEvent({ eventId: 'Ev03', text: 'hi' }));
    const now = Math.floor(Date.now() / 1000);
    const wrongSecret = await t.post(EVENTS, body, {
      'x-slack-request-timestamp': String(now),
      'x-slack-signature': slackSignature('another-secret', now, body),
    });
    expect(wrongSecret.status).toBe(401);
    const stale = await t.post(EVENTS, body, slackHeaders(SECRET, body, now - 6 * 60));
    expect(stale.status).toBe(401);
    expect(stale.body.error.message).toMatch(/5-minute/);
    const future = await t.post(EVENTS, body, slackHeaders(SECRET, body, now + 6 * 60));
    expect(future.status).toBe(401);
    const unsigned = await t.post(EVENTS, body, { 'x-slack-request-timestamp': String(now) });
    expect(unsigned.status).toBe(401);
    await quiet();
    expect(turns).toBe(turnsBefore);
  });

  it('rejects a body re-serialized after signing (the signature covers the raw bytes)', async () => {
    const event = slackMessageEvent({ eventId: 'Ev04', text: 'hi' });
    const raw = JSON.stringify(event, null, 2);
    const headers = slackHeaders(SECRET, raw);
    const res = await t.post(EVENTS, JSON.stringify(JSON.parse(raw)), headers);
    expect(res.status).toBe(401);
    const ok = await t.post(EVENTS, raw, headers);
    expect(ok.status).toBe(200);
  });

  it('ignores bot messages, its own messages and edits', async () => {
    const turnsBefore = turns;
    const events = [
      slackMessageEvent({ eventId: 'Ev05a', text: 'from a bot', botId: 'B0001' }),
      slackMessageEvent({ eventId: 'Ev05b', text: 'my own echo', user: SLACK_BOT_USER }),
      slackMessageEvent({ eventId: 'Ev05c', text: 'edited', subtype: 'message_changed' }),
      slackMessageEvent({ eventId: 'Ev05d', text: 'posted by an integration', subtype: 'bot_message' }),
    ];
    for (const event of events) expect((await postSigned(JSON.stringify(event))).status).toBe(200);
    await quiet();
    expect(turns).toBe(turnsBefore);
  });

  it('answers an app_mention in a channel in its thread, without the mention', async () => {
    let seen = '';
    nextReply = undefined;
    const turnsBefore = turns;
    const before = fake.posted().length;
    const event = slackMessageEvent({
      eventId: 'Ev06',
      type: 'app_mention',
      text: `<@${SLACK_BOT_USER}> how many blue shirts are in stock?`,
      channel: 'C0100',
    });
    const res = await postSigned(JSON.stringify(event));
    expect(res.status).toBe(200);
    const request = await fake.waitFor('/chat.postMessage', before + 1);
    seen = request.body.text;
    expect(request.body).toMatchObject({ channel: 'C0100', thread_ts: event.event.ts });
    expect(seen).toMatch(/blue shirt/);
    expect(turns).toBe(turnsBefore + 1);
  });

  it('skips a channel message event that mentions the bot (its app_mention is answered instead)', async () => {
    const turnsBefore = turns;
    const event = slackMessageEvent({
      eventId: 'Ev07',
      text: `<@${SLACK_BOT_USER}> hi`,
      channel: 'C0100',
      channelType: 'channel',
    });
    expect((await postSigned(JSON.stringify(event))).status).toBe(200);
    await quiet();
    expect(turns).toBe(turnsBefore);
  });

  it('honours a 429 Retry-After from chat.postMessage and then delivers', async () => {
    let calls = 0;
    fake.on('POST', '/chat.postMessage', () => {
      calls += 1;
      return calls === 1
        ? { status: 429, headers: { 'retry-after': '1' }, body: { ok: false, error: 'ratelimited' } }
        : undefined;
    });
    const before = fake.posted().length;
    await postSigned(JSON.stringify(slackMessageEvent({ eventId: 'Ev08', text: 'hello', channel: 'D0808' })));
    const second = await fake.waitFor('/chat.postMessage', before + 2, 5000);
    const first = fake.requestsTo('/chat.postMessage')[before]!;
    expect(second.at - first.at).toBeGreaterThanOrEqual(990);
    expect(second.body.channel).toBe('D0808');
  });

  it('records an ok:false refusal as a failed delivery without retrying it', async () => {
    fake.on('POST', '/chat.postMessage', (req) =>
      req.body?.channel === 'D0909' ? { body: { ok: false, error: 'channel_not_found' } } : undefined,
    );
    const before = fake.requestsTo('/chat.postMessage').length;
    await postSigned(JSON.stringify(slackMessageEvent({ eventId: 'Ev09', text: 'hello', channel: 'D0909' })));
    await fake.waitFor('/chat.postMessage', before + 1);
    let failed: { id: string; error: string; attempts: number } | undefined;
    for (let i = 0; i < 50 && !failed; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      const res = await fetch(`${t.url}/v1/deliveries?status=failed&channel=slack`);
      const body = (await res.json()) as { deliveries: { id: string; error: string; attempts: number }[] };
      failed = body.deliveries.find((d) => d.id === 'slack:T0001:Ev09');
    }
    expect(failed?.error).toMatch(/channel_not_found/);
    expect(failed?.attempts).toBe(1);
    expect(fake.requestsTo('/chat.postMessage').length).toBe(before + 1);
  });
});
