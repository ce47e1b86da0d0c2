import { createHmac } from 'node:crypto';
import { hexDigestsEqual } from '../secret.ts';
import { ChannelAuthError, type ChannelRequest } from '../types.ts';

/** Slack's replay window: a request whose timestamp is further from now is refused. */
export const SLACK_REPLAY_WINDOW_SECONDS = 5 * 60;

/**
 * Checks a Slack request signed with the app's signing secret (v0): `X-Slack-Signature` must be
 * `v0=` + hex HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:{raw body}`, and the timestamp
 * within five minutes of `now` (seconds). Throws {@link ChannelAuthError}.
 */
export function verifySlackRequest(
  request: Pick<ChannelRequest, 'headers' | 'rawBody'>,
  signingSecret: string,
  now: number = Math.floor(Date.now() / 1000),
): void {
  const timestamp = request.headers['x-slack-request-timestamp'];
  const signature = request.headers['x-slack-signature'];
  if (!timestamp || !signature)
    throw new ChannelAuthError('missing X-Slack-Request-Timestamp or X-Slack-Signature');
  if (!/^\d{1,12}$/.test(timestamp)) throw new ChannelAuthError('malformed X-Slack-Request-Timestamp');
  if (Math.abs(now - Number(timestamp)) > SLACK_REPLAY_WINDOW_SECONDS) {
    throw new ChannelAuthError('X-Slack-Request-Timestamp is outside the 5-minute window');
  }
  if (!signature.startsWith('v0=')) throw new ChannelAuthError('unsupported X-Slack-Signature version');
  const expected = createHmac('sha256', signingSecret)
    .update(`v0:${timestamp}:`)
    .update(request.rawBody)
    .digest('hex');
  if (!hexDigestsEqual(signature.slice(3), expected)) throw new ChannelAuthError('wrong X-Slack-Signature');
}
