import type { Api } from 'grammy';
import type { Logger } from '../../../observability/logger.ts';
import type { ChannelMessage, ChannelSink } from '../types.ts';

import { readTelegramUpdate, type TelegramBotIdentity } from './normalize.ts';
import { grammySignal, withTimeout } from './signal.ts';

/** How much longer than its long-polling timeout one `getUpdates` may take before it is given up. */
const GET_UPDATES_GRACE_MS = 15_000;

/** What {@link pollTelegram} needs. */
export interface TelegramPollingOptions {
  api: Api;
  sink: ChannelSink;
  identity: TelegramBotIdentity;
  /** Long-polling timeout of one `getUpdates`, in seconds. */
  timeoutSeconds: number;
  logger: Logger;
  signal: AbortSignal;
}

/**
 * Long polling through grammY's `getUpdates` (not `bot.start`, which would run its own
 * middleware): each batch is handed to the pipeline, and the offset moves past it only once the
 * inbox holds it, so a crash loses nothing (the platform hands the batch out again; dedupe drops
 * what was accepted). Failures back off from 1 s to 30 s. Resolves when `signal` aborts.
 */
export async function pollTelegram(options: TelegramPollingOptions): Promise<void> {
  const { api, sink, signal, logger } = options;
  let offset: number | undefined;
  let failures = 0;
  while (!signal.aborted) {
    try {
      const updates = await withTimeout(
        signal,
        options.timeoutSeconds * 1000 + GET_UPDATES_GRACE_MS,
        (bounded) =>
          api.getUpdates(
            {
              ...(offset !== undefined ? { offset } : {}),
              timeout: options.timeoutSeconds,
              allowed_updates: ['message'],
            },
            grammySignal(bounded),
          ),
      );
      const messages: ChannelMessage[] = [];
      for (const update of updates) {
        try {
          const message = readTelegramUpdate(update, options.identity);
          if (message) messages.push(message);
        } catch (err) {
          // Telegram hands out the same batch until the offset moves past it: skip what cannot be read.
          logger.warn(
            { updateId: update.update_id, err: (err as Error).message },
            'telegram update skipped: it cannot be read',
          );
        }
      }
      if (messages.length > 0) await sink.accept(messages);
      const last = updates.at(-1);
      if (last) offset = last.update_id + 1;
      failures = 0;
    } catch (err) {
      if (signal.aborted) break;
      failures += 1;
      const delay = Math.min(30_000, 1000 * 2 ** (failures - 1));
      logger.warn({ err: (err as Error).message, retryInMs: delay }, 'telegram getUpdates failed');
      await wait(delay, signal);
    }
  }
}

function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
