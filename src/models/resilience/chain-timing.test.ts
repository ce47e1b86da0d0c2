import { describe, expect, it } from 'vitest';
import {
  ask,
  badKey,
  badRequest,
  chainOf,
  ctx,
  FAST,
  failure,
  response,
  scripted,
  summary,
} from '../../../test/support/scripted-provider.ts';
import { ClawmeshError } from '../../core/errors.ts';
import type { ModelProvider } from '../types.ts';
import { createDeploymentChain, createDeploymentPool } from './chain.ts';
import type { Attempt } from './types.ts';

describe('timeouts and the deadline', () => {
  it('ends a hung attempt at the deadline with DEADLINE_EXCEEDED and the attempts', async () => {
    const a = scripted('a');
    const b = scripted('b');
    a.script({ hang: true });
    const started = Date.now();
    const err = await failure(chainOf(FAST, a, b).complete(ask, ctx(120)));
    expect(err.code).toBe('DEADLINE_EXCEEDED');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(summary(err.details?.attempts as Attempt[])).toEqual(['a:DEADLINE_EXCEEDED']);
    expect(b.calls).toHaveLength(0);
  });

  it('ends an attempt at the call timeout, even from a provider that ignores its signal, and moves on', async () => {
    const a = scripted('a');
    const b = scripted('b');
    a.script({ deaf: true });
    const started = Date.now();
    const result = await chainOf(
      { ...FAST, retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 }, callTimeoutMs: 60 },
      a,
      b,
    ).complete(ask, ctx());
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(result.deployment.id).toBe('b');
    expect(result.attempts[0]).toMatchObject({ deployment: 'a', code: 'UNAVAILABLE' });
    expect(result.attempts[0]?.message).toMatch(/no complete answer within 60 ms/);
    expect(a.calls[0]?.signal?.aborted).toBe(true);
  });

  it('passes the connect and call timeouts to the provider', async () => {
    const seen: unknown[] = [];
    const provider: ModelProvider = {
      name: 'p',
      defaultModel: 'm',
      complete: async (_request, _ctx, _signal, options) => {
        seen.push(options);
        return response('ok');
      },
    };
    await createDeploymentChain([{ id: 'p', provider, model: 'm' }], {
      connectTimeoutMs: 1234,
      callTimeoutMs: 5678,
    }).complete(ask, ctx());
    expect(seen).toEqual([{ connectTimeoutMs: 1234, callTimeoutMs: 5678 }]);
  });

  it('hands a provider that ends itself at its timeout the caller’s signal, and still settles at the call timeout', async () => {
    const signals: Array<AbortSignal | undefined> = [];
    const hung: ModelProvider = {
      name: 'sdk',
      defaultModel: 'm',
      endsAtTimeout: true,
      complete: (_request, _ctx, signal) => {
        signals.push(signal);
        return new Promise(() => undefined);
      },
    };
    const chain = createDeploymentChain([{ id: 'sdk', provider: hung, model: 'm' }], {
      ...FAST,
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      callTimeoutMs: 60,
    });
    const started = Date.now();
    const err = await failure(chain.complete(ask, ctx()));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(err.code).toBe('UNAVAILABLE');
    expect((err.details?.attempts as Attempt[] | undefined)?.[0]?.message).toMatch(
      /no complete answer within 60 ms/,
    );
    // No caller signal: none of the attempt's own either.
    expect(signals).toEqual([undefined]);
    const caller = new AbortController();
    const aborted = failure(chain.complete(ask, ctx(), undefined, caller.signal));
    caller.abort(new ClawmeshError('UNAVAILABLE', 'the caller left', { retryable: false }));
    expect(signals[1]).toBe(caller.signal);
    expect((await aborted).message).toMatch(/the caller left/);
  });

  it('ends a stream with no first token at the first-token timeout and falls back', async () => {
    const a = scripted('a');
    const b = scripted('b');
    a.script({ hang: true });
    b.script({ stream: ['from ', 'b'], end: 'done' });
    const deltas: string[] = [];
    const started = Date.now();
    const result = await chainOf(
      { retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 }, firstTokenTimeoutMs: 60 },
      a,
      b,
    ).complete(ask, ctx(), (text) => deltas.push(text));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(result.attempts[0]?.message).toMatch(/no first token within 60 ms/);
    expect(deltas.join('')).toBe('from b');
    expect(result.firstTokenMs).toBeGreaterThanOrEqual(50);
  });

  it('stops when the caller aborts', async () => {
    const a = scripted('a');
    a.script({ hang: true });
    const controller = new AbortController();
    setTimeout(
      () => controller.abort(new ClawmeshError('UNAVAILABLE', 'client left', { retryable: false })),
      30,
    );
    const err = await failure(
      chainOf(FAST, a, scripted('b')).complete(ask, ctx(), undefined, controller.signal),
    );
    expect(err.message).toBe('client left');
  });
});

