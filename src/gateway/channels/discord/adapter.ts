import type { Logger } from '../../../observability/logger.ts';
import {
  type ChannelAdapter,
  ChannelAuthError,
  type ChannelMessage,
  type ChannelRequest,
  type ChannelResponse,
  ChannelSendError,
  type RouteOutcome,
} from '../types.ts';
import { createDiscordWebhookClient, DISCORD_TEXT_LIMIT, type DiscordWebhookClient } from './api.ts';
import {
  ASK_COMMAND,
  ASK_OPTION,
  type DiscordEvent,
  EPHEMERAL_FLAG,
  InteractionCallbackType,
  InteractionType,
  normalizeInteraction,
  parseInteraction,
  snowflakeTime,
} from './payload.ts';
import { discordPublicKey, verifyDiscordSignature } from './signature.ts';

/** The interactions endpoint path to enter in the Developer Portal. */
export const DISCORD_INTERACTIONS_PATH = '/channels/discord/interactions';

/** Timestamps further than this from the clock are refused (the interaction id dedupe outlives it). */
const REPLAY_WINDOW_SECONDS = 300;
/** Discord does not redeliver interactions, and their tokens live 15 minutes; an hour covers both. */
const DEDUPE_TTL_MS = 60 * 60 * 1000;

/** The settings the adapter runs with: the `channels.discord` section with its secrets present. */
export interface DiscordAdapterOptions {
  publicKey: string;
  applicationId: string;
  apiRoot?: string;
  logger: Logger;
  /** A client to use instead of the HTTP one (tests). */
  client?: DiscordWebhookClient;
  /** The replay window in seconds (`0`: off). */
  replayWindowSeconds?: number;
}

/**
 * The Discord adapter: HTTP interactions at {@link DISCORD_INTERACTIONS_PATH}. A PING gets a PONG;
 * `/ask` is answered at once with a deferred response (type 5, "thinking…"), and the reply then
 * replaces it (`PATCH …/messages/@original`), further parts following as follow-up messages.
 */
export function createDiscordAdapter(options: DiscordAdapterOptions): ChannelAdapter {
  const key = discordPublicKey(options.publicKey);
  const client =
    options.client ??
    createDiscordWebhookClient({
      applicationId: options.applicationId,
      ...(options.apiRoot ? { apiRoot: options.apiRoot } : {}),
    });
  const maxAgeSeconds = options.replayWindowSeconds ?? REPLAY_WINDOW_SECONDS;

  const verify = (request: ChannelRequest) => {
    const valid = verifyDiscordSignature(
      key,
      {
        signature: request.headers['x-signature-ed25519'],
        timestamp: request.headers['x-signature-timestamp'],
        rawBody: request.rawBody,
      },
      { maxAgeSeconds },
    );
    if (!valid) throw new ChannelAuthError('invalid request signature');
  };

  const handle = (request: ChannelRequest): RouteOutcome => {
    const event = normalizeInteraction(parseInteraction(request.rawBody.toString('utf8')));
    return outcomeOf(event, options.applicationId, options.logger);
  };

  return {
    name: 'discord',
    routes: [{ method: 'POST', path: DISCORD_INTERACTIONS_PATH, verify, handle }],
    dedupeTtlMs: DEDUPE_TTL_MS,
    textLimit: DISCORD_TEXT_LIMIT,
    async send(target, text, part, signal) {
      const token = target.token;
      if (typeof token !== 'string' || token === '') {
        throw new ChannelSendError('discord send: the reply target has no interaction token', {
          retryable: false,
        });
      }
      if (part.index === 0) await client.editOriginal(token, text, signal);
      else await client.followUp(token, text, signal);
    },
  };
}

function outcomeOf(event: DiscordEvent, applicationId: string, logger: Logger): RouteOutcome {
  switch (event.kind) {
    case 'ping':
      return respond({ type: InteractionCallbackType.PONG });
    case 'unsupported':
      logger.debug(
        { interactionType: event.type, command: event.command },
        'discord: unsupported interaction',
      );
      if (event.type === InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE) {
        return respond({
          type: InteractionCallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT,
          data: { choices: [] },
        });
      }
      return respond(ephemeral(`I only answer \`/${ASK_COMMAND}\`.`));
    case 'ask': {
      if (event.text === '')
        return respond(ephemeral(`Ask me something: \`/${ASK_COMMAND} ${ASK_OPTION}: …\``));
      const message: ChannelMessage = {
        updateId: event.interactionId,
        channel: 'discord',
        account: applicationId,
        chatId: event.channelId,
        userId: event.userId,
        ...(event.userName ? { userName: event.userName } : {}),
        text: event.text,
        isGroup: event.isGroup,
        // A slash command is addressed to the bot by construction.
        mentioned: true,
        replyTo: { token: event.token, interactionId: event.interactionId },
        sentAt: snowflakeTime(event.interactionId),
        // The deferred response shows "thinking…" until edited: a refusal must edit it too.
        mustAnswer: true,
      };
      return {
        kind: 'accept',
        messages: [message],
        response: json({ type: InteractionCallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE }),
      };
    }
  }
}

function json(body: unknown): ChannelResponse {
  return { status: 200, headers: { 'content-type': 'application/json' }, body };
}

function respond(body: unknown): RouteOutcome {
  return { kind: 'respond', response: json(body) };
}

/** An immediate reply only the user who ran the command sees. */
function ephemeral(content: string) {
  return {
    type: InteractionCallbackType.CHANNEL_MESSAGE_WITH_SOURCE,
    data: { content, flags: EPHEMERAL_FLAG, allowed_mentions: { parse: [] } },
  };
}
