import { secretsEqual } from '../secret.ts';
import { ChannelAuthError, type ChannelRequest } from '../types.ts';

/** The header Telegram puts the webhook's `secret_token` in. */
export const TELEGRAM_SECRET_HEADER = 'x-telegram-bot-api-secret-token';

/**
 * Checks a Telegram webhook request: `X-Telegram-Bot-Api-Secret-Token` must equal the
 * `secret_token` given to `setWebhook` (compared in constant time). Throws {@link ChannelAuthError}.
 */
export function verifyTelegramRequest(request: Pick<ChannelRequest, 'headers'>, secret: string): void {
  const received = request.headers[TELEGRAM_SECRET_HEADER];
  if (received === undefined) throw new ChannelAuthError(`missing ${TELEGRAM_SECRET_HEADER} header`);
  if (!secretsEqual(received, secret)) throw new ChannelAuthError(`wrong ${TELEGRAM_SECRET_HEADER}`);
}