describe('streams through the chain', () => {
  it('retries a stream cut before any delta, and delivers the text once', async () => {
    const a = scripted('a');
    a.script({ stream: [], end: 'cut' }, { stream: ['hello ', 'world'], end: 'done' });
    const deltas: string[] = [];
    const result = await chainOf(FAST, a).complete(ask, ctx(), (text) => deltas.push(text));
    expect(deltas).toEqual(['hello ', 'world']);
    expect(result.response.content).toBe('hello world');
    expect(summary(result.attempts)).toEqual(['a:UNAVAILABLE', 'a:ok']);
  });

  it('fails cleanly, without retry or fallback, when a stream breaks after text was delivered', async () => {
    const a = scripted('a');
    const b = scripted('b');
    a.script({ stream: ['partial ', 'answ'], end: 'cut' });
    const deltas: string[] = [];
    const err = await failure(chainOf(FAST, a, b).complete(ask, ctx(), (text) => deltas.push(text)));
    expect(deltas).toEqual(['partial ', 'answ']);
    expect([err.code, err.retryable, err.details?.partial, err.details?.deployment]).toEqual([
      'UNAVAILABLE',
      false,
      true,
      'a',
    ]);
    expect(a.calls).toHaveLength(1);
    expect(b.calls).toHaveLength(0);
  });

  it('streams text events and a done event carrying the result', async () => {
    const a = scripted('a');
    const b = scripted('b');
    a.script({ fail: badKey() });
    b.script({ stream: ['one ', 'two ', 'three'], end: 'done' });
    const texts: string[] = [];
    let done: unknown;
    for await (const event of chainOf(FAST, a, b).stream(ask, ctx())) {
      if (event.type === 'text') texts.push(event.text);
      else done = event.result;
    }
    expect(texts).toEqual(['one ', 'two ', 'three']);
    expect(done).toMatchObject({
      deployment: { id: 'b' },
      fallbackUsed: true,
      response: { content: 'one two three' },
    });
  });

  it('raises the chain error from the stream iterator', async () => {
    const a = scripted('a');
    a.script({ fail: badRequest() });
    const iterate = async () => {
      for await (const _ of chainOf(FAST, a).stream(ask, ctx())) {
        // nothing arrives
      }
    };
    const err = await failure(iterate());
    // The only deployment refused the request itself: the caller's error, with the attempt.
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.details?.attempts).toHaveLength(1);
  });

  it('aborts the upstream when the consumer leaves the stream early', async () => {
    const a = scripted('a');
    a.script({ stream: ['first ', 'second ', 'third'], end: 'done' });
    for await (const event of chainOf(FAST, a).stream(ask, ctx())) {
      if (event.type === 'text') break;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(a.calls[0]?.signal?.aborted).toBe(true);
  });
});

describe('construction', () => {
  const p = scripted('p');

  it('rejects bad options, naming the field', () => {
    expect(() => createDeploymentChain([{ id: 'p', provider: p, model: 'm' }], { callTimeoutMs: 0 })).toThrow(
      /callTimeoutMs/,
    );
    expect(() =>
      createDeploymentChain([{ id: 'p', provider: p, model: 'm' }], {
        retry: { maxAttempts: 1.5, baseDelayMs: 1, maxDelayMs: 2 },
      }),
    ).toThrow(/retry.maxAttempts/);
  });

  it('rejects duplicate ids, a missing model and an empty or unknown chain', () => {
    expect(() =>
      createDeploymentChain([
        { id: 'p', provider: p, model: 'm' },
        { id: 'p', provider: p, model: 'n' },
      ]),
    ).toThrow(/two deployments/);
    expect(() => createDeploymentChain([{ id: 'p', provider: p, model: '' }])).toThrow(/names no model/);
    const pool = createDeploymentPool([{ id: 'p', provider: p, model: 'm' }]);
    expect(() => pool.chain([])).toThrow(ClawmeshError);
    expect(() => pool.chain(['nope'])).toThrow(/no deployment named nope/);
    expect(pool.get('p')?.model).toBe('m');
  });
});
