import { randomUUID } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import { createClient, type RedisClientType } from 'redis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ChannelAccessConfig } from '../../config/schema-channels.ts';
import { ChannelsConfigSchema } from '../../config/schema-channels.ts';
import { createMemoryPairingStore } from './pairing-memory.ts';
import { createPostgresPairingStore } from './pairing-postgres.ts';
import { createRedisPairingStore } from './pairing-redis.ts';
import { createSqlitePairingStore } from './pairing-sqlite.ts';
import { CODE_ALPHABET, CODE_LENGTH, type PairingStore } from './pairing-types.ts';
import { createAccess } from './policy.ts';
import { createChannelRateLimits } from './rate-limits.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function describePairingStore(name: string, make: () => PairingStore) {
  describe(`PairingStore: ${name}`, () => {
    let store: PairingStore;
    beforeEach(() => {
      store = make();
    });
    afterEach(() => store.close());

    it('issues a code of the unambiguous alphabet, and the same live code to the same sender', async () => {
      const first = await store.request('telegram', '42', { ttlMs: 60_000, userName: 'ada' });
      expect(first.created).toBe(true);
      expect(first.code).toHaveLength(CODE_LENGTH);
      for (const char of first.code) expect(CODE_ALPHABET).toContain(char);
      const again = await store.request('telegram', '42', { ttlMs: 60_000 });
      expect(again).toEqual({ code: first.code, expiresAt: first.expiresAt, created: false });
      const other = await store.request('telegram', '43', { ttlMs: 60_000 });
      expect(other.code).not.toBe(first.code);
    });

    it('approves a live code once, case-insensitively, and remembers the sender', async () => {
      const { code } = await store.request('slack', 'U1', { ttlMs: 60_000, userName: 'ada' });
      expect(await store.isApproved('slack', 'U1')).toBe(false);
      const sender = await store.approve('slack', ` ${code.slice(0, 4).toLowerCase()}-${code.slice(4)} `);
      expect(sender).toMatchObject({ channel: 'slack', userId: 'U1', userName: 'ada' });
      expect(await store.isApproved('slack', 'U1')).toBe(true);
      expect(await store.isApproved('telegram', 'U1')).toBe(false);
      await expect(store.approve('slack', code)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('refuses a code of another channel, an unknown code and an expired one', async () => {
      const { code } = await store.request('slack', 'U2', { ttlMs: 60_000 });
      await expect(store.approve('telegram', code)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(store.approve('slack', 'AAAAAAAA')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      const short = await store.request('slack', 'U3', { ttlMs: 20 });
      await sleep(40);
      await expect(store.approve('slack', short.code)).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
      expect(await store.isApproved('slack', 'U3')).toBe(false);
    });

    it('gives an expired sender a new code', async () => {
      const short = await store.request('slack', 'U4', { ttlMs: 20 });
      await sleep(40);
      const fresh = await store.request('slack', 'U4', { ttlMs: 60_000 });
      expect(fresh.created).toBe(true);
      expect(fresh.code).not.toBe(short.code);
    });

    it('caps the live codes of a channel', async () => {
      await store.request('whatsapp', 'a', { ttlMs: 60_000, maxPending: 2 });
      await store.request('whatsapp', 'b', { ttlMs: 60_000, maxPending: 2 });
      await expect(store.request('whatsapp', 'c', { ttlMs: 60_000, maxPending: 2 })).rejects.toMatchObject({
        code: 'RATE_LIMITED',
      });
      await expect(store.request('slack', 'c', { ttlMs: 60_000, maxPending: 2 })).resolves.toMatchObject({
        created: true,
      });
    });

    it('lists approved senders and live codes, per channel, and revokes', async () => {
      const a = await store.request('telegram', '1', { ttlMs: 60_000 });
      await store.request('telegram', '2', { ttlMs: 60_000 });
      await store.request('slack', 'U9', { ttlMs: 60_000 });
      await store.approve('telegram', a.code);
      const telegram = await store.list('telegram');
      expect(telegram.approved.map((s) => s.userId)).toEqual(['1']);
      expect(telegram.pending.map((r) => r.userId)).toEqual(['2']);
      expect((await store.list()).pending.map((r) => r.channel).sort()).toEqual(['slack', 'telegram']);
      expect(await store.revoke('telegram', '1')).toBe(true);
      expect(await store.revoke('telegram', '1')).toBe(false);
      expect(await store.isApproved('telegram', '1')).toBe(false);
    });

    it('rejects a TTL that is not positive with INVALID_ARGUMENT, and calls after close with UNAVAILABLE', async () => {
      await expect(store.request('slack', 'x', { ttlMs: 0 })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      await store.close();
      await expect(store.isApproved('slack', 'x')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    });
  });
}

describePairingStore('memory', () => createMemoryPairingStore());
describePairingStore('sqlite', () => createSqlitePairingStore({ path: ':memory:' }));

describe('PairingStore on PostgreSQL', () => {
  const pool = new pg.Pool({
    connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    max: 4,
  });
  const schema = `h2_pairing_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const fresh = () => ({ pool, schema, tablePrefix: `t${randomUUID().replaceAll('-', '').slice(0, 10)}_` });
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  describePairingStore('postgres', () => createPostgresPairingStore(fresh()));

  it('shares codes and approvals between two gateway replicas, and caps codes across them', async () => {
    const location = fresh();
    const gatewayA = createPostgresPairingStore(location);
    const gatewayB = createPostgresPairingStore(location);
    const issued = await gatewayA.request('telegram', '42', { ttlMs: 60_000 });
    expect(await gatewayB.request('telegram', '42', { ttlMs: 60_000 })).toEqual({
      ...issued,
      created: false,
    });
    await gatewayB.approve('telegram', issued.code);
    expect(await gatewayA.isApproved('telegram', '42')).toBe(true);
    const burst = await Promise.allSettled(
      ['a', 'b', 'c', 'd'].map((user, i) =>
        (i % 2 ? gatewayA : gatewayB).request('slack', user, { ttlMs: 60_000, maxPending: 2 }),
      ),
    );
    expect(burst.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
  });
});

describe('PairingStore on Redis', () => {
  const client = createClient({ url: 'redis://127.0.0.1:6379' }) as RedisClientType;
  const prefix = `h2test:pairing:${randomUUID()}:`;
  beforeAll(async () => {
    await client.connect();
  });
  afterAll(async () => {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) {
      if (keys.length > 0) await client.del(keys);
    }
    await client.close();
  });

  describePairingStore('redis', () =>
    createRedisPairingStore({ client, prefix: `${prefix}${randomUUID()}:` }),
  );

  it('shares codes and approvals between two gateway replicas', async () => {
    const shared = `${prefix}shared:`;
    const gatewayA = createRedisPairingStore({ client, prefix: shared });
    const gatewayB = createRedisPairingStore({ client, prefix: shared });
    const operator = createRedisPairingStore({ client, prefix: shared });
    const issued = await gatewayA.request('telegram', '42', { ttlMs: 60_000 });
    // The sender's next message reaches the other replica: same code, not a second one.
    expect(await gatewayB.request('telegram', '42', { ttlMs: 60_000 })).toEqual({
      ...issued,
      created: false,
    });
    expect((await operator.list('telegram')).pending.map((r) => r.code)).toEqual([issued.code]);
    await operator.approve('telegram', issued.code);
    expect(await gatewayA.isApproved('telegram', '42')).toBe(true);
    expect(await gatewayB.isApproved('telegram', '42')).toBe(true);
    await expect(gatewayB.approve('telegram', issued.code)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

/** The access settings of a channel, from the config's defaults plus `patch`. */
function settings(patch: Record<string, unknown> = {}): ChannelAccessConfig {
  return ChannelsConfigSchema.parse({ telegram: patch }).telegram;
}

describe('createAccess', () => {
  const dm = { channel: 'telegram', userId: 'u1', isGroup: false, mentioned: true };
  const make = (patch: Record<string, unknown> = {}) => {
    const channel = settings(patch);
    const pairing = createMemoryPairingStore();
    const access = createAccess({
      channels: new Map([['telegram', channel]]),
      pairing,
      limits: createChannelRateLimits({ limits: new Map([['telegram', channel.rateLimit]]) }),
    });
    return { access, pairing };
  };

  it('defaults to pairing and requiring a mention in groups', async () => {
    const { access } = make();
    const decision = await access.check(dm);
    expect(decision).toMatchObject({ allowed: false, reason: 'pairing' });
    expect(decision.allowed === false && decision.reply).toMatch(
      /clawmesh pairing approve telegram [A-Z0-9]{8}/,
    );
    expect(await access.check({ ...dm, isGroup: true, mentioned: false })).toEqual({
      allowed: false,
      reason: 'not-mentioned',
    });
    expect(await access.check({ ...dm, isGroup: true, mentioned: true })).toEqual({ allowed: true });
  });

  it('lets an approved sender through under pairing', async () => {
    const { access, pairing } = make();
    const decision = await access.check(dm);
    const code = decision.allowed ? '' : /code: (\w+)/.exec(decision.reply ?? '')![1]!;
    await pairing.approve('telegram', code);
    expect(await access.check(dm)).toEqual({ allowed: true });
  });

  it('refuses a channel it has no settings for', async () => {
    const { access } = make();
    expect(await access.check({ ...dm, channel: 'irc' })).toMatchObject({ allowed: false });
  });

  it('spends no rate-limit points on messages it ignores', async () => {
    const { access } = make({ dmPolicy: 'open', rateLimit: { perUser: { points: 1 } } });
    for (let i = 0; i < 5; i += 1) await access.check({ ...dm, isGroup: true, mentioned: false });
    expect(await access.check(dm)).toEqual({ allowed: true });
    expect(await access.check(dm)).toEqual({ allowed: false, reason: 'rate-limited' });
  });
});

describe('createChannelRateLimits on Redis', () => {
  let redis: RedisClientType;
  const prefix = `clawmesh-test:${randomUUID()}`;
  beforeAll(async () => {
    redis = createClient({ url: 'redis://127.0.0.1:6379' }) as RedisClientType;
    await redis.connect();
  });
  afterAll(async () => {
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) {
      if (keys.length > 0) await redis.del(keys);
    }
    await redis.close();
  });

  it('shares counters between limiters (two gateways) through Redis', async () => {
    const limits = new Map([
      [
        'slack',
        { perUser: { points: 2, durationSeconds: 60 }, perChannel: { points: 100, durationSeconds: 60 } },
      ],
    ]);
    const first = createChannelRateLimits({ limits, redis, keyPrefix: prefix });
    const second = createChannelRateLimits({ limits, redis, keyPrefix: prefix });
    await first.take('slack', 'U1');
    await second.take('slack', 'U1');
    const err = await first.take('slack', 'U1').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'RATE_LIMITED', details: { scope: 'user' } });
    await expect(second.take('slack', 'U2')).resolves.toBeUndefined();
    const keys: string[] = [];
    for await (const batch of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) keys.push(...batch);
    expect(keys.length).toBeGreaterThan(0);
  });

  it('limits the whole channel after the sender', async () => {
    const limits = new Map([
      [
        'slack',
        { perUser: { points: 10, durationSeconds: 60 }, perChannel: { points: 2, durationSeconds: 60 } },
      ],
    ]);
    const limiter = createChannelRateLimits({ limits, redis, keyPrefix: `${prefix}:channel` });
    await limiter.take('slack', 'a');
    await limiter.take('slack', 'b');
    await expect(limiter.take('slack', 'c')).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      details: { scope: 'channel' },
    });
  });

  it('counts in the process while Redis does not answer, and says so', async () => {
    // A proxy to the real Redis that can stop passing anything on, as a hung Redis would.
    let frozen = false;
    const proxy = net.createServer((client) => {
      const upstream = net.connect(6379, '127.0.0.1');
      client.on('data', (chunk) => frozen || upstream.write(chunk));
      upstream.on('data', (chunk) => frozen || client.write(chunk));
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const port = (proxy.address() as net.AddressInfo).port;
    const viaProxy = createClient({ url: `redis://127.0.0.1:${port}` }) as RedisClientType;
    await viaProxy.connect();
    const failures: string[] = [];
    const limits = new Map([
      [
        'slack',
        { perUser: { points: 2, durationSeconds: 60 }, perChannel: { points: 100, durationSeconds: 60 } },
      ],
    ]);
    const limiter = createChannelRateLimits({
      limits,
      redis: viaProxy,
      keyPrefix: `${prefix}:hung`,
      storeTimeoutMs: 100,
      onStoreFailure: (err) => failures.push(err.message),
    });
    await limiter.take('slack', 'U1');
    expect(failures).toEqual([]);

    frozen = true;
    const started = performance.now();
    await limiter.take('slack', 'U9');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(failures[0]).toMatch(/did not answer within 100 ms/);
    // The process's own counters still hold the limit.
    await limiter.take('slack', 'U9');
    await expect(limiter.take('slack', 'U9')).rejects.toMatchObject({ code: 'RATE_LIMITED' });

    viaProxy.destroy();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
  });
});
