import type { ChannelDefinition } from '../types.ts';

/**
 * Telegram: on with `TELEGRAM_BOT_TOKEN`, plus `TELEGRAM_WEBHOOK_SECRET` in webhook mode (the
 * default; `channels.telegram.mode: polling` needs no public URL). grammY loads only when on.
 */
export const telegramChannel: ChannelDefinition = {
  name: 'telegram',
  missing(config) {
    const telegram = config.telegram;
    return [
      ...(telegram.botToken ? [] : ['TELEGRAM_BOT_TOKEN']),
      ...(telegram.mode === 'webhook' && !telegram.webhookSecret ? ['TELEGRAM_WEBHOOK_SECRET'] : []),
    ];
  },
  access: (config) => config.telegram,
  async create({ config, logger }) {
    const { createTelegramAdapter } = await import('./adapter.ts');
    return createTelegramAdapter(config.telegram, logger);
  },
};
