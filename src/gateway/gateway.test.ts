import { describe, expect, it } from 'vitest';
import { ClawmeshError } from '../core/errors.ts';
import { createMemoryDedupeStore } from '../store/memory.ts';
import { createApiKeyCheck } from './auth.ts';
import { createIdempotency } from './idempotency.ts';
import { createRateLimit } from './rate-limit.ts';

/** What `run` threw; fails the test when it returned. */
function thrown(run: () => unknown): ClawmeshError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ClawmeshError);
    return err as ClawmeshError;
  }
  throw new Error('expected a throw');
}

describe('createApiKeyCheck', () => {
  const keys = ['first-key-123456', 'second-key-654321'];

  it('is disabled with no keys and lets every request through as open', () => {
    const check = createApiKeyCheck([]);
    expect(check.enabled).toBe(false);
    expect(check.verify(undefined)).toBe('open');
    expect(check.verify('Bearer anything')).toBe('open');
  });

  it('rejects a request without an Authorization header with UNAUTHENTICATED', () => {
    const check = createApiKeyCheck(keys);
    expect(check.enabled).toBe(true);
    const err = thrown(() => check.verify(undefined));
    expect(err.code).toBe('UNAUTHENTICATED');
    expect(err.message).toContain('Bearer');
    expect(err.httpStatus).toBe(401);
  });

  it('rejects a scheme other than Bearer with UNAUTHENTICATED', () => {
    const check = createApiKeyCheck(keys);
    for (const header of ['Basic Zmlyc3Qta2V5LTEyMzQ1Ng==', 'first-key-123456', 'Bearer', 'Bearer a b', '']) {
      expect(thrown(() => check.verify(header)).code).toBe('UNAUTHENTICATED');
    }
  });

  it('rejects an unknown key with UNAUTHENTICATED', () => {
    const check = createApiKeyCheck(keys);
    for (const header of ['Bearer wrong-key-000000', 'Bearer first-key-12345', 'Bearer FIRST-KEY-123456']) {
      const err = thrown(() => check.verify(header));
      expect(err.code).toBe('UNAUTHENTICATED');
      expect(err.message).toBe('invalid API key');
    }
  });

  it('returns a stable id for a right key that does not reveal the key', () => {
    const check = createApiKeyCheck(keys);
    const first = check.verify('Bearer first-key-123456');
    const second = check.verify('Bearer second-key-654321');
    expect(first).toMatch(/^[0-9a-f]{12}$/);
    expect(first).not.toBe(second);
    expect(check.verify('bearer   first-key-123456  ')).toBe(first);
    expect(createApiKeyCheck([...keys].reverse()).verify('Bearer first-key-123456')).toBe(first);
    for (const key of keys) expect(key).not.toContain(first);
  });
});

