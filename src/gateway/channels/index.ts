import type { ChannelsConfig } from '../../config/schema-channels.ts';
import { discordChannel } from './discord/index.ts';
import { slackChannel } from './slack/index.ts';
import { telegramChannel } from './telegram/index.ts';
import type { ChannelDefinition } from './types.ts';
import { whatsappChannel } from './whatsapp/index.ts';

export type {
  ChannelAdapter,
  ChannelDefinition,
  ChannelFactoryDeps,
  ChannelMessage,
  ChannelRequest,
  ChannelResponse,
  ChannelRoute,
  ChannelSink,
  ChannelStartContext,
  JsonValue,
  ReplyTarget,
  RouteOutcome,
  SendPart,
} from './types.ts';
export { ChannelAuthError, ChannelSendError } from './types.ts';

/**
 * Every messaging channel the gateway can run, in start order. An adapter folder exports one
 * {@link ChannelDefinition} and adds one line here.
 */
export const CHANNELS: readonly ChannelDefinition[] = [
  telegramChannel,
  slackChannel,
  discordChannel,
  whatsappChannel,
];

/** A channel's state for `clawmesh doctor` and logs: on, or off with the variables to set. */
export interface ChannelStatus {
  name: string;
  on: boolean;
  /** The environment variables to set to turn it on (empty when on). */
  missing: string[];
}

/** Which channels are on under `config`, and for those off, what is missing. */
export function channelStatuses(
  config: ChannelsConfig,
  channels: readonly ChannelDefinition[] = CHANNELS,
): ChannelStatus[] {
  return channels.map((channel) => {
    const missing = channel.missing(config);
    return { name: channel.name, on: missing.length === 0, missing };
  });
}
