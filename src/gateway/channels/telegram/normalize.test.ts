import type { Update } from 'grammy/types';
import { describe, expect, it } from 'vitest';
import { normalizeTelegramUpdate } from './normalize.ts';

const bot = { id: 999, username: 'clawbot' };
const from = { id: 7, is_bot: false, first_name: 'Ada', last_name: 'L' };

function update(message: Record<string, unknown>): Update {
  return {
    update_id: 1,
    message: {
      message_id: 5,
      date: 1_700_000_000,
      chat: { id: 7, type: 'private', first_name: 'Ada' },
      from,
      ...message,
    },
  } as unknown as Update;
}
const group = { id: -100, type: 'supergroup', title: 'G' };

describe('normalizeTelegramUpdate', () => {
  it('maps a private text message, the sender and where to reply', () => {
    expect(normalizeTelegramUpdate(update({ text: 'hi' }), bot)).toEqual({
      updateId: '1',
      channel: 'telegram',
      account: '999',
      chatId: '7',
      userId: '7',
      userName: 'Ada L',
      text: 'hi',
      isGroup: false,
      mentioned: true,
      replyTo: { chatId: 7 },
      sentAt: 1_700_000_000_000,
    });
  });

  it('ignores updates without a person’s text', () => {
    expect(normalizeTelegramUpdate({ update_id: 2 } as Update, bot)).toBeUndefined();
    expect(normalizeTelegramUpdate(update({ photo: [] }), bot)).toBeUndefined();
    expect(
      normalizeTelegramUpdate(update({ text: 'x', from: { ...from, is_bot: true } }), bot),
    ).toBeUndefined();
    expect(
      normalizeTelegramUpdate(update({ text: 'x', chat: { id: -5, type: 'channel' } }), bot),
    ).toBeUndefined();
  });

  it('sees a mention, strips it, and replies to the message in its topic', () => {
    const message = normalizeTelegramUpdate(
      update({
        chat: group,
        text: '@ClawBot, what now?',
        entities: [{ type: 'mention', offset: 0, length: 8 }],
        is_topic_message: true,
        message_thread_id: 3,
      }),
      bot,
    );
    expect(message).toMatchObject({
      isGroup: true,
      mentioned: true,
      text: 'what now?',
      chatId: '-100',
      replyTo: { chatId: -100, replyToMessageId: 5, threadId: 3 },
    });
  });

  it('does not take a mention of another bot, or a command for another bot, as its own', () => {
    const other = normalizeTelegramUpdate(
      update({ chat: group, text: '@otherbot hi', entities: [{ type: 'mention', offset: 0, length: 9 }] }),
      bot,
    );
    expect(other?.mentioned).toBe(false);
    const command = normalizeTelegramUpdate(
      update({
        chat: group,
        text: '/ask@otherbot hi',
        entities: [{ type: 'bot_command', offset: 0, length: 13 }],
      }),
      bot,
    );
    expect(command?.mentioned).toBe(false);
  });

  it('takes a command addressed to it, a bare command, a text_mention and a reply as mentions', () => {
    const addressed = normalizeTelegramUpdate(
      update({
        chat: group,
        text: '/ask@clawbot stock?',
        entities: [{ type: 'bot_command', offset: 0, length: 12 }],
      }),
      bot,
    );
    expect(addressed).toMatchObject({ mentioned: true, text: '/ask stock?' });
    const bare = normalizeTelegramUpdate(
      update({ chat: group, text: '/ask stock?', entities: [{ type: 'bot_command', offset: 0, length: 4 }] }),
      bot,
    );
    expect(bare?.mentioned).toBe(true);
    const textMention = normalizeTelegramUpdate(
      update({
        chat: group,
        text: 'Claw hi',
        entities: [
          { type: 'text_mention', offset: 0, length: 4, user: { id: 999, is_bot: true, first_name: 'Claw' } },
        ],
      }),
      bot,
    );
    expect(textMention?.mentioned).toBe(true);
    const reply = normalizeTelegramUpdate(
      update({
        chat: group,
        text: 'and?',
        reply_to_message: { message_id: 1, from: { id: 999, is_bot: true } },
      }),
      bot,
    );
    expect(reply?.mentioned).toBe(true);
  });

  it('keeps line breaks of the text', () => {
    expect(normalizeTelegramUpdate(update({ text: 'line one\nline two' }), bot)?.text).toBe(
      'line one\nline two',
    );
  });
});
