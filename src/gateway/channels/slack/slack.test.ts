import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { normalizeSlackEvent, type SlackEnvelope } from './normalize.ts';
import { verifySlackRequest } from './verify.ts';

const SECRET = 'signing-secret';
const sign = (timestamp: number, body: string) =>
  `v0=${createHmac('sha256', SECRET).update(`v0:${timestamp}:${body}`).digest('hex')}`;

describe('verifySlackRequest', () => {
  const now = 1_700_000_000;
  const body = '{"type":"event_callback"}';
  const request = (headers: Record<string, string>) => ({ headers, rawBody: Buffer.from(body) });

  it('accepts a request signed over its raw body within five minutes', () => {
    for (const skew of [0, -300, 300]) {
      const ts = now + skew;
      expect(() =>
        verifySlackRequest(
          request({ 'x-slack-request-timestamp': String(ts), 'x-slack-signature': sign(ts, body) }),
          SECRET,
          now,
        ),
      ).not.toThrow();
    }
  });

  it('refuses a timestamp outside the window, a malformed one, and a wrong or truncated signature', () => {
    const check = (headers: Record<string, string>) => () =>
      verifySlackRequest(request(headers), SECRET, now);
    expect(
      check({ 'x-slack-request-timestamp': String(now - 301), 'x-slack-signature': sign(now - 301, body) }),
    ).toThrow(/window/);
    expect(check({ 'x-slack-request-timestamp': '1e9', 'x-slack-signature': sign(now, body) })).toThrow(
      /malformed/,
    );
    expect(
      check({ 'x-slack-request-timestamp': String(now), 'x-slack-signature': sign(now, `${body} `) }),
    ).toThrow(/wrong/);
    expect(
      check({ 'x-slack-request-timestamp': String(now), 'x-slack-signature': sign(now, body).slice(0, -2) }),
    ).toThrow(/wrong/);
    expect(
      check({
        'x-slack-request-timestamp': String(now),
        'x-slack-signature': sign(now, body).replace('v0=', 'v1='),
      }),
    ).toThrow(/version/);
    expect(check({ 'x-slack-request-timestamp': String(now) })).toThrow(/missing/);
    const upper = sign(now, body).replace(/[a-f]/, (c) => c.toUpperCase());
    expect(upper).not.toBe(sign(now, body));
    expect(check({ 'x-slack-request-timestamp': String(now), 'x-slack-signature': upper })).toThrow(/wrong/);
  });
});

describe('normalizeSlackEvent', () => {
  const envelope = (event: Record<string, unknown>): SlackEnvelope => ({
    type: 'event_callback',
    team_id: 'T1',
    event_id: 'Ev1',
    event_time: 1_700_000_000,
    authorizations: [{ user_id: 'UBOT', is_bot: true }],
    event: {
      type: 'message',
      channel: 'D1',
      channel_type: 'im',
      user: 'U1',
      text: 'hi',
      ts: '1.000100',
      ...event,
    },
  });

  it('maps a direct message, replying outside a thread', () => {
    expect(normalizeSlackEvent(envelope({}), true)).toEqual({
      updateId: 'Ev1',
      channel: 'slack',
      account: 'T1',
      chatId: 'D1',
      userId: 'U1',
      text: 'hi',
      isGroup: false,
      mentioned: true,
      replyTo: { channel: 'D1' },
      sentAt: 1_700_000_000_000,
    });
  });

  it('replies in the thread of a channel message, or in the channel when configured', () => {
    const mention = envelope({
      type: 'app_mention',
      channel: 'C1',
      channel_type: undefined,
      text: '<@UBOT> hi',
    });
    expect(normalizeSlackEvent(mention, true)).toMatchObject({
      isGroup: true,
      mentioned: true,
      text: 'hi',
      replyTo: { channel: 'C1', threadTs: '1.000100' },
    });
    expect(normalizeSlackEvent(mention, false)?.replyTo).toEqual({ channel: 'C1' });
    const inThread = envelope({ type: 'app_mention', channel: 'C1', text: '<@UBOT> hi', thread_ts: '0.5' });
    expect(normalizeSlackEvent(inThread, false)?.replyTo).toEqual({ channel: 'C1', threadTs: '0.5' });
  });

  it('passes a channel message without a mention as not mentioned', () => {
    expect(normalizeSlackEvent(envelope({ channel: 'C1', channel_type: 'channel' }), true)).toMatchObject({
      isGroup: true,
      mentioned: false,
    });
  });
});
