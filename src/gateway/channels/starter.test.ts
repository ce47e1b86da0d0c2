import { describe, expect, it } from 'vitest';
import { createLogger } from '../../observability/logger.ts';
import { startInBackground } from './starter.ts';
import { type ChannelAdapter, ChannelSendError } from './types.ts';

function adapterFailing(errors: Error[]): { adapter: ChannelAdapter; calls: () => number } {
  let calls = 0;
  const adapter: ChannelAdapter = {
    name: 'fake',
    routes: [],
    dedupeTtlMs: 1000,
    textLimit: 100,
    async send() {},
    async start() {
      const error = errors[calls++];
      if (error) throw error;
    },
  };
  return { adapter, calls: () => calls };
}

function capture() {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
  });
  return { lines, logger };
}

const context = (signal: AbortSignal) => ({
  sink: { accept: async () => undefined },
  logger: capture().logger,
  signal,
});

describe('startInBackground', () => {
  it('tries a start that found no platform again with backoff until it works', async () => {
    const { adapter, calls } = adapterFailing([
      new ChannelSendError('no answer'),
      new ChannelSendError('no answer'),
    ]);
    const { lines, logger } = capture();
    const start = startInBackground(adapter, context(new AbortController().signal), logger, {
      initialDelayMs: 10,
    });
    await expect(start.check()).rejects.toThrow(/^starting: /);
    await start.done;
    expect(start.state).toBe('started');
    expect(calls()).toBe(3);
    await expect(start.check()).resolves.toBeUndefined();
    expect(lines.filter((line) => line.level === 40)).toHaveLength(1);
  });

  it('stops trying on an error a retry cannot fix (a refused token), and says so', async () => {
    const { adapter, calls } = adapterFailing([
      new ChannelSendError('telegram getMe: 401 Unauthorized', { status: 401 }),
    ]);
    const { lines, logger } = capture();
    const start = startInBackground(adapter, context(new AbortController().signal), logger, {
      initialDelayMs: 10,
    });
    await start.done;
    expect(start.state).toBe('failed');
    expect(calls()).toBe(1);
    await expect(start.check()).rejects.toThrow('not started: telegram getMe: 401 Unauthorized');
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 50,
        msg: expect.stringMatching(/^channel fake could not start and will not retry/),
      }),
    );
  });

  it('gives up waiting as soon as the channels stop', async () => {
    const { adapter, calls } = adapterFailing(
      Array.from({ length: 10 }, () => new ChannelSendError('no answer')),
    );
    const stop = new AbortController();
    const start = startInBackground(adapter, context(stop.signal), capture().logger, {
      initialDelayMs: 60_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const stopped = Date.now();
    stop.abort();
    await start.done;
    expect(Date.now() - stopped).toBeLessThan(100);
    expect(calls()).toBe(1);
    expect(start.state).toBe('starting');
  });
});
