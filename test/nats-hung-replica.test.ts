import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createCallContext } from '../src/core/context.ts';
import { type CallMiddleware, defineContract } from '../src/core/contract.ts';
import { randomHex } from '../src/core/ids.ts';
import { conversationFailover } from '../src/gateway/failover.ts';
import { createNatsTransport } from '../src/transport/nats.ts';
import { startFreezingRelay } from './support/freezing-relay.ts';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const NATS_PORT = Number(new URL(NATS_URL).port || 4222);

describe('a hung conversation replica over NATS', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of cleanup.splice(0).reverse()) await close();
  });

  it('is not picked again when a timed-out call is retried: the retry goes to a replica that answers', async () => {
    const contract = defineContract({
      name: `h2hung${randomHex(4)}`,
      version: '1.0.0',
      methods: {
        handle: {
          input: z.object({ text: z.string(), messageId: z.string().optional() }),
          output: z.object({ by: z.string() }),
        },
      },
    });
    const relay = await startFreezingRelay(NATS_PORT);
    const open = async (servers: string, name: string) => {
      const transport = await createNatsTransport({ servers, name, subjectPrefix: 'h2hung' });
      cleanup.push(() => transport.close());
      return transport;
    };
    // The replica that will hang reaches NATS through the relay; its connection stays open.
    const hung = await open(`nats://${relay.address}`, 'h2-hung-replica');
    // Cut before the hung replica closes: its drain would wait on the frozen connection.
    cleanup.push(() => relay.close());
    const alive = await open(NATS_URL, 'h2-live-replica');
    await hung.serve(contract, { handle: async () => ({ by: 'hung' }) });
    await alive.serve(contract, { handle: async () => ({ by: 'alive' }) });
    const gateway = await open(NATS_URL, 'h2-gateway');
    relay.freeze();

    let attempts = 0;
    const counted: CallMiddleware = (_service, next) => (method, input, ctx) => {
      attempts += 1;
      return next(method, input, ctx);
    };
    const client = gateway.client(contract, [
      conversationFailover({ attemptTimeoutMs: 300, retryDelayMs: 10 }),
      counted,
    ]);
    // The queue group sends about half of the first attempts to the hung replica; each of those
    // must then succeed at the second attempt (by chance, 1 in 4 would need a third).
    for (let i = 0; i < 20; i++) {
      attempts = 0;
      const reply = await client.handle({ text: `message ${i}` }, createCallContext({ timeoutMs: 2000 }));
      expect(reply).toEqual({ by: 'alive' });
      expect(attempts).toBeLessThanOrEqual(2);
    }
  }, 30_000);
});