describe('createRateLimit', () => {
  it('allows points takes, then rejects with RATE_LIMITED and a retry delay', async () => {
    const limit = createRateLimit({ points: 3, durationSeconds: 60 });
    for (let i = 0; i < 3; i += 1) await limit.take('user-1');
    const err = await limit.take('user-1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClawmeshError);
    const limited = err as ClawmeshError;
    expect(limited.code).toBe('RATE_LIMITED');
    expect(limited.retryable).toBe(true);
    expect(limited.message).toContain('3 messages per 60s');
    const retryAfter = limited.details?.retryAfterSeconds as number;
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });

  it('keeps separate keys independent', async () => {
    const limit = createRateLimit({ points: 1, durationSeconds: 60 });
    await limit.take('user-1');
    await expect(limit.take('user-1')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    await expect(limit.take('user-2')).resolves.toBeUndefined();
    await expect(limit.take('user-2')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('never reports a retry delay below one second', async () => {
    const limit = createRateLimit({ points: 1, durationSeconds: 1 });
    await limit.take('k');
    const err = (await limit.take('k').catch((e: unknown) => e)) as ClawmeshError;
    expect(err.details).toEqual({ retryAfterSeconds: 1 });
  });
});

describe('createIdempotency', () => {
  const TTL = 60_000;

  /** A deferred promise the test settles. */
  function gate<T>() {
    let resolve!: (value: T) => void;
    let reject!: (err: unknown) => void;
    const promise = new Promise<T>((r, j) => {
      resolve = r;
      reject = j;
    });
    return { promise, resolve, reject };
  }

  it('runs the work of a new key and returns its value', async () => {
    const idempotency = createIdempotency(createMemoryDedupeStore(), TTL);
    let runs = 0;
    const result = await idempotency.run('key-1', { text: 'hi' }, async () => {
      runs += 1;
      return { reply: 'hello' };
    });
    expect(result).toEqual({ value: { reply: 'hello' }, replayed: false });
    expect(runs).toBe(1);
  });

  it('replays the first reply to a repeat without running the work again', async () => {
    const idempotency = createIdempotency(createMemoryDedupeStore(), TTL);
    let runs = 0;
    const work = async () => {
      runs += 1;
      return { reply: `run ${runs}` };
    };
    await idempotency.run('key-1', { text: 'hi' }, work);
    const repeat = await idempotency.run('key-1', { text: 'hi' }, work);
    expect(repeat).toEqual({ value: { reply: 'run 1' }, replayed: true });
    expect(runs).toBe(1);
  });

  it('lets a repeat that arrives while the first run is in progress share that run', async () => {
    const idempotency = createIdempotency(createMemoryDedupeStore(), TTL);
    let runs = 0;
    const started = gate<void>();
    const release = gate<string>();
    const work = async () => {
      runs += 1;
      started.resolve();
      return release.promise;
    };
    const first = idempotency.run('key-1', { text: 'hi' }, work);
    await started.promise;
    const repeats = [
      idempotency.run('key-1', { text: 'hi' }, work),
      idempotency.run('key-1', { text: 'hi' }, work),
    ];
    release.resolve('the reply');
    expect(await first).toEqual({ value: 'the reply', replayed: false });
    expect(await Promise.all(repeats)).toEqual([
      { value: 'the reply', replayed: true },
      { value: 'the reply', replayed: true },
    ]);
    expect(runs).toBe(1);
  });

  it('waits for the reply of a first run still going in another process over the same store', async () => {
    const store = createMemoryDedupeStore();
    const elsewhere = createIdempotency(store, TTL);
    const here = createIdempotency(store, TTL);
    const release = gate<string>();
    const first = elsewhere.run('key-1', { text: 'hi' }, () => release.promise);
    await new Promise((resolve) => setTimeout(resolve, 10));
    let ran = false;
    const repeat = here.run('key-1', { text: 'hi' }, async () => {
      ran = true;
      return 'again';
    });
    await new Promise((resolve) => setTimeout(resolve, 120));
    release.resolve('the reply');
    expect(await first).toEqual({ value: 'the reply', replayed: false });
    expect(await repeat).toEqual({ value: 'the reply', replayed: true });
    expect(ran).toBe(false);
  });

  it('runs the work itself when the first run in another process fails while a repeat waits', async () => {
    const store = createMemoryDedupeStore();
    const elsewhere = createIdempotency(store, TTL);
    const here = createIdempotency(store, TTL);
    const release = gate<string>();
    const first = elsewhere.run('key-1', { text: 'hi' }, () => release.promise);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const repeat = here.run('key-1', { text: 'hi' }, async () => 'second run');
    release.reject(new ClawmeshError('UNAVAILABLE', 'model down'));
    await expect(first).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(await repeat).toEqual({ value: 'second run', replayed: false });
  });

  it('rejects a repeat with another body once the first run in another process finishes', async () => {
    const store = createMemoryDedupeStore();
    const release = gate<string>();
    const first = createIdempotency(store, TTL).run('key-1', { text: 'hi' }, () => release.promise);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const other = createIdempotency(store, TTL).run('key-1', { text: 'bye' }, async () => 'other');
    release.resolve('done');
    await first;
    await expect(other).rejects.toMatchObject({ code: 'CONFLICT', retryable: false });
  });

  it('rejects a key reused with a different body with CONFLICT', async () => {
    const idempotency = createIdempotency(createMemoryDedupeStore(), TTL);
    let runs = 0;
    const work = async () => {
      runs += 1;
      return 'ok';
    };
    await idempotency.run('key-1', { text: 'hi' }, work);
    await expect(idempotency.run('key-1', { text: 'bye' }, work)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(runs).toBe(1);
  });

  it('rejects a different body with CONFLICT while the first run is in progress', async () => {
    const idempotency = createIdempotency(createMemoryDedupeStore(), TTL);
    const started = gate<void>();
    const release = gate<string>();
    const first = idempotency.run('key-1', { text: 'hi' }, async () => {
      started.resolve();
      return release.promise;
    });
    await started.promise;
    await expect(idempotency.run('key-1', { text: 'bye' }, async () => 'other')).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    release.resolve('done');
    await expect(first).resolves.toEqual({ value: 'done', replayed: false });
  });

  it('releases the key of a failed run so a retry runs the work again', async () => {
    const idempotency = createIdempotency(createMemoryDedupeStore(), TTL);
    let runs = 0;
    const failure = new ClawmeshError('UNAVAILABLE', 'model down');
    await expect(
      idempotency.run('key-1', { text: 'hi' }, async () => {
        runs += 1;
        throw failure;
      }),
    ).rejects.toBe(failure);
    const retry = await idempotency.run('key-1', { text: 'hi' }, async () => {
      runs += 1;
      return 'second time lucky';
    });
    expect(retry).toEqual({ value: 'second time lucky', replayed: false });
    expect(runs).toBe(2);
  });

  it('answers CONFLICT when another process still holds the key after the wait', async () => {
    const store = createMemoryDedupeStore();
    await store.claim('key-1', TTL);
    const idempotency = createIdempotency(store, TTL, TTL, 100);
    let ran = false;
    const err = await idempotency
      .run('key-1', {}, async () => {
        ran = true;
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CONFLICT', retryable: true, details: { retryAfterSeconds: 1 } });
    expect(ran).toBe(false);
  });

  it('replays a reply stored by another instance over the same store', async () => {
    const store = createMemoryDedupeStore();
    await createIdempotency(store, TTL).run('key-1', { text: 'hi' }, async () => ({ reply: 'hello' }));
    let ran = false;
    const replay = await createIdempotency(store, TTL).run('key-1', { text: 'hi' }, async () => {
      ran = true;
      return { reply: 'again' };
    });
    expect(replay).toEqual({ value: { reply: 'hello' }, replayed: true });
    expect(ran).toBe(false);
  });

  it('keeps different keys independent', async () => {
    const idempotency = createIdempotency(createMemoryDedupeStore(), TTL);
    const a = await idempotency.run('key-a', { text: 'hi' }, async () => 'a');
    const b = await idempotency.run('key-b', { text: 'hi' }, async () => 'b');
    expect([a, b]).toEqual([
      { value: 'a', replayed: false },
      { value: 'b', replayed: false },
    ]);
  });
});

describe('createIdempotency, repeats in the same tick', () => {
  it('runs once for repeats that arrive before the first claim resolves', async () => {
    const idem = createIdempotency(createMemoryDedupeStore(), 60_000);
    let runs = 0;
    const work = async () => {
      runs += 1;
      return 'v';
    };
    const results = await Promise.all([idem.run('k', { a: 1 }, work), idem.run('k', { a: 1 }, work)]);
    expect(runs).toBe(1);
    expect(results).toEqual([
      { value: 'v', replayed: false },
      { value: 'v', replayed: true },
    ]);
  });

  it('releases the key when the work throws synchronously', async () => {
    const idem = createIdempotency(createMemoryDedupeStore(), 60_000);
    await expect(
      idem.run('k', {}, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expect(idem.run('k', {}, async () => 'ok')).resolves.toEqual({ value: 'ok', replayed: false });
  });
});
