import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAI, startFakeOpenAI } from './support/fake-openai.ts';
import { type CliProcess, spawnCli } from './support/process.ts';
import { deleteRedisKeys } from './support/redis-keys.ts';

/*
 * Turn order across a crash, over NATS with real processes: message A of a conversation is
 * running on a conversation replica (its model call hangs at the fake OpenAI upstream) when the
 * replica is killed with SIGKILL; message B of the same conversation is sent next. The live
 * replica takes the dead one's expired lease, finds A journaled and unanswered, runs it, then B;
 * the gateway's resend of A (once A's replica has sent no progress for `nats.livenessMs`) gets
 * A's answer. The history reads A, B, as the user sent them.
 */

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const API_KEY = 'e2e-order-key-0123';
const prefix = `order${randomBytes(4).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'clawmesh-order-'));

let upstream: FakeOpenAI;
const processes: CliProcess[] = [];

const env = (): Record<string, string> => ({
  PORT: '0',
  CLAWMESH_TRANSPORT: 'nats',
  NATS_URL,
  CLAWMESH_NATS__SUBJECT_PREFIX: prefix,
  CLAWMESH_STORE: 'redis',
  REDIS_URL,
  CLAWMESH_REDIS__KEY_PREFIX: `${prefix}:`,
  CLAWMESH_BUS: 'memory',
  CLAWMESH_AUDIT__ENABLED: 'false',
  // The dead replica's lease expires well before the gateway sends A again: B, waiting for
  // that lease, gets it first, which is the case the journal is for.
  CLAWMESH_STORE__LEASE_TTL_MS: '1500',
  CLAWMESH_GATEWAY__ATTEMPT_TIMEOUT_MS: '10000',
  OPENAI_API_KEY: 'sk-test-order',
  OPENAI_BASE_URL: upstream.url,
  CLAWMESH_API_KEYS: API_KEY,
  LOG_LEVEL: 'info',
});

async function startRole(args: string[]): Promise<{ child: CliProcess; url: string }> {
  const child = spawnCli(['start', ...args], { cwd: dir, env: env() });
  processes.push(child);
  const line = (await child.waitForLog(/listening on/, 30_000)) as { url: string };
  return { child, url: line.url };
}

async function send(gateway: string, text: string): Promise<{ status: number; text?: string }> {
  const response = await fetch(`${gateway}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({ userId: 'order-user', text }),
  });
  const body = (await response.json()) as { text?: string };
  return { status: response.status, ...(body.text !== undefined ? { text: body.text } : {}) };
}

beforeAll(async () => {
  upstream = await startFakeOpenAI();
}, 30_000);

afterAll(async () => {
  for (const child of processes) if (child.child.exitCode === null) child.child.kill('SIGKILL');
  await upstream.close();
  await deleteRedisKeys(REDIS_URL, `${prefix}:*`);
});

describe('a conversation replica killed in the middle of a turn, over NATS', () => {
  it('keeps the conversation in the order its messages were sent', async () => {
    await startRole(['models']);
    await startRole(['skills', '--skills', 'inventory,support']);
    const dying = await startRole(['conversation']);
    const gateway = await startRole(['gateway']);

    // A's model call never returns while its replica lives.
    upstream.enqueue({ type: 'text', content: 'answer to A (never sent)', delayMs: 60_000 });
    const a = send(gateway.url, 'message A');
    while (upstream.requests.length === 0) await new Promise((r) => setTimeout(r, 20));

    await startRole(['conversation']);
    dying.child.child.kill('SIGKILL');
    // Gone from the queue group before B is sent, so B reaches the live replica at once.
    await dying.child.exited;
    await new Promise((r) => setTimeout(r, 300));
    upstream.enqueue({ type: 'text', content: 'answer to A' }, { type: 'text', content: 'answer to B' });
    const killedAt = Date.now();
    const b = await send(gateway.url, 'message B');
    expect(b).toEqual({ status: 200, text: 'answer to B' });
    expect(await a).toEqual({ status: 200, text: 'answer to A' });
    // The gateway noticed that A's replica stopped answering (no progress for nats.livenessMs,
    // 3 s) and sent A again then, well before its attempt timed out (10 s).
    expect(Date.now() - killedAt).toBeLessThan(8000);

    // The model was asked A, then (on the live replica) A again, then B with A in its history.
    const users = upstream.requests.map((request) =>
      (request.body as { messages: { role: string; content: string }[] }).messages
        .filter((m) => m.role === 'user')
        .map((m) => m.content),
    );
    expect(users).toEqual([['message A'], ['message A'], ['message A', 'message B']]);
  }, 120_000);
});
