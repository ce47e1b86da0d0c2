import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliProcess, spawnCli } from './support/process.ts';

/*
 * A message that fails before its turn runs — the turn lease cannot be taken because Redis went
 * away — is logged and counted as a failed turn, like one that fails inside it: one process
 * (`clawmesh start`, the built CLI) whose Redis is reached through a TCP relay the test cuts.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `turnfail${randomBytes(4).toString('hex')}:`;
let relay: Server;
const sockets = new Set<Socket>();
let app: CliProcess;
let url: string;

/** A TCP relay to Redis; closing it refuses new connections and drops the open ones. */
function startRelay(): Promise<number> {
  const target = new URL(REDIS_URL);
  relay = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve) =>
    relay.listen(0, '127.0.0.1', () => resolve((relay.address() as AddressInfo).port)),
  );
}

beforeAll(async () => {
  const port = await startRelay();
  const redisUrl = new URL(REDIS_URL);
  redisUrl.host = `127.0.0.1:${port}`;
  app = spawnCli(['start'], {
    cwd: mkdtempSync(join(tmpdir(), 'clawmesh-turn-failure-')),
    env: {
      PORT: '0',
      LOG_LEVEL: 'info',
      CLAWMESH_STORE: 'redis',
      REDIS_URL: redisUrl.href,
      CLAWMESH_REDIS__KEY_PREFIX: prefix,
    },
  });
  url = ((await app.waitForLog(/^Clawmesh listening/, 30_000)) as { url: string }).url;
}, 40_000);

afterAll(async () => {
  app?.child.kill('SIGKILL');
  await new Promise<void>((resolve) => relay.close(() => resolve()));
  const redis = createClient({ url: REDIS_URL });
  await redis.connect();
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    if (keys.length > 0) await redis.del(keys);
  }
  await redis.close();
});

const send = (traceId: string) =>
  fetch(`${url}/v1/messages`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
    },
    body: JSON.stringify({ userId: 'lease-user', text: 'hello' }),
  });

describe('a message whose turn lease cannot be taken', () => {
  it('is logged as a failed turn with its request, trace and conversation, and counted', async () => {
    const first = await send(randomBytes(16).toString('hex'));
    expect(first.status).toBe(200);
    const { conversationId } = (await first.json()) as { conversationId: string };

    // Redis goes away: the lease's client finds it offline.
    relay.close();
    for (const socket of sockets) socket.destroy();
    const traceId = randomBytes(16).toString('hex');
    const failed = await send(traceId);
    expect(failed.status).toBe(503);
    const requestId = failed.headers.get('x-request-id');

    const line = await app.waitForLog(/^turn failed$/, 5000);
    expect(line).toMatchObject({
      level: 40,
      requestId,
      traceId,
      conversationId,
      agentId: 'default',
      code: 'UNAVAILABLE',
    });
    expect(String(line.err)).toMatch(/turn lease/);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('clawmesh_turns_total{agent="default",outcome="error"} 1');
  }, 30_000);
});
