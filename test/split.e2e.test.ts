import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliProcess, spawnCli } from './support/process.ts';
import { deleteRedisKeys } from './support/redis-keys.ts';

/*
 * The promise of Clawmesh, end to end: a gateway, two conversation replicas, one skill host per
 * example skill and a models service, each its own OS process, over the real NATS and Redis on
 * 127.0.0.1. 500 messages over 50 conversations are each answered once and in order; then one
 * conversation replica is killed with SIGKILL in the middle of the load, and every accepted
 * message is still answered once.
 */

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const API_KEY = 'e2e-test-key-0123';

const run = randomBytes(4).toString('hex');
const prefix = `e2e${run}`;
const dir = mkdtempSync(join(tmpdir(), 'clawmesh-split-'));
const env: Record<string, string> = {
  PORT: '0',
  CLAWMESH_TRANSPORT: 'nats',
  NATS_URL,
  CLAWMESH_NATS__SUBJECT_PREFIX: prefix,
  CLAWMESH_STORE: 'redis',
  REDIS_URL,
  CLAWMESH_REDIS__KEY_PREFIX: `${prefix}:`,
  CLAWMESH_BUS: 'redis',
  CLAWMESH_AUDIT__ENABLED: 'false',
  // Short enough that a killed replica's conversations move on quickly.
  CLAWMESH_STORE__LEASE_TTL_MS: '1500',
  CLAWMESH_GATEWAY__ATTEMPT_TIMEOUT_MS: '3000',
  CLAWMESH_GATEWAY__RATE_LIMIT__POINTS: '100000',
  LOG_LEVEL: 'info',
};

const processes = new Map<string, CliProcess>();

async function startRole(name: string, args: string[], extra: Record<string, string> = {}): Promise<string> {
  const child = spawnCli(['start', ...args], { cwd: dir, env: { ...env, ...extra } });
  processes.set(name, child);
  const line = (await child.waitForLog(/listening on/, 30_000)) as { url: string };
  return line.url;
}

interface Sent {
  conversationId: string;
  text: string;
  status: number;
  reply?: string;
}

async function send(gateway: string, userId: string, text: string, conversationId?: string): Promise<Sent> {
  const response = await fetch(`${gateway}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({ userId, text, ...(conversationId ? { conversationId } : {}) }),
  });
  const body = (await response.json()) as { conversationId: string; text: string };
  return { conversationId: body.conversationId, text, status: response.status, reply: body.text };
}

/** Sends `perConversation` messages to each of `conversations` users, in order per user, all users at once. */
async function load(
  gateway: string,
  tag: string,
  conversations: number,
  perConversation: number,
  during?: () => void,
) {
  let sent = 0;
  const results = await Promise.all(
    Array.from({ length: conversations }, async (_, c) => {
      const userId = `${tag}-user-${c}`;
      const out: Sent[] = [];
      for (let m = 0; m < perConversation; m++) {
        out.push(await send(gateway, userId, `${tag} message ${m} from user ${c}`));
        if (++sent === Math.floor((conversations * perConversation) / 3)) during?.();
      }
      return out;
    }),
  );
  return results;
}

/** The user and assistant texts stored for a conversation, from Redis through the gateway-less store API. */
async function storedTurns(conversationId: string): Promise<{ role: string; content: string }[]> {
  const redis = createClient({ url: REDIS_URL });
  await redis.connect();
  try {
    const { createRedisConversationStore } = await import('../src/store/redis-conversations.ts');
    const store = createRedisConversationStore({ client: redis as never, prefix: `${prefix}:` });
    const messages = await store.messages(conversationId);
    return messages.filter((m) => m.role === 'user' || (m.role === 'assistant' && m.content !== ''));
  } finally {
    await redis.close();
  }
}

const urls: Record<string, string> = {};

beforeAll(async () => {
  urls.models = await startRole('models', ['models'], { CLAWMESH_API_KEYS: API_KEY });
  urls.inventory = await startRole('skill-inventory', ['skills', '--skills', 'inventory']);
  urls.support = await startRole('skill-support', ['skills', '--skills', 'support']);
  urls.conversationA = await startRole('conversation-a', ['conversation']);
  urls.conversationB = await startRole('conversation-b', ['conversation']);
  urls.gateway = await startRole('gateway', ['gateway'], { CLAWMESH_API_KEYS: API_KEY });
}, 120_000);

afterAll(async () => {
  for (const child of processes.values()) if (child.child.exitCode === null) child.child.kill('SIGKILL');
  await deleteRedisKeys(REDIS_URL, `${prefix}:*`);
});

describe('a split deployment over NATS and Redis', () => {
  it('answers a turn that uses a skill in another process', async () => {
    const result = await fetch(`${urls.gateway}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ userId: 'first', text: 'how many red shirts are in stock?' }),
    });
    expect(result.status).toBe(200);
    const body = (await result.json()) as { toolCalls: { skill: string; ok: boolean }[]; text: string };
    expect(body.toolCalls[0]).toMatchObject({ skill: 'inventory', ok: true });
    for (const url of Object.values(urls)) expect((await fetch(`${url}/readyz`)).status).toBe(200);
  }, 30_000);

  it('answers 500 messages over 50 conversations once each, in order', async () => {
    const results = await load(urls.gateway!, 'steady', 50, 10);
    for (const conversation of results) {
      expect(conversation.map((r) => r.status)).toEqual(Array(10).fill(200));
      const ids = new Set(conversation.map((r) => r.conversationId));
      expect(ids.size).toBe(1);
      const stored = await storedTurns(conversation[0]!.conversationId);
      // One user message and one reply per message, in the order sent.
      expect(stored.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(
        conversation.map((r) => r.text),
      );
      expect(stored.map((m) => m.role)).toEqual(conversation.flatMap(() => ['user', 'assistant']));
    }
  }, 180_000);

  it('answers every accepted message once when a conversation replica is killed mid-load', async () => {
    const victim = processes.get('conversation-a')!;
    const results = await load(urls.gateway!, 'killed', 50, 10, () => victim.child.kill('SIGKILL'));
    expect(victim.child.exitCode ?? victim.child.signalCode).toBeTruthy();
    for (const conversation of results) {
      expect(conversation.map((r) => r.status)).toEqual(Array(10).fill(200));
      const stored = await storedTurns(conversation[0]!.conversationId);
      const users = stored.filter((m) => m.role === 'user').map((m) => m.content);
      // Each message has exactly one turn: no message is lost and none is answered twice.
      expect(users).toEqual(conversation.map((r) => r.text));
      expect(stored.map((m) => m.role)).toEqual(conversation.flatMap(() => ['user', 'assistant']));
    }
  }, 240_000);
});
