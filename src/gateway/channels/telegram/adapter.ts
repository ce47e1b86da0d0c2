import { Bot, GrammyError, HttpError } from 'grammy';
import type { Update } from 'grammy/types';
import type { TelegramConfigSchema } from '../../../config/schema-channels.ts';
import { ClawmeshError } from '../../../core/errors.ts';
import type { Logger } from '../../../observability/logger.ts';
import { type ChannelAdapter, type ChannelRoute, ChannelSendError, type ReplyTarget } from '../types.ts';
import { readTelegramUpdate, type TelegramBotIdentity } from './normalize.ts';
import { pollTelegram } from './polling.ts';
import { grammySignal, withTimeout } from './signal.ts';
import { verifyTelegramRequest } from './verify.ts';

/** The Telegram section of the config. */
export type TelegramConfig = import('zod').infer<typeof TelegramConfigSchema>;

/** Telegram's longest message text. */
export const TELEGRAM_TEXT_LIMIT = 4096;
/** Telegram keeps undelivered updates 24 hours, so an update id is remembered that long. */
export const TELEGRAM_DEDUPE_TTL_MS = 24 * 3600_000;
/** The webhook path. */
export const TELEGRAM_WEBHOOK_PATH = '/channels/telegram/webhook';
/**
 * How long a start-time call (`getMe`, `deleteWebhook`, `setWebhook`) may take before the start
 * fails and is tried again later: a Bot API that never answers must not hold it for grammY's 500 s.
 */
export const TELEGRAM_START_CALL_TIMEOUT_MS = 10_000;

/**
 * Creates the Telegram adapter on grammY's `Bot` (its `Api` and client, pointed at `apiRoot`):
 * the webhook route (checked against `X-Telegram-Bot-Api-Secret-Token`) in `webhook` mode, a
 * `getUpdates` loop in `polling` mode; replies with `sendMessage`, typing with `sendChatAction`.
 * The bot's id comes from its token; its username (for mentions in groups) from `getMe` at start.
 */
export function createTelegramAdapter(
  config: TelegramConfig,
  logger: Logger,
  options: { startCallTimeoutMs?: number } = {},
): ChannelAdapter {
  const callTimeoutMs = options.startCallTimeoutMs ?? TELEGRAM_START_CALL_TIMEOUT_MS;
  const token = config.botToken;
  if (!token) throw new ClawmeshError('INVALID_ARGUMENT', 'Telegram needs TELEGRAM_BOT_TOKEN');
  const botId = Number(token.split(':')[0]);
  if (!Number.isSafeInteger(botId)) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'TELEGRAM_BOT_TOKEN does not look like "<bot id>:<secret>"');
  }
  const bot = new Bot(token, { client: { apiRoot: config.apiRoot.replace(/\/+$/, '') } });
  const identity: TelegramBotIdentity = { id: botId };
  let lastInit = 0;

  /** Fetches the bot's username with one getMe (grammY's `init` would retry it until aborted). */
  const fetchIdentity = async (signal?: AbortSignal) => {
    const me = await call('getMe', () =>
      withTimeout(signal, callTimeoutMs, (bounded) => bot.api.getMe(grammySignal(bounded))),
    );
    if (me.username) identity.username = me.username;
  };
  /** From the webhook route: getMe at most every 30 s until it works, never holding the update. */
  const ensureIdentity = () => {
    if (identity.username !== undefined || Date.now() - lastInit < 30_000) return;
    lastInit = Date.now();
    fetchIdentity().catch((err: Error) => {
      logger.debug(
        { err: err.message },
        'telegram getMe failed; mentions in groups are not seen until it works',
      );
    });
  };

  const routes: ChannelRoute[] = [];
  if (config.mode === 'webhook') {
    const secret = config.webhookSecret;
    if (!secret)
      throw new ClawmeshError('INVALID_ARGUMENT', 'Telegram webhook mode needs TELEGRAM_WEBHOOK_SECRET');
    routes.push({
      method: 'POST',
      path: TELEGRAM_WEBHOOK_PATH,
      verify: (request) => verifyTelegramRequest(request, secret),
      async handle(request) {
        const update = parseUpdate(request.rawBody);
        // Never hold the webhook's answer on getMe: mentions use the identity known so far.
        ensureIdentity();
        const message = readTelegramUpdate(update, identity);
        return message
          ? { kind: 'accept', messages: [message] }
          : { kind: 'respond', response: { status: 200, body: { ok: true } } };
      },
    });
  }

  let polling: { controller: AbortController; done: Promise<void> } | undefined;

  return {
    name: 'telegram',
    routes,
    dedupeTtlMs: TELEGRAM_DEDUPE_TTL_MS,
    textLimit: TELEGRAM_TEXT_LIMIT,
    typingIntervalMs: 4000,
    async send(target, text, part, signal) {
      const { chatId, threadId, replyToMessageId } = readTarget(target);
      await call('sendMessage', () =>
        bot.api.sendMessage(
          chatId,
          text,
          {
            ...(threadId !== undefined ? { message_thread_id: threadId } : {}),
            ...(replyToMessageId !== undefined && part.index === 0
              ? { reply_parameters: { message_id: replyToMessageId, allow_sending_without_reply: true } }
              : {}),
          },
          grammySignal(signal),
        ),
      );
    },
    async typing(target, signal) {
      const { chatId, threadId } = readTarget(target);
      await call('sendChatAction', () =>
        bot.api.sendChatAction(
          chatId,
          'typing',
          threadId !== undefined ? { message_thread_id: threadId } : {},
          grammySignal(signal),
        ),
      );
    },
    async start(context) {
      // Each call fails the start when Telegram cannot be reached or refuses it: the runtime
      // runs start in the background and tries again later (see starter.ts).
      if (identity.username === undefined) await fetchIdentity(context.signal);
      if (config.mode === 'polling') {
        // getUpdates is refused while a webhook is set.
        await call('deleteWebhook', () =>
          withTimeout(context.signal, callTimeoutMs, (bounded) =>
            bot.api.deleteWebhook({}, grammySignal(bounded)),
          ),
        );
        const controller = new AbortController();
        if (context.signal.aborted) return;
        context.signal.addEventListener('abort', () => controller.abort(), { once: true });
        const done = pollTelegram({
          api: bot.api,
          sink: context.sink,
          identity,
          timeoutSeconds: config.pollingTimeoutSeconds,
          logger,
          signal: controller.signal,
        });
        polling = { controller, done };
        return;
      }
      if (config.webhookUrl && config.webhookSecret) {
        const { webhookUrl, webhookSecret } = config;
        await call('setWebhook', () =>
          withTimeout(context.signal, callTimeoutMs, (bounded) =>
            bot.api.setWebhook(
              webhookUrl,
              { secret_token: webhookSecret, allowed_updates: ['message'] },
              grammySignal(bounded),
            ),
          ),
        );
        logger.info({ url: config.webhookUrl }, 'telegram webhook set');
      }
    },
    async stop() {
      polling?.controller.abort();
      await polling?.done;
      polling = undefined;
    },
  };
}

