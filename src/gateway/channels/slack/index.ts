import type { ChannelDefinition } from '../types.ts';
import { createSlackAdapter } from './adapter.ts';

/** Slack: on with `SLACK_SIGNING_SECRET` and `SLACK_BOT_TOKEN`. */
export const slackChannel: ChannelDefinition = {
  name: 'slack',
  missing(config) {
    return [
      ...(config.slack.signingSecret ? [] : ['SLACK_SIGNING_SECRET']),
      ...(config.slack.botToken ? [] : ['SLACK_BOT_TOKEN']),
    ];
  },
  access: (config) => config.slack,
  create: ({ config, logger }) => createSlackAdapter(config.slack, logger),
};
