import { sendJson } from '../http.ts';
import { ASK_COMMAND_DEFINITION } from './payload.ts';

/** Discord's default REST base URL (`DISCORD_API_ROOT`). */
export const DISCORD_API_ROOT = 'https://discord.com/api/v10';

/** The longest `content` of one Discord message. */
export const DISCORD_TEXT_LIMIT = 2000;

/** Discord asks REST clients to name themselves this way. */
const USER_AGENT = { 'user-agent': 'DiscordBot (https://github.com/clawmesh/clawmesh, 0.1)' };

/** Replies never ping anyone: no `@everyone`, role or user mentions from model output. */
const NO_MENTIONS = { parse: [] as string[] };

/** The two webhook calls that answer an interaction. */
export interface DiscordWebhookClient {
  /** Replaces the deferred "is thinking…" response with `content` (`PATCH …/messages/@original`). */
  editOriginal(token: string, content: string, signal?: AbortSignal): Promise<void>;
  /** Posts a further message in the same interaction (`POST /webhooks/{app}/{token}`). */
  followUp(token: string, content: string, signal?: AbortSignal): Promise<void>;
}

/**
 * A client of the interaction webhooks. Failures throw the pipeline's `ChannelSendError`, a
 * 429 with the wait Discord asked for (`Retry-After`, or the JSON body's `retry_after`).
 */
export function createDiscordWebhookClient(options: {
  applicationId: string;
  apiRoot?: string;
}): DiscordWebhookClient {
  const root = (options.apiRoot ?? DISCORD_API_ROOT).replace(/\/+$/, '');
  const base = (token: string) =>
    `${root}/webhooks/${encodeURIComponent(options.applicationId)}/${encodeURIComponent(token)}`;
  return {
    async editOriginal(token, content, signal) {
      await sendJson(
        `${base(token)}/messages/@original`,
        { content, allowed_mentions: NO_MENTIONS },
        {
          method: 'PATCH',
          headers: USER_AGENT,
          what: 'discord edit original response',
          ...(signal ? { signal } : {}),
        },
      );
    },
    async followUp(token, content, signal) {
      await sendJson(
        base(token),
        { content, allowed_mentions: NO_MENTIONS },
        {
          method: 'POST',
          headers: USER_AGENT,
          what: 'discord follow-up message',
          ...(signal ? { signal } : {}),
        },
      );
    },
  };
}

/** Options of {@link registerDiscordCommands}. */
export interface RegisterCommandsOptions {
  applicationId: string;
  /** The bot token (`DISCORD_BOT_TOKEN`), sent as `Authorization: Bot …`. */
  botToken: string;
  apiRoot?: string;
  /** Register in one server only (instant, handy while testing); global when absent. */
  guildId?: string;
  /** The commands to set; `/ask` by default. Replaces the application's whole command list. */
  commands?: readonly unknown[];
  signal?: AbortSignal;
}

/**
 * Registers the `/ask` slash command: a bulk overwrite (`PUT /applications/{id}/commands`, or
 * `…/guilds/{guild}/commands`), so running it again changes nothing. Returns Discord's answer
 * (the registered commands). Throws `ChannelSendError` when Discord refuses.
 *
 * @example
 * await registerDiscordCommands({ applicationId: env.DISCORD_APPLICATION_ID, botToken: env.DISCORD_BOT_TOKEN });
 */
export async function registerDiscordCommands(options: RegisterCommandsOptions): Promise<unknown> {
  const root = (options.apiRoot ?? DISCORD_API_ROOT).replace(/\/+$/, '');
  const app = encodeURIComponent(options.applicationId);
  const url = options.guildId
    ? `${root}/applications/${app}/guilds/${encodeURIComponent(options.guildId)}/commands`
    : `${root}/applications/${app}/commands`;
  return sendJson(url, options.commands ?? [ASK_COMMAND_DEFINITION], {
    method: 'PUT',
    headers: { ...USER_AGENT, authorization: `Bot ${options.botToken}` },
    what: 'discord register commands',
    ...(options.signal ? { signal: options.signal } : {}),
  });
}