function parseUpdate(raw: Buffer): Update {
  let update: unknown;
  try {
    update = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new ClawmeshError('INVALID_ARGUMENT', 'the Telegram update is not JSON');
  }
  if (update === null || typeof update !== 'object' || !Number.isSafeInteger((update as Update).update_id)) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'the Telegram update has no update_id');
  }
  return update as Update;
}

function readTarget(target: ReplyTarget): {
  chatId: number | string;
  threadId?: number;
  replyToMessageId?: number;
} {
  const chatId = target.chatId;
  if (typeof chatId !== 'number' && typeof chatId !== 'string') {
    throw new ChannelSendError('telegram reply target has no chatId', { retryable: false });
  }
  return {
    chatId,
    ...(typeof target.threadId === 'number' ? { threadId: target.threadId } : {}),
    ...(typeof target.replyToMessageId === 'number' ? { replyToMessageId: target.replyToMessageId } : {}),
  };
}

/** The token part of a Bot API URL's path (`/bot123:AA…/getMe`). */
const BOT_PATH = /\/bot[^/\s]+\//g;

/**
 * Runs a Bot API call, mapping grammY's errors onto {@link ChannelSendError}: a refusal with
 * Telegram's code (retryable for 429 and 5xx), no answer with its cause (retryable).
 */
async function call<T>(method: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof GrammyError) {
      const retryAfter = err.parameters?.retry_after;
      throw new ChannelSendError(`telegram ${method}: ${err.error_code} ${err.description}`, {
        status: err.error_code,
        platformCode: String(err.error_code),
        ...(typeof retryAfter === 'number' ? { retryAfterMs: retryAfter * 1000 } : {}),
        cause: err,
      });
    }
    if (err instanceof HttpError) {
      // The cause names the URL, whose path holds the bot token.
      const cause = err.error instanceof Error ? ` (${err.error.message.replace(BOT_PATH, '/bot***/')})` : '';
      throw new ChannelSendError(`telegram ${method}: no answer: ${err.message}${cause}`, { cause: err });
    }
    throw err;
  }
}
