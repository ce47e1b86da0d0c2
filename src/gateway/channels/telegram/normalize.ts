import type { Message, MessageEntity, Update } from 'grammy/types';
import { ClawmeshError } from '../../../core/errors.ts';
import type { ChannelMessage } from '../types.ts';

/** The bot, as far as normalizing needs it (from `getMe`). */
export interface TelegramBotIdentity {
  id: number;
  /** Without the `@`; mentions are detected by it. */
  username?: string;
}

/**
 * Maps a Telegram `Update` onto a {@link ChannelMessage}: text messages in private chats, groups
 * and supergroups (channel posts, edits, media without text and service messages give
 * `undefined`). In a group the bot counts as mentioned by an `@username` mention or a
 * `text_mention` of it, a command addressed to it (`/ask@bot`, or a bare `/ask`), or a reply to
 * one of its messages; the mention is removed from the text.
 */
export function normalizeTelegramUpdate(
  update: Update,
  bot: TelegramBotIdentity,
): ChannelMessage | undefined {
  const message = update.message;
  if (!message || typeof message.text !== 'string' || !message.from || message.from.is_bot) return undefined;
  const chat = message.chat;
  if (chat.type !== 'private' && chat.type !== 'group' && chat.type !== 'supergroup') return undefined;
  const isGroup = chat.type !== 'private';
  const mentioned = !isGroup || mentionsBot(message, bot);
  const text = isGroup && bot.username ? stripMention(message.text, bot.username) : message.text;
  const from = message.from;
  return {
    updateId: String(update.update_id),
    channel: 'telegram',
    account: String(bot.id),
    chatId: String(chat.id),
    userId: String(from.id),
    userName: from.username ?? [from.first_name, from.last_name].filter(Boolean).join(' '),
    text: text.trim(),
    isGroup,
    mentioned,
    replyTo: {
      chatId: chat.id,
      ...(isGroup ? { replyToMessageId: message.message_id } : {}),
      ...(message.is_topic_message && message.message_thread_id !== undefined
        ? { threadId: message.message_thread_id }
        : {}),
    },
    sentAt: message.date * 1000,
  };
}

/**
 * {@link normalizeTelegramUpdate} for an update from the wire: one whose fields do not have the
 * Bot API's shapes (a message without its chat, entities that are not a list …) throws
 * `INVALID_ARGUMENT` naming the update instead of a `TypeError`, so the webhook answers 400 and
 * the poller can skip it rather than fetch the same batch forever.
 */
export function readTelegramUpdate(update: Update, bot: TelegramBotIdentity): ChannelMessage | undefined {
  try {
    return normalizeTelegramUpdate(update, bot);
  } catch (err) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `malformed Telegram update ${String(update.update_id)}: ${(err as Error)?.message ?? String(err)}`,
    );
  }
}

function mentionsBot(message: Message, bot: TelegramBotIdentity): boolean {
  if (message.reply_to_message?.from?.id === bot.id) return true;
  const username = bot.username?.toLowerCase();
  return (message.entities ?? []).some((entity) => isMention(entity, message.text!, bot.id, username));
}

function isMention(
  entity: MessageEntity,
  text: string,
  botId: number,
  username: string | undefined,
): boolean {
  const value = text.slice(entity.offset, entity.offset + entity.length).toLowerCase();
  switch (entity.type) {
    case 'mention':
      return username !== undefined && value === `@${username}`;
    case 'text_mention':
      return entity.user.id === botId;
    case 'bot_command': {
      if (entity.offset !== 0) return false;
      const at = value.indexOf('@');
      return at === -1 || (username !== undefined && value.slice(at + 1) === username);
    }
    default:
      return false;
  }
}

/** Removes `@username` (any case) where it stands alone, and a command's `@username` suffix. */
function stripMention(text: string, username: string): string {
  const escaped = username.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text
    .replace(new RegExp(`(^|\\s)@${escaped}(?=$|[\\s,.:;!?])`, 'gi'), '$1')
    .replace(new RegExp(`^(/\\w+)@${escaped}\\b`, 'i'), '$1')
    .replace(/^[\s,.:;!?]+/, '')
    .replace(/[ \t]{2,}/g, ' ');
}
