import type { ChannelsConfig } from '../../../config/schema-channels.ts';
import type { ChannelDefinition } from '../types.ts';
import { createDiscordAdapter } from './adapter.ts';

export { createDiscordAdapter, DISCORD_INTERACTIONS_PATH, type DiscordAdapterOptions } from './adapter.ts';
export {
  createDiscordWebhookClient,
  DISCORD_API_ROOT,
  DISCORD_TEXT_LIMIT,
  type DiscordWebhookClient,
  type RegisterCommandsOptions,
  registerDiscordCommands,
} from './api.ts';
export { ASK_COMMAND, ASK_COMMAND_DEFINITION, ASK_OPTION } from './payload.ts';
export { discordPublicKey, verifyDiscordSignature } from './signature.ts';

/** The `channels.discord` config section. */
export type DiscordConfig = ChannelsConfig['discord'];

/**
 * Discord over HTTP interactions. On when `DISCORD_PUBLIC_KEY` and `DISCORD_APPLICATION_ID` are
 * set; `DISCORD_BOT_TOKEN` is needed only to register `/ask` (`registerDiscordCommands`).
 */
export const discordChannel: ChannelDefinition = {
  name: 'discord',
  missing(config) {
    const missing: string[] = [];
    if (!config.discord.publicKey) missing.push('DISCORD_PUBLIC_KEY');
    if (!config.discord.applicationId) missing.push('DISCORD_APPLICATION_ID');
    return missing;
  },
  access: (config) => config.discord,
  create: ({ config, logger }) =>
    createDiscordAdapter({
      publicKey: config.discord.publicKey ?? '',
      applicationId: config.discord.applicationId ?? '',
      apiRoot: config.discord.apiRoot,
      logger,
    }),
};
