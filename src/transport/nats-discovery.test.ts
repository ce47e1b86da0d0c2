import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomHex } from '../core/ids.ts';
import { listServices } from './nats-discovery.ts';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/**
 * A NATS peer answering `$SRV.INFO` and `$SRV.STATS` for one instance serving under `prefix`,
 * after `delayMs`: an idle instance (0) or a busy process (its event loop held).
 */
function instance(nc: NatsConnection, prefix: string, delayMs: number) {
  const id = `I${randomHex(8)}`;
  const endpoints = [{ name: 'ping', subject: `${prefix}.svc.ping`, queue_group: 'q' }];
  const common = { name: `svc-${prefix}`, id, version: '1.0.0', metadata: {} };
  const info = { ...common, type: 'io.nats.micro.v1.info_response', description: '', endpoints };
  const stats = {
    ...common,
    type: 'io.nats.micro.v1.stats_response',
    started: new Date().toISOString(),
    endpoints: endpoints.map((e) => ({ ...e, num_requests: 0, num_errors: 0, processing_time: 0 })),
  };
  for (const [verb, body] of [
    ['INFO', info],
    ['STATS', stats],
  ] as const) {
    nc.subscribe(`$SRV.${verb}`, {
      callback: (_err, msg) => {
        setTimeout(() => msg.respond(JSON.stringify(body)), delayMs);
      },
    });
  }
  return id;
}

describe('listServices on a NATS server several deployments share', () => {
  let peers: NatsConnection;
  let asker: NatsConnection;
  beforeAll(async () => {
    [peers, asker] = await Promise.all([connect({ servers: NATS_URL }), connect({ servers: NATS_URL })]);
  });
  afterAll(async () => {
    await Promise.all([peers.close(), asker.close()]);
  });

  it("finds this deployment's busy instance though another deployment's idle ones answered first", async () => {
    const ours = `ours${randomHex(3)}`;
    const theirs = `theirs${randomHex(3)}`;
    instance(peers, theirs, 0);
    const busy = instance(peers, ours, 600);
    await peers.flush();
    const found = await listServices(asker, { subjectPrefix: ours });
    expect(found.map((i) => i.id)).toEqual([busy]);
    expect(found[0]!.started).toBeDefined(); // its STATS too, not only its INFO
  });

  it('ends at once when nothing serves the services protocol under that name', async () => {
    const began = performance.now();
    expect(await listServices(asker, { name: `nobody-${randomHex(4)}` })).toEqual([]);
    expect(performance.now() - began).toBeLessThan(1000);
  });
});
