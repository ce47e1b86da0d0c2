import type { ChannelMessage } from '../types.ts';

/** The parts of a Slack `message` or `app_mention` event the adapter reads. */
export interface SlackMessageEvent {
  type: string;
  subtype?: string;
  channel?: string;
  channel_type?: string;
  user?: string;
  bot_id?: string;
  app_id?: string;
  text?: string;
  ts?: string;
  thread_ts?: string;
  team?: string;
}

/** The parts of an Events API envelope (`event_callback`) the adapter reads. */
export interface SlackEnvelope {
  type: string;
  team_id?: string;
  api_app_id?: string;
  event_id?: string;
  event_time?: number;
  event?: SlackMessageEvent;
  authorizations?: { user_id?: string; is_bot?: boolean }[];
  challenge?: string;
}

/** Message subtypes that carry a person's text (others are edits, joins, bot posts, …). */
const TEXT_SUBTYPES = new Set([undefined, 'file_share', 'thread_broadcast']);

/**
 * Maps an `event_callback` onto a {@link ChannelMessage}, or `undefined` when it is not a
 * person's message for the bot: bot messages (`bot_id`, `bot_message`, the bot's own user),
 * edits and other subtypes, empty text. Direct messages (`channel_type: im`) come as `message`
 * events; in channels a mention comes as `app_mention`, and a `message` event that mentions
 * the bot is skipped so it is not answered twice. The update id is the `event_id`.
 */
export function normalizeSlackEvent(
  envelope: SlackEnvelope,
  replyInThread: boolean,
): ChannelMessage | undefined {
  const event = envelope.event;
  if (!event || !envelope.event_id || !event.channel || !event.user || typeof event.text !== 'string')
    return undefined;
  if (event.type !== 'message' && event.type !== 'app_mention') return undefined;
  if (event.bot_id || !TEXT_SUBTYPES.has(event.subtype)) return undefined;
  const botUser =
    envelope.authorizations?.find((a) => a.is_bot)?.user_id ?? envelope.authorizations?.[0]?.user_id;
  if (botUser && event.user === botUser) return undefined;
  const isDm = event.type === 'message' && event.channel_type === 'im';
  const mentionTag = botUser ? `<@${botUser}>` : undefined;
  const mentionsBot = mentionTag !== undefined && event.text.includes(mentionTag);
  if (event.type === 'message' && !isDm && mentionsBot) return undefined;
  const mentioned = isDm || event.type === 'app_mention' || mentionsBot;
  const text = (mentionTag ? event.text.split(mentionTag).join(' ') : event.text)
    .replace(/[ \t]{2,}/g, ' ')
    .trim();
  if (!text) return undefined;
  const threadTs = event.thread_ts ?? (replyInThread && !isDm ? event.ts : undefined);
  return {
    updateId: envelope.event_id,
    channel: 'slack',
    account: event.team ?? envelope.team_id ?? 'slack',
    chatId: event.channel,
    userId: event.user,
    text,
    isGroup: !isDm,
    mentioned,
    replyTo: { channel: event.channel, ...(threadTs ? { threadTs } : {}) },
    ...(envelope.event_time ? { sentAt: envelope.event_time * 1000 } : {}),
  };
}
