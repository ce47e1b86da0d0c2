import { describe, expect, it, vi } from 'vitest';
import {
  ask,
  badKey,
  badRequest,
  chainOf,
  ctx,
  FAST,
  failure,
  rateLimited,
  scripted,
  summary,
  unavailable,
} from '../../../test/support/scripted-provider.ts';
import { ClawmeshError } from '../../core/errors.ts';
import { type ChainOptions, createDeploymentChain, createDeploymentPool } from './chain.ts';
import type { Attempt } from './types.ts';

describe('retries', () => {
  it('retries a retryable failure on the same deployment, then answers', async () => {
    const a = scripted('a');
    a.script({ fail: unavailable() }, { fail: unavailable() }, { ok: 'third time' });
    const result = await chainOf(FAST, a).complete(ask, ctx());
    expect(result.response.content).toBe('third time');
    expect(result.fallbackUsed).toBe(false);
    expect(summary(result.attempts)).toEqual(['a:UNAVAILABLE', 'a:UNAVAILABLE', 'a:ok']);
    expect(a.calls.map((c) => c.model)).toEqual(['a-model', 'a-model', 'a-model']);
  });

  it('waits the jittered backoff between tries', async () => {
    // With the jitter's random draw pinned at 0.5, decorrelated jitter's first delay is about 0.9 × base.
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    try {
      const a = scripted('a');
      a.script({ fail: unavailable() }, { ok: 'later' });
      const started = Date.now();
      await chainOf({ retry: { maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 1_000 } }, a).complete(
        ask,
        ctx(),
      );
      const waited = Date.now() - started;
      expect(waited).toBeGreaterThanOrEqual(80);
      expect(waited).toBeLessThan(1_000);
    } finally {
      random.mockRestore();
    }
  });

  it('stops retrying a deployment after maxAttempts and moves on', async () => {
    const a = scripted('a');
    const b = scripted('b');
    a.script({ fail: unavailable() }, { fail: unavailable() }, { fail: unavailable() }, { ok: 'never' });
    const result = await chainOf(FAST, a, b).complete(ask, ctx());
    expect(a.calls).toHaveLength(3);
    expect(result.deployment.id).toBe('b');
    expect(result.fallbackUsed).toBe(true);
  });

  it('never retries a 4xx: one call, then the next deployment', async () => {
    const a = scripted('a');
    const b = scripted('b');
    a.script({ fail: badRequest() });
    const result = await chainOf(FAST, a, b).complete(ask, ctx());
    expect(a.calls).toHaveLength(1);
    expect(summary(result.attempts)).toEqual(['a:INVALID_ARGUMENT', 'b:ok']);
  });

  it('never retries a refused key: one call, then the next deployment', async () => {
    const a = scripted('a');
    const b = scripted('b');
    a.script({ fail: badKey() });
    const result = await chainOf(FAST, a, b).complete(ask, ctx());
    expect(a.calls).toHaveLength(1);
    expect(result.deployment.id).toBe('b');
  });

  it('does not sleep into the deadline: when the backoff would outlast it, moves on at once', async () => {
    // Decorrelated jitter can draw a first delay far below the base (about 0.14 × base for a
    // draw of 0.005): pinned at 0.5, the first delay is about 0.9 × base, past the deadline.
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    try {
      const a = scripted('a');
      const b = scripted('b');
      a.script({ fail: unavailable() });
      const started = Date.now();
      const result = await chainOf(
        { retry: { maxAttempts: 3, baseDelayMs: 5_000, maxDelayMs: 5_000 } },
        a,
        b,
      ).complete(ask, ctx(1_000));
      expect(result.deployment.id).toBe('b');
      expect(a.calls).toHaveLength(1);
      expect(Date.now() - started).toBeLessThan(500);
    } finally {
      random.mockRestore();
    }
  });
});

