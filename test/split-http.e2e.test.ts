import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliProcess, spawnCli } from './support/process.ts';

/*
 * The simplest split, as in a Docker Compose file: each role its own process, calling the
 * others over the `http` transport at the URLs given by `<SERVICE>_SERVICE_URL`, with the
 * conversation role keeping its SQLite store.
 */

const API_KEY = 'http-split-key-0123';
const dir = mkdtempSync(join(tmpdir(), 'clawmesh-http-split-'));
const children: CliProcess[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function startRole(args: string[], env: Record<string, string>): Promise<string> {
  const child = spawnCli(['start', ...args], {
    cwd: dir,
    env: { CLAWMESH_TRANSPORT: 'http', CLAWMESH_AUDIT__ENABLED: 'false', LOG_LEVEL: 'info', ...env },
  });
  children.push(child);
  const line = (await child.waitForLog(/listening on/, 30_000)) as { url: string };
  return line.url;
}

const urls: Record<string, string> = {};

beforeAll(async () => {
  const [models, inventory, support, conversation, gateway] = await Promise.all(
    Array.from({ length: 5 }, () => freePort()),
  );
  const at = (port: number) => `http://127.0.0.1:${port}`;
  const common = {
    MODELS_SERVICE_URL: at(models!),
    SKILLS_INVENTORY_SERVICE_URL: at(inventory!),
    SKILLS_SUPPORT_SERVICE_URL: at(support!),
    CONVERSATION_SERVICE_URL: at(conversation!),
    CLAWMESH_GATEWAY__HOST: '127.0.0.1',
  };
  urls.models = await startRole(['models'], { ...common, PORT: String(models), CLAWMESH_API_KEYS: API_KEY });
  urls.inventory = await startRole(['skills', '--skills', 'inventory'], {
    ...common,
    PORT: String(inventory),
  });
  urls.support = await startRole(['skills', '--skills', 'support'], { ...common, PORT: String(support) });
  urls.conversation = await startRole(['conversation'], {
    ...common,
    PORT: String(conversation),
    CLAWMESH_SQLITE_PATH: join(dir, 'conversation.db'),
  });
  urls.gateway = await startRole(['gateway'], {
    ...common,
    PORT: String(gateway),
    CLAWMESH_API_KEYS: API_KEY,
    CLAWMESH_SQLITE_PATH: join(dir, 'gateway.db'),
  });
}, 90_000);

afterAll(() => {
  for (const child of children) if (child.child.exitCode === null) child.child.kill('SIGKILL');
});

describe('a split deployment over the http transport', () => {
  it('answers a turn whose tool call and model calls cross processes', async () => {
    const response = await fetch(`${urls.gateway}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ userId: 'h1', text: 'how many red shirts are in stock?' }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { text: string; toolCalls: { skill: string; ok: boolean }[] };
    expect(body.toolCalls[0]).toMatchObject({ skill: 'inventory', ok: true });
    expect(body.text).toMatch(/42/);
  }, 30_000);

  it('serves the RPC route, health and readiness on every role', async () => {
    for (const url of Object.values(urls)) {
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
    }
    // A call straight to the conversation role's RPC endpoint, with a passed deadline.
    const rpc = await fetch(`${urls.conversation}/rpc/conversation/handle`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'clawmesh-deadline-ms': '0' },
      body: JSON.stringify({ channel: 'api', userId: 'h2', text: 'hello' }),
    });
    const error = (await rpc.json()) as { error: { code: string } };
    expect(error.error.code).toBe('DEADLINE_EXCEEDED');
  }, 30_000);

  it('answers UNAVAILABLE at once when a skill host is down, and the turn still answers', async () => {
    const support = children[2]!;
    support.child.kill('SIGKILL');
    await support.exited;
    const started = performance.now();
    const response = await fetch(`${urls.gateway}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ userId: 'h3', text: 'how many blue hats are in stock?' }),
    });
    expect(response.status).toBe(200);
    expect(performance.now() - started).toBeLessThan(5000);
  }, 30_000);
});
