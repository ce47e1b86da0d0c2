import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type RedisClientType } from 'redis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRedisPairingStore } from '../gateway/access/pairing-redis.ts';
import { createSqlitePairingStore } from '../gateway/access/pairing-sqlite.ts';
import type { PairingStore } from '../gateway/access/pairing-types.ts';
import { runPairing } from './pairing.ts';

describe('clawmesh pairing', () => {
  let dir: string;
  let path: string;
  let store: PairingStore;
  let out: string[];
  let err: string[];
  const io = { out: (line: string) => out.push(line), err: (line: string) => err.push(line) };
  const run = (...args: string[]) => runPairing(args, { env: { CLAWMESH_SQLITE_PATH: path }, cwd: dir, io });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'clawmesh-pairing-'));
    path = join(dir, 'clawmesh.db');
    // The server's side: the same file the CLI opens.
    store = createSqlitePairingStore({ path });
    out = [];
    err = [];
  });
  afterEach(() => store.close());

  it('approves a code the server issued and lists the sender as approved', async () => {
    const { code } = await store.request('telegram', '1001', { ttlMs: 60_000, userName: 'ada' });
    expect(await run('approve', 'telegram', code)).toBe(0);
    expect(out).toEqual(['approved: telegram user 1001 (ada) may now send direct messages']);
    expect(await store.isApproved('telegram', '1001')).toBe(true);
    out = [];
    expect(await run('list')).toBe(0);
    expect(out[0]).toBe('approved:');
    expect(out[1]).toMatch(/^ {2}telegram {2}1001 \(ada\) {2}since \d{4}-/);
    expect(out[2]).toBe('waiting: none');
  });

  it('lists waiting codes of one channel only', async () => {
    const slack = await store.request('slack', 'U1', { ttlMs: 60_000 });
    await store.request('telegram', '7', { ttlMs: 60_000 });
    expect(await run('list', 'slack')).toBe(0);
    expect(out).toHaveLength(3);
    expect(out[0]).toBe('approved: none');
    expect(out[2]).toContain(slack.code);
  });

  it('exits 1 with a clear error for an unknown code', async () => {
    expect(await run('approve', 'telegram', 'ZZZZZZZZ')).toBe(1);
    expect(err).toEqual([
      'clawmesh pairing: no pairing code "ZZZZZZZZ" on telegram (it may have been used already)',
    ]);
  });

  it('exits 1 with a clear error for an expired code', async () => {
    const { code } = await store.request('slack', 'U2', { ttlMs: 10 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(await run('approve', 'slack', code)).toBe(1);
    expect(err[0]).toMatch(/the pairing code "\w+" on slack has expired/);
  });

  it('exits 1 naming the channels for an unknown channel', async () => {
    expect(await run('approve', 'irc', 'ABCDEFGH')).toBe(1);
    expect(err[0]).toMatch(/unknown channel "irc" \(channels: telegram, slack/);
    expect(await run('list', 'irc')).toBe(1);
  });

  it('revokes an approval, and exits 1 for a sender that was not approved', async () => {
    const { code } = await store.request('telegram', '5', { ttlMs: 60_000 });
    await store.approve('telegram', code);
    expect(await run('revoke', 'telegram', '5')).toBe(0);
    expect(await store.isApproved('telegram', '5')).toBe(false);
    expect(await run('revoke', 'telegram', '5')).toBe(1);
  });

  it('exits 2 with the usage for a missing or unknown action or argument', async () => {
    expect(await run()).toBe(2);
    expect(await run('approve', 'telegram')).toBe(2);
    expect(await run('grant', 'telegram', 'X')).toBe(2);
    expect(err.at(-1)).toMatch(/unknown action "grant"/);
    expect(err[0]).toMatch(/clawmesh pairing approve <channel> <code>/);
  });

  it('exits 1 explaining why when the pairing state lives in memory', async () => {
    const file = join(dir, 'clawmesh.config.yaml');
    writeFileSync(file, 'store:\n  kind: memory\n');
    const code = await runPairing(['list'], { configFile: file, env: {}, cwd: dir, io });
    expect(code).toBe(1);
    expect(err[0]).toMatch(/lives in the server’s memory/);
  });
});

describe('clawmesh pairing with a Redis store', () => {
  const prefix = `h2test:cli-pairing:${randomUUID()}:`;
  const client = createClient({ url: 'redis://127.0.0.1:6379' }) as RedisClientType;
  beforeAll(async () => {
    await client.connect();
  });
  afterAll(async () => {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) {
      if (keys.length > 0) await client.del(keys);
    }
    await client.close();
  });

  it('approves in Redis a code a gateway replica issued, which every replica then lets through', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clawmesh-pairing-'));
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (line: string) => out.push(line), err: (line: string) => err.push(line) };
    // Two gateway replicas, each with its own SQLite file, over one Redis.
    const gatewayA = createRedisPairingStore({ client, prefix });
    const gatewayB = createRedisPairingStore({ client, prefix });
    const { code } = await gatewayA.request('telegram', '1001', { ttlMs: 60_000 });
    const env = {
      CLAWMESH_STORE: 'redis',
      REDIS_URL: 'redis://127.0.0.1:6379',
      CLAWMESH_REDIS__KEY_PREFIX: prefix,
      CLAWMESH_SQLITE_PATH: join(dir, 'cli.db'),
    };
    expect(await runPairing(['approve', 'telegram', code], { env, cwd: dir, io })).toBe(0);
    expect(err).toEqual([]);
    expect(await gatewayB.isApproved('telegram', '1001')).toBe(true);
    expect(await runPairing(['list', 'telegram'], { env, cwd: dir, io })).toBe(0);
    expect(out.at(-3)).toBe('approved:');
  });
});