describe('rate limits', () => {
  it('moves on at once from a 429 and skips that deployment until its Retry-After', async () => {
    let clock = 1_000_000;
    const a = scripted('a');
    const b = scripted('b');
    a.script({ fail: rateLimited(2_000) });
    const chain = chainOf(
      { ...FAST, retry: { maxAttempts: 3, baseDelayMs: 1_000, maxDelayMs: 1_000 }, now: () => clock },
      a,
      b,
    );

    const started = Date.now();
    const first = await chain.complete(ask, ctx());
    expect(Date.now() - started).toBeLessThan(200);
    expect(summary(first.attempts)).toEqual(['a:RATE_LIMITED', 'b:ok']);
    expect(chain.state()[0]).toMatchObject({ deployment: 'a', rateLimitedUntil: 1_002_000 });

    clock += 1_999;
    const second = await chain.complete(ask, ctx());
    expect(summary(second.attempts)).toEqual(['a:rate-limited', 'b:ok']);
    expect(a.calls).toHaveLength(1);

    clock += 1;
    const third = await chain.complete(ask, ctx());
    expect(summary(third.attempts)).toEqual(['a:ok']);
    expect(chain.state()[0]?.rateLimitedUntil).toBeUndefined();
  });

  it('defaults to one second when the 429 names no Retry-After', async () => {
    const clock = 5_000;
    const a = scripted('a');
    a.script({ fail: new ClawmeshError('RATE_LIMITED', 'slow down') });
    const chain = chainOf({ ...FAST, now: () => clock }, a, scripted('b'));
    await chain.complete(ask, ctx());
    expect(chain.state()[0]?.rateLimitedUntil).toBe(6_000);
  });

  it('reports when to come back when every deployment is rate limited', async () => {
    const clock = 0;
    const a = scripted('a');
    const b = scripted('b');
    a.script({ fail: rateLimited(4_000) });
    b.script({ fail: rateLimited(2_500) });
    const err = await failure(chainOf({ ...FAST, now: () => clock }, a, b).complete(ask, ctx()));
    expect([err.code, err.retryable, err.details?.retryAfterSeconds]).toEqual(['UNAVAILABLE', true, 3]);
  });
});

