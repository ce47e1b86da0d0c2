import type { z } from 'zod';
import type { SlackConfigSchema } from '../../../config/schema-channels.ts';
import { ClawmeshError } from '../../../core/errors.ts';
import type { Logger } from '../../../observability/logger.ts';
import { sendJson } from '../http.ts';
import { type ChannelAdapter, ChannelSendError, type ReplyTarget } from '../types.ts';
import { normalizeSlackEvent, type SlackEnvelope } from './normalize.ts';
import { verifySlackRequest } from './verify.ts';

/** The Slack section of the config. */
export type SlackConfig = z.infer<typeof SlackConfigSchema>;

/** The Events API path. */
export const SLACK_EVENTS_PATH = '/channels/slack/events';
/** Slack retries a delivery three times within about five minutes; an event id is kept an hour. */
export const SLACK_DEDUPE_TTL_MS = 3600_000;
/** The longest text sent in one `chat.postMessage` (Slack truncates past 40,000 and advises 4,000). */
export const SLACK_TEXT_LIMIT = 4000;

/** `ok:false` errors of the Web API that a later try may not get. */
const RETRYABLE_ERRORS = new Set([
  'ratelimited',
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
]);

/**
 * Creates the Slack Events API adapter: `POST /channels/slack/events` verified with the signing
 * secret (v0, 5-minute window), `url_verification` answered with its challenge, retries
 * (`X-Slack-Retry-Num`) deduplicated by `event_id`, replies with `chat.postMessage`.
 */
export function createSlackAdapter(config: SlackConfig, logger: Logger): ChannelAdapter {
  const { signingSecret, botToken } = config;
  if (!signingSecret || !botToken) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'Slack needs SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN');
  }
  const apiRoot = config.apiRoot.replace(/\/+$/, '');
  return {
    name: 'slack',
    dedupeTtlMs: SLACK_DEDUPE_TTL_MS,
    textLimit: SLACK_TEXT_LIMIT,
    routes: [
      {
        method: 'POST',
        path: SLACK_EVENTS_PATH,
        verify: (request) => verifySlackRequest(request, signingSecret),
        handle(request) {
          const envelope = parseEnvelope(request.rawBody);
          if (envelope.type === 'url_verification') {
            return {
              kind: 'respond',
              response: { status: 200, body: { challenge: envelope.challenge ?? '' } },
            };
          }
          const retry = request.headers['x-slack-retry-num'];
          if (retry !== undefined) {
            logger.info(
              { eventId: envelope.event_id, retry, reason: request.headers['x-slack-retry-reason'] },
              'slack retried an event delivery',
            );
          }
          const message =
            envelope.type === 'event_callback'
              ? normalizeSlackEvent(envelope, config.replyInThread)
              : undefined;
          return message
            ? { kind: 'accept', messages: [message] }
            : { kind: 'respond', response: { status: 200, body: { ok: true } } };
        },
      },
    ],
    async send(target, text, _part, signal) {
      const { channel, threadTs } = readTarget(target);
      const answer = (await sendJson(
        `${apiRoot}/chat.postMessage`,
        { channel, text, ...(threadTs ? { thread_ts: threadTs } : {}) },
        { what: 'slack chat.postMessage', headers: { authorization: `Bearer ${botToken}` }, signal },
      )) as { ok?: boolean; error?: string } | undefined;
      if (answer?.ok === true) return;
      const error = answer?.error ?? 'no ok in the answer';
      throw new ChannelSendError(`slack chat.postMessage: ${error}`, {
        status: 200,
        platformCode: error,
        retryable: RETRYABLE_ERRORS.has(error),
      });
    },
  };
}

function parseEnvelope(raw: Buffer): SlackEnvelope {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new ClawmeshError('INVALID_ARGUMENT', 'the Slack event is not JSON');
  }
  if (body === null || typeof body !== 'object' || typeof (body as SlackEnvelope).type !== 'string') {
    throw new ClawmeshError('INVALID_ARGUMENT', 'the Slack event has no type');
  }
  return body as SlackEnvelope;
}

function readTarget(target: ReplyTarget): { channel: string; threadTs?: string } {
  if (typeof target.channel !== 'string') {
    throw new ChannelSendError('slack reply target has no channel', { retryable: false });
  }
  return {
    channel: target.channel,
    ...(typeof target.threadTs === 'string' ? { threadTs: target.threadTs } : {}),
  };
}
