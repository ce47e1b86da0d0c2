import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../test/support/app.ts';

/*
 * `/readyz` of each role checks what that role depends on — its store, bus, connections and the
 * services it calls over the transport — and names every check with its status and latency.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `ready${randomBytes(4).toString('hex')}`;
const apps: TestApp[] = [];

const role = async (roles: string[]) => {
  const app = await startTestApp({
    roles,
    transport: { kind: 'nats' },
    nats: { subjectPrefix: prefix },
    redis: { url: REDIS_URL, keyPrefix: `${prefix}:` },
    skills: { load: ['inventory'] },
  });
  apps.push(app);
  return app;
};

interface Readiness {
  status: string;
  service: string;
  checks: { name: string; status: string; ok: boolean; latencyMs: number; error?: string }[];
}

async function readyz(app: TestApp): Promise<{ status: number; body: Readiness }> {
  const response = await fetch(`${app.url}/readyz`);
  return { status: response.status, body: (await response.json()) as Readiness };
}

afterAll(async () => {
  for (const app of apps.reverse()) await app.stop();
  const redis = createClient({ url: REDIS_URL });
  await redis.connect();
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
    if (keys.length > 0) await redis.del(keys);
  }
  await redis.close();
});

describe('/readyz per role', () => {
  it('answers 503 naming the service a role calls while it is down, 200 once it answers', async () => {
    const gateway = await role(['gateway']);
    const health = await fetch(`${gateway.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      status: 'ok',
      service: 'clawmesh-gateway',
      roles: ['gateway'],
    });

    const down = await readyz(gateway);
    expect(down.status).toBe(503);
    expect(down.body.status).toBe('not ready');
    expect(down.body.checks.map((c) => c.name)).toEqual([
      'store:sqlite',
      'bus:memory',
      'transport:nats',
      'service:conversation',
    ]);
    const conversationCheck = down.body.checks.find((c) => c.name === 'service:conversation')!;
    expect(conversationCheck).toMatchObject({ status: 'failed', ok: false });
    expect(conversationCheck.error).toMatch(/no|unavailable|responders/i);
    for (const check of down.body.checks) expect(check.latencyMs).toBeGreaterThanOrEqual(0);

    // The conversation role checks the models and each skill it calls.
    const conversation = await role(['conversation']);
    const waiting = await readyz(conversation);
    expect(waiting.status).toBe(503);
    expect(waiting.body.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([
      'service:models',
      'service:skills.inventory',
    ]);

    await role(['models']);
    await role(['skills']);
    const ready = await readyz(conversation);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready', service: 'clawmesh-conversation' });
    expect(ready.body.checks.every((c) => c.status === 'ok')).toBe(true);
    expect((await readyz(gateway)).status).toBe(200);

    // Probes are answers, not errors: the conversation replica counts none however often it is probed.
    for (let i = 0; i < 3; i++) expect((await readyz(gateway)).status).toBe(200);
    const metrics = await (await fetch(`${conversation.url}/metrics`)).text();
    expect(metrics).toMatch(/clawmesh_rpc_server_duration_seconds_count\{[^}]*method="ping"[^}]*\} [1-9]/);
    expect(metrics).not.toMatch(/clawmesh_rpc_server_errors_total\{[^}]*service="conversation"/);
  }, 30_000);

  it('is not ready when a role on the local transport runs without the services it calls', async () => {
    // CLAWMESH_TRANSPORT unset: `clawmesh start gateway conversation` cannot reach models or skills.
    const partial = await startTestApp({
      roles: ['gateway', 'conversation'],
      skills: { load: ['inventory'] },
    });
    apps.push(partial);
    const turn = await partial.post('/v1/messages', { userId: 'u1', text: 'how many red shirts?' });
    expect(turn.status).toBe(503);
    const { status, body } = await readyz(partial);
    expect(status).toBe(503);
    expect(body.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([
      'service:models',
      'service:skills.inventory',
    ]);
    expect(body.checks.find((c) => c.name === 'service:models')!.error).toMatch(
      /no instance of service "models"/,
    );

    // The monolith runs every role: nothing to call, ready.
    const monolith = await startTestApp({ skills: { load: ['inventory'] } });
    apps.push(monolith);
    expect((await readyz(monolith)).body.checks.map((c) => c.name)).toEqual(['store:sqlite', 'bus:memory']);
    expect((await readyz(monolith)).status).toBe(200);
  });
});