describe('circuit breaker', () => {
  const breakerOptions: ChainOptions = {
    retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    breaker: { failureThreshold: 2, cooldownMs: 60 },
  };

  it('opens after consecutive failures and skips the deployment without calling it', async () => {
    const a = scripted('a');
    const b = scripted('b');
    const changes: string[] = [];
    const chain = createDeploymentChain(
      [
        { id: 'a', provider: a, model: 'm' },
        { id: 'b', provider: b, model: 'm' },
      ],
      breakerOptions,
      { onCircuitChange: (id, state) => changes.push(`${id}:${state}`) },
    );
    a.script({ fail: unavailable() }, { fail: unavailable() });
    await chain.complete(ask, ctx());
    await chain.complete(ask, ctx());
    expect(changes).toEqual(['a:open']);
    expect(chain.state()[0]?.circuit).toBe('open');

    const third = await chain.complete(ask, ctx());
    expect(summary(third.attempts)).toEqual(['a:circuit-open', 'b:ok']);
    expect(a.calls).toHaveLength(2);
  });

  it('does not count 4xx and 429 failures against the circuit', async () => {
    const a = scripted('a');
    a.script(
      { fail: badRequest() },
      { fail: rateLimited(0) },
      { fail: badRequest() },
      { fail: badRequest() },
    );
    const chain = chainOf(breakerOptions, a, scripted('b'));
    for (let i = 0; i < 4; i++) await chain.complete(ask, ctx());
    expect(chain.state()[0]?.circuit).toBe('closed');
  });

  it('after the cooldown lets one probe through while other calls skip, and closes on its success', async () => {
    const a = scripted('a');
    const b = scripted('b');
    const chain = chainOf(breakerOptions, a, b);
    a.script({ fail: unavailable() }, { fail: unavailable() });
    await chain.complete(ask, ctx());
    await chain.complete(ask, ctx());
    expect(chain.state()[0]?.circuit).toBe('open');

    await new Promise((resolve) => setTimeout(resolve, 80));
    a.script({ delayMs: 300, next: { ok: 'probe answer' } });
    const probe = chain.complete(ask, ctx());
    expect(chain.state()[0]?.circuit).toBe('half-open');
    const during = await chain.complete(ask, ctx());
    expect(summary(during.attempts)).toEqual(['a:circuit-open', 'b:ok']);
    expect((await probe).response.content).toBe('probe answer');
    expect(a.calls).toHaveLength(3);
    expect(chain.state()[0]?.circuit).toBe('closed');
  });

  it('reopens when the half-open probe fails', async () => {
    const a = scripted('a');
    const chain = chainOf(breakerOptions, a, scripted('b'));
    a.script({ fail: unavailable() }, { fail: unavailable() }, { fail: unavailable() });
    await chain.complete(ask, ctx());
    await chain.complete(ask, ctx());
    await new Promise((resolve) => setTimeout(resolve, 80));
    const probe = await chain.complete(ask, ctx());
    expect(summary(probe.attempts)).toEqual(['a:UNAVAILABLE', 'b:ok']);
    expect(chain.state()[0]?.circuit).toBe('open');
    const after = await chain.complete(ask, ctx());
    expect(summary(after.attempts)).toEqual(['a:circuit-open', 'b:ok']);
  });

  it('counts only consecutive failures: a success in between resets the count', async () => {
    const a = scripted('a');
    const chain = chainOf(
      { ...breakerOptions, breaker: { failureThreshold: 3, cooldownMs: 60 } },
      a,
      scripted('b'),
    );
    a.script(
      { fail: unavailable() },
      { fail: unavailable() },
      { ok: 'fine' },
      { fail: unavailable() },
      { fail: unavailable() },
    );
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) outcomes.push(...summary((await chain.complete(ask, ctx())).attempts));
    expect(outcomes).toEqual([
      'a:UNAVAILABLE',
      'b:ok',
      'a:UNAVAILABLE',
      'b:ok',
      'a:ok',
      'a:UNAVAILABLE',
      'b:ok',
      'a:UNAVAILABLE',
      'b:ok',
    ]);
    expect(chain.state()[0]?.circuit).toBe('closed');
    a.script({ fail: unavailable() });
    await chain.complete(ask, ctx());
    expect(chain.state()[0]?.circuit).toBe('open');
  });

  it('lets calls already running on a closed circuit finish when another call opens it', async () => {
    const a = scripted('a');
    const chain = chainOf(
      { ...breakerOptions, breaker: { failureThreshold: 1, cooldownMs: 60_000 } },
      a,
      scripted('b'),
    );
    a.script({ delayMs: 50, next: { ok: 'slow answer' } }, { fail: unavailable() });
    const slow = chain.complete(ask, ctx());
    const failing = await chain.complete(ask, ctx());
    expect(summary(failing.attempts)).toEqual(['a:UNAVAILABLE', 'b:ok']);
    expect(chain.state()[0]?.circuit).toBe('open');
    // The slow call started before the circuit opened: it answers, and its success does not close it.
    expect((await slow).response.content).toBe('slow answer');
    expect(chain.state()[0]?.circuit).toBe('open');
  });

  it('shares one breaker per deployment across the chains of a pool', async () => {
    const a = scripted('a');
    const pool = createDeploymentPool(
      [
        { id: 'a', provider: a, model: 'm' },
        { id: 'b', provider: scripted('b'), model: 'm' },
      ],
      breakerOptions,
    );
    const fast = pool.chain(['a', 'b']);
    const capable = pool.chain(['b', 'a']);
    a.script({ fail: unavailable() }, { fail: unavailable() });
    await fast.complete(ask, ctx());
    await fast.complete(ask, ctx());
    expect(capable.state().find((s) => s.deployment === 'a')?.circuit).toBe('open');
    expect(pool.state().map((s) => s.circuit)).toEqual(['open', 'closed']);
  });
});

