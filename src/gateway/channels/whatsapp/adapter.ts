import { timingSafeEqual } from 'node:crypto';
import type { Logger } from '../../../observability/logger.ts';
import {
  type ChannelAdapter,
  ChannelAuthError,
  type ChannelMessage,
  type ChannelRequest,
  ChannelSendError,
  type RouteOutcome,
} from '../types.ts';
import { createWhatsAppClient, WHATSAPP_TEXT_LIMIT, type WhatsAppClient } from './api.ts';
import { normalizeWebhook, parseWebhook, type WhatsAppEvent } from './payload.ts';
import { verifyWhatsAppSignature } from './signature.ts';

/** The webhook path to enter in the Meta app's WhatsApp configuration (GET and POST). */
export const WHATSAPP_WEBHOOK_PATH = '/channels/whatsapp/webhook';

/** Meta retries an unanswered notification for up to 7 days; ids are kept a day longer. */
const DEDUPE_TTL_MS = 8 * 24 * 60 * 60 * 1000;
/** What a photo, voice note, video, document, sticker, location or contact card gets. */
export const NON_TEXT_REPLY = 'Sorry, I can only read text messages for now. Please type your question.';
/** A `hub.challenge` worth echoing: printable ASCII, bounded. */
const CHALLENGE = /^[\x21-\x7e]{1,1024}$/;

/** The settings the adapter runs with: the `channels.whatsapp` section with its secrets present. */
export interface WhatsAppAdapterOptions {
  appSecret: string;
  verifyToken: string;
  accessToken: string;
  phoneNumberId: string;
  apiRoot?: string;
  apiVersion?: string;
  logger: Logger;
  /** A client to use instead of the HTTP one (tests). */
  client?: WhatsAppClient;
}

/**
 * The WhatsApp Cloud API adapter. `GET` {@link WHATSAPP_WEBHOOK_PATH} answers Meta's
 * subscription check; `POST` takes signed notifications: text messages (and taps on buttons
 * or list rows) go to the pipeline, status callbacks and other message types are answered 200
 * and ignored. Replies go out through `POST /{version}/{phone-number-id}/messages`.
 */
export function createWhatsAppAdapter(options: WhatsAppAdapterOptions): ChannelAdapter {
  const client =
    options.client ??
    createWhatsAppClient({
      accessToken: options.accessToken,
      phoneNumberId: options.phoneNumberId,
      ...(options.apiRoot ? { apiRoot: options.apiRoot } : {}),
      ...(options.apiVersion ? { apiVersion: options.apiVersion } : {}),
    });
  const { logger } = options;

  const subscribe = (request: ChannelRequest): RouteOutcome => {
    const { query } = request;
    const challenge = query['hub.challenge'];
    const ok =
      query['hub.mode'] === 'subscribe' &&
      sameSecret(query['hub.verify_token'], options.verifyToken) &&
      challenge !== undefined &&
      CHALLENGE.test(challenge);
    if (!ok) {
      logger.warn('whatsapp: webhook verification refused (hub.mode or hub.verify_token)');
      return {
        kind: 'respond',
        response: {
          status: 403,
          body: { error: { code: 'PERMISSION_DENIED', message: 'verification failed' } },
        },
      };
    }
    return {
      kind: 'respond',
      response: { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: challenge },
    };
  };

  const verify = (request: ChannelRequest) => {
    if (
      !verifyWhatsAppSignature(options.appSecret, request.headers['x-hub-signature-256'], request.rawBody)
    ) {
      throw new ChannelAuthError('invalid X-Hub-Signature-256');
    }
  };

  const notify = (request: ChannelRequest): RouteOutcome => {
    const events = normalizeWebhook(parseWebhook(request.rawBody.toString('utf8')));
    const messages: ChannelMessage[] = [];
    for (const event of events) {
      const message = messageOf(event, options.phoneNumberId, logger);
      if (message) messages.push(message);
    }
    if (messages.length === 0) return { kind: 'respond', response: { status: 200, body: { ok: true } } };
    return { kind: 'accept', messages };
  };

  return {
    name: 'whatsapp',
    routes: [
      { method: 'GET', path: WHATSAPP_WEBHOOK_PATH, handle: subscribe },
      { method: 'POST', path: WHATSAPP_WEBHOOK_PATH, verify, handle: notify },
    ],
    dedupeTtlMs: DEDUPE_TTL_MS,
    textLimit: WHATSAPP_TEXT_LIMIT,
    async send(target, text, _part, signal) {
      const to = target.to;
      if (typeof to !== 'string' || to === '') {
        throw new ChannelSendError('whatsapp send: the reply target has no recipient', { retryable: false });
      }
      await client.sendText(to, text, signal);
    },
  };
}

/** The pipeline's message for an event, or `undefined` for one that is only acknowledged. */
function messageOf(event: WhatsAppEvent, phoneNumberId: string, logger: Logger): ChannelMessage | undefined {
  if (event.kind === 'status') return undefined;
  if (event.phoneNumberId !== undefined && event.phoneNumberId !== phoneNumberId) {
    logger.debug(
      { phoneNumberId: event.phoneNumberId },
      'whatsapp: message for another business number ignored',
    );
    return undefined;
  }
  if (event.kind === 'non-text') {
    if (!event.answer) {
      logger.debug({ type: event.type, messageId: event.messageId }, 'whatsapp: message type ignored');
      return undefined;
    }
    // A photo, voice note, sticker…: answered once, politely, without a turn.
    return {
      ...direct(event, phoneNumberId),
      text: `[${event.type}]`,
      fixedReply: NON_TEXT_REPLY,
    };
  }
  return {
    ...direct(event, phoneNumberId),
    ...(event.name ? { userName: event.name } : {}),
    text: event.text,
  };
}

/** The fields every WhatsApp message shares: a one-to-one chat with the sender's number. */
function direct(
  event: { messageId: string; from: string; timestamp?: string },
  phoneNumberId: string,
): Omit<ChannelMessage, 'text'> {
  const sentAt = event.timestamp === undefined ? undefined : Number(event.timestamp) * 1000;
  return {
    updateId: event.messageId,
    channel: 'whatsapp',
    account: phoneNumberId,
    chatId: event.from,
    userId: event.from,
    isGroup: false,
    mentioned: true,
    replyTo: { to: event.from },
    ...(sentAt !== undefined && Number.isFinite(sentAt) ? { sentAt } : {}),
  };
}

/** Compares a secret in constant time (for equal lengths; a length mismatch is simply false). */
function sameSecret(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
