import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createCallContext } from '../core/context.ts';
import { defineContract } from '../core/contract.ts';
import { randomHex } from '../core/ids.ts';
import { rejection } from './conformance.ts';
import { createNatsTransport, subjectOf } from './nats.ts';

/*
 * Liveness over NATS: a call whose instance dies or hangs after taking it fails UNAVAILABLE
 * within `livenessMs`, not at its deadline (the gateway then sends it to a live replica), while
 * a live instance running a long call keeps it alive with progress messages.
 */

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

const slowContract = defineContract({
  name: 'slow',
  version: '1.0.0',
  methods: {
    wait: { input: z.object({ ms: z.number() }), output: z.object({ waited: z.number() }) },
  },
});

describe('nats transport liveness', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of cleanup.splice(0).reverse()) await close();
  });
  const transport = async (options: Omit<Parameters<typeof createNatsTransport>[0], 'servers'>) => {
    const t = await createNatsTransport({ servers: NATS_URL, ...options });
    cleanup.push(() => t.close());
    return t;
  };
  /** A replica that takes calls from the queue group and never answers: a hung or dead process. */
  const hungReplica = async (subjectPrefix: string): Promise<NatsConnection> => {
    const nc = await connect({ servers: NATS_URL });
    cleanup.push(() => nc.close());
    nc.subscribe(subjectOf('slow', 'wait', subjectPrefix), { queue: 'q', callback: () => undefined });
    await nc.flush();
    return nc;
  };

  it('keeps a long call on a live instance going past the liveness window', async () => {
    const subjectPrefix = `live${randomHex(4)}`;
    const server = await transport({ subjectPrefix });
    await server.serve(slowContract, {
      wait: async ({ ms }) => {
        await new Promise((resolve) => setTimeout(resolve, ms));
        return { waited: ms };
      },
    });
    const client = (await transport({ subjectPrefix, livenessMs: 2000 })).client(slowContract);
    const reply = await client.wait({ ms: 4500 }, createCallContext({ timeoutMs: 20_000 }));
    expect(reply).toEqual({ waited: 4500 });
  }, 15_000);

  it('fails a call its instance stopped answering UNAVAILABLE after livenessMs, not at the deadline', async () => {
    const subjectPrefix = `live${randomHex(4)}`;
    await hungReplica(subjectPrefix);
    const client = (await transport({ subjectPrefix, livenessMs: 2000 })).client(slowContract);
    const started = Date.now();
    const error = await rejection(client.wait({ ms: 1 }, createCallContext({ timeoutMs: 20_000 })));
    const waited = Date.now() - started;
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toMatch(/stopped answering \(no reply or progress in 2000 ms\)/);
    expect(waited).toBeGreaterThanOrEqual(1900);
    expect(waited).toBeLessThan(10_000);
  }, 15_000);

  it('waits for the deadline alone with livenessMs 0', async () => {
    const subjectPrefix = `live${randomHex(4)}`;
    await hungReplica(subjectPrefix);
    const client = (await transport({ subjectPrefix, livenessMs: 0 })).client(slowContract);
    const started = Date.now();
    const error = await rejection(client.wait({ ms: 1 }, createCallContext({ timeoutMs: 2500 })));
    expect(error.code).toBe('DEADLINE_EXCEEDED');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2400);
  }, 15_000);

  it('refuses a liveness window shorter than two progress intervals', async () => {
    await expect(createNatsTransport({ servers: NATS_URL, livenessMs: 500 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/livenessMs/),
    });
  });
});