describe('fallback and exhaustion', () => {
  it('tries the deployments in order and reports each attempt', async () => {
    const a = scripted('a');
    const b = scripted('b');
    const c = scripted('c');
    a.script({ fail: badKey() });
    b.script({ fail: unavailable() }, { fail: unavailable() }, { fail: unavailable() });
    const seen: Attempt[] = [];
    const chain = createDeploymentChain(
      [a, b, c].map((p) => ({ id: p.name, provider: p, model: 'm' })),
      FAST,
      {
        onAttempt: (attempt) => {
          seen.push(attempt);
          throw new Error('a broken observer');
        },
      },
    );
    const result = await chain.complete(ask, ctx());
    expect(result.deployment.id).toBe('c');
    expect(result.fallbackUsed).toBe(true);
    expect(summary(result.attempts)).toEqual([
      'a:UNAVAILABLE',
      'b:UNAVAILABLE',
      'b:UNAVAILABLE',
      'b:UNAVAILABLE',
      'c:ok',
    ]);
    expect(seen).toEqual(result.attempts);
    for (const attempt of result.attempts) expect(attempt.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('fails UNAVAILABLE listing every attempt when every option fails', async () => {
    const a = scripted('a');
    const b = scripted('b');
    a.script(
      { fail: unavailable('a is down') },
      { fail: unavailable('a is down') },
      { fail: unavailable('a is down') },
    );
    b.script({ fail: badKey() });
    const err = await failure(chainOf(FAST, a, b).complete(ask, ctx()));
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(
      /^no deployment answered: a UNAVAILABLE: a is down \(\d+ ms\);.*b UNAVAILABLE: key refused/,
    );
    const attempts = err.details?.attempts as Attempt[];
    expect(summary(attempts)).toEqual(['a:UNAVAILABLE', 'a:UNAVAILABLE', 'a:UNAVAILABLE', 'b:UNAVAILABLE']);
    expect(attempts[0]).toMatchObject({
      deployment: 'a',
      ok: false,
      code: 'UNAVAILABLE',
      message: 'a is down',
    });
  });

  it('marks the exhaustion non-retryable when every failure was the request or configuration', async () => {
    const a = scripted('a');
    const b = scripted('b');
    a.script({ fail: badRequest() });
    b.script({ fail: badKey() });
    const err = await failure(chainOf(FAST, a, b).complete(ask, ctx()));
    expect([err.code, err.retryable]).toEqual(['UNAVAILABLE', false]);
  });
});

describe('a provider that settles at once (the local model)', () => {
  const immediate = (answer: () => Promise<string>, calls: AbortSignal[] = []) => ({
    name: 'now',
    defaultModel: 'm',
    settlesAtOnce: true,
    async complete(_request: unknown, _ctx: unknown, signal?: AbortSignal) {
      if (signal) calls.push(signal);
      return {
        content: await answer(),
        toolCalls: [],
        finishReason: 'stop' as const,
        usage: { inputTokens: 1, outputTokens: 1 },
      };
    },
  });
  const chainWith = (provider: ReturnType<typeof immediate>) =>
    createDeploymentChain([{ id: 'now', provider, model: 'm' }], FAST);

  it('answers through the chain with no attempt timer or controller of its own', async () => {
    const signals: AbortSignal[] = [];
    const result = await chainWith(immediate(async () => 'at once', signals)).complete(ask, ctx());
    expect(result.response.content).toBe('at once');
    // Without a caller's signal the provider gets none: the attempt made no controller for it.
    expect(signals).toEqual([]);
  });

  it('still fails over, retries and reports a failure of its own', async () => {
    let tries = 0;
    const flaky = immediate(async () => {
      tries += 1;
      if (tries === 1) throw new ClawmeshError('UNAVAILABLE', 'first try fails');
      return 'second try';
    });
    const result = await chainWith(flaky).complete(ask, ctx());
    expect(result.response.content).toBe('second try');
    expect(summary(result.attempts)).toEqual(['now:UNAVAILABLE', 'now:ok']);
  });

  it('does not run under a caller that already aborted, nor past the deadline', async () => {
    let ran = false;
    const provider = immediate(async () => {
      ran = true;
      return 'ran';
    });
    const controller = new AbortController();
    controller.abort(new ClawmeshError('UNAVAILABLE', 'the caller left'));
    const aborted = await failure(chainWith(provider).complete(ask, ctx(), undefined, controller.signal));
    expect(aborted.message).toContain('the caller left');
    const late = await failure(chainWith(provider).complete(ask, ctx(0)));
    expect(late.code).toBe('DEADLINE_EXCEEDED');
    expect(ran).toBe(false);
  });
});
