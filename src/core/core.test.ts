import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  assertNotExpired,
  type CallContext,
  childContext,
  createCallContext,
  elapsedMs,
  isTraceparent,
  remainingMs,
  roundMs,
  runWithDeadline,
  traceIdOf,
  withContext,
  withTimeout,
} from './context.ts';
import { type ModelRequest, modelsContract } from './contracts/models.ts';
import { ClawmeshError, ERROR_CODES, type ErrorCode, httpStatusOf, isErrorCode } from './errors.ts';
import { newId, newTraceparent, randomHex, sessionConversationId } from './ids.ts';
import { publicServerError } from './public-errors.ts';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const spanOf = (ctx: CallContext) => ctx.traceparent.slice(36, 52);

/** What `run` threw; fails the test when it returned. */
function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('ClawmeshError', () => {
  it('is retryable by default only for UNAVAILABLE and RATE_LIMITED', () => {
    const retryable = ERROR_CODES.filter((code) => new ClawmeshError(code, 'x').retryable);
    expect(retryable).toEqual(['RATE_LIMITED', 'UNAVAILABLE']);
  });

  it('lets the retryable flag be set either way', () => {
    expect(new ClawmeshError('UNAVAILABLE', 'closed', { retryable: false }).retryable).toBe(false);
    expect(new ClawmeshError('INTERNAL', 'flaky', { retryable: true }).retryable).toBe(true);
  });

  it('is an Error with its name, code, message, cause and details', () => {
    const cause = new Error('socket hang up');
    const err = new ClawmeshError('UNAVAILABLE', 'models unreachable', { cause, details: { host: 'a' } });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('ClawmeshError');
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toBe('models unreachable');
    expect(err.cause).toBe(cause);
    expect(err.details).toEqual({ host: 'a' });
    expect('cause' in new ClawmeshError('INTERNAL', 'no cause')).toBe(false);
  });

  it('leaves the cause out of toJSON and JSON.stringify', () => {
    const err = new ClawmeshError('INTERNAL', 'boom', { cause: new Error('secret=hunter2') });
    expect(err.toJSON()).toEqual({ code: 'INTERNAL', message: 'boom', retryable: false });
    expect(JSON.stringify(err)).not.toContain('hunter2');
    expect(JSON.parse(JSON.stringify(err))).toEqual(err.toJSON());
  });

  it('keeps details in toJSON when set', () => {
    const err = new ClawmeshError('RATE_LIMITED', 'slow down', { details: { retryAfterSeconds: 3 } });
    expect(err.toJSON()).toEqual({
      code: 'RATE_LIMITED',
      message: 'slow down',
      retryable: true,
      details: { retryAfterSeconds: 3 },
    });
  });

  it('round-trips through toJSON and fromJSON', () => {
    for (const code of ERROR_CODES) {
      const original = new ClawmeshError(code, `failed with ${code}`, {
        retryable: code === 'INTERNAL',
        details: { field: 'text' },
      });
      const copy = ClawmeshError.fromJSON(JSON.parse(JSON.stringify(original)));
      expect(copy).toBeInstanceOf(ClawmeshError);
      expect(copy.toJSON()).toEqual(original.toJSON());
    }
  });

  it('rebuilds an unknown code as INTERNAL, keeping message and retryable', () => {
    const json = { code: 'TEAPOT' as ErrorCode, message: 'short and stout', retryable: true };
    const err = ClawmeshError.fromJSON(json);
    expect(err.code).toBe('INTERNAL');
    expect(err.message).toBe('short and stout');
    expect(err.retryable).toBe(true);
  });

  it('returns a ClawmeshError from from() unchanged', () => {
    const err = new ClawmeshError('NOT_FOUND', 'no skill');
    expect(ClawmeshError.from(err)).toBe(err);
    expect(ClawmeshError.from(err, 'UNAVAILABLE')).toBe(err);
  });

  it('wraps anything else in from() with the fallback code and the original as cause', () => {
    const cause = new TypeError('x is not a function');
    const wrapped = ClawmeshError.from(cause);
    expect(wrapped.code).toBe('INTERNAL');
    expect(wrapped.message).toBe('x is not a function');
    expect(wrapped.cause).toBe(cause);
    expect(wrapped.retryable).toBe(false);

    const fromString = ClawmeshError.from('connection refused', 'UNAVAILABLE');
    expect(fromString.code).toBe('UNAVAILABLE');
    expect(fromString.message).toBe('connection refused');
    expect(fromString.retryable).toBe(true);
    expect(fromString.cause).toBe('connection refused');
  });

  it('maps every code to its HTTP status', () => {
    const statuses = Object.fromEntries(
      ERROR_CODES.map((code) => [code, new ClawmeshError(code, 'x').httpStatus]),
    );
    expect(statuses).toEqual({
      INVALID_ARGUMENT: 400,
      UNAUTHENTICATED: 401,
      PERMISSION_DENIED: 403,
      NOT_FOUND: 404,
      RATE_LIMITED: 429,
      DEADLINE_EXCEEDED: 504,
      UNAVAILABLE: 503,
      CONFLICT: 409,
      INTERNAL: 500,
    });
    for (const code of ERROR_CODES) expect(httpStatusOf(code)).toBe(statuses[code]);
  });

  it('recognises only the stable codes', () => {
    expect(ERROR_CODES.every(isErrorCode)).toBe(true);
    expect(isErrorCode('internal')).toBe(false);
    expect(isErrorCode('TEAPOT')).toBe(false);
    expect(isErrorCode(404)).toBe(false);
    expect(isErrorCode(undefined)).toBe(false);
  });
});

describe('call context', () => {
  it('gives durations to the microsecond', () => {
    expect(roundMs(0.9497610000000805)).toBe(0.95);
    expect(roundMs(12.3456789)).toBe(12.346);
    const elapsed = elapsedMs(performance.now() - 5.123456);
    expect(elapsed).toBeGreaterThanOrEqual(5.123);
    expect(Math.round(elapsed * 1000) / 1000).toBe(elapsed);
  });

  const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

  it('continues a valid incoming traceparent with the same trace id and a new span id', () => {
    const ctx = createCallContext({ traceparent: incoming });
    expect(ctx.traceparent).toMatch(TRACEPARENT);
    expect(traceIdOf(ctx)).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(spanOf(ctx)).not.toBe('00f067aa0ba902b7');
    expect(ctx.traceparent.endsWith('-01')).toBe(true);
  });

  it('keeps the flags of the incoming traceparent', () => {
    const ctx = createCallContext({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00' });
    expect(ctx.traceparent.endsWith('-00')).toBe(true);
  });

  it('starts a new trace when the incoming traceparent is malformed', () => {
    for (const bad of [
      'garbage',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01',
      '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
      `${incoming}-extra`,
    ]) {
      const ctx = createCallContext({ traceparent: bad });
      expect(ctx.traceparent).toMatch(TRACEPARENT);
      expect(traceIdOf(ctx)).not.toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    }
  });

  it('starts a fresh, sampled trace when none comes in', () => {
    const a = createCallContext();
    const b = createCallContext();
    expect(a.traceparent).toMatch(TRACEPARENT);
    expect(a.traceparent.endsWith('-01')).toBe(true);
    expect(traceIdOf(a)).not.toBe(traceIdOf(b));
    expect(a.requestId).not.toBe(b.requestId);
    expect(a.requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(createCallContext({ requestId: 'given' }).traceparent).toMatch(TRACEPARENT);
    expect(createCallContext({ traceparent: a.traceparent }).requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('sets the deadline to now plus the timeout, 30 s by default', () => {
    const before = Date.now();
    const ctx = createCallContext({ timeoutMs: 1500 });
    const fallback = createCallContext();
    const after = Date.now();
    expect(ctx.deadline).toBeGreaterThanOrEqual(before + 1500);
    expect(ctx.deadline).toBeLessThanOrEqual(after + 1500);
    expect(fallback.deadline).toBeGreaterThanOrEqual(before + 30_000);
    expect(fallback.deadline).toBeLessThanOrEqual(after + 30_000);
  });

  it('keeps the given request id and fields', () => {
    const ctx = createCallContext({
      requestId: 'req-1',
      conversationId: 'c1',
      userId: 'u1',
      channel: 'web',
      agentId: 'a',
    });
    expect(ctx).toMatchObject({
      requestId: 'req-1',
      conversationId: 'c1',
      userId: 'u1',
      channel: 'web',
      agentId: 'a',
    });
  });

  it('gives a child context the same trace, request and deadline with a new span', () => {
    const parent = createCallContext({ traceparent: incoming, requestId: 'req-1', timeoutMs: 5000 });
    const child = childContext(parent, { agentId: 'helper' });
    expect(traceIdOf(child)).toBe(traceIdOf(parent));
    expect(spanOf(child)).not.toBe(spanOf(parent));
    expect(child.traceparent).toMatch(TRACEPARENT);
    expect(child.deadline).toBe(parent.deadline);
    expect(child.requestId).toBe('req-1');
    expect(child.agentId).toBe('helper');
    expect(parent.agentId).toBeUndefined();
  });

  it('copies every field of a context with withContext, replacing only those given', () => {
    const onDelta = () => undefined;
    const ctx = createCallContext({
      requestId: 'req-2',
      conversationId: 'c1',
      userId: 'u1',
      channel: 'api',
      agentId: 'a1',
      onDelta,
    });
    const moved = withContext(ctx, { traceparent: incoming, channel: 'webchat' });
    expect(moved).toEqual({ ...ctx, traceparent: incoming, channel: 'webchat' });
    expect(moved.onDelta).toBe(onDelta);
    expect(ctx.channel).toBe('api');
    const bare = withContext(createCallContext({ requestId: 'req-3' }), {});
    expect(Object.keys(bare).sort()).toEqual(['deadline', 'requestId', 'traceparent']);
  });

  it('uses a traceparent given in the child patch as is', () => {
    const parent = createCallContext();
    expect(childContext(parent, { traceparent: incoming }).traceparent).toBe(incoming);
  });

  it('shortens a deadline with withTimeout but never extends it', () => {
    const ctx = createCallContext({ timeoutMs: 1000 });
    const shorter = withTimeout(ctx, 100);
    expect(shorter.deadline).toBeLessThan(ctx.deadline);
    expect(shorter.deadline).toBeLessThanOrEqual(Date.now() + 100);
    expect(shorter.traceparent).toBe(ctx.traceparent);
    expect(withTimeout(ctx, 60_000)).toBe(ctx);
    expect(withTimeout(shorter, 1000).deadline).toBe(shorter.deadline);
  });

  it('reports the milliseconds left, never below zero', () => {
    const ctx = createCallContext({ timeoutMs: 10_000 });
    expect(remainingMs(ctx)).toBeGreaterThan(9000);
    expect(remainingMs(ctx)).toBeLessThanOrEqual(10_000);
    expect(remainingMs({ ...ctx, deadline: Date.now() - 5000 })).toBe(0);
  });

  it('throws DEADLINE_EXCEEDED from assertNotExpired once the deadline passed', () => {
    const live = createCallContext({ timeoutMs: 10_000 });
    expect(() => assertNotExpired(live)).not.toThrow();
    const err = thrown(() => assertNotExpired({ ...live, deadline: Date.now() - 1 }, 'skill call'));
    expect(err).toBeInstanceOf(ClawmeshError);
    expect(err).toMatchObject({ code: 'DEADLINE_EXCEEDED', retryable: false });
    expect((err as Error).message).toContain('skill call');
  });

  it('rejects slow work in runWithDeadline with DEADLINE_EXCEEDED and aborts its signal', async () => {
    const ctx = createCallContext({ timeoutMs: 30 });
    let seen: AbortSignal | undefined;
    const started = Date.now();
    const outcome = runWithDeadline(ctx, 'slow work', (signal) => {
      seen = signal;
      return new Promise<string>((resolve) => setTimeout(() => resolve('late'), 5000));
    });
    await expect(outcome).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    await expect(outcome).rejects.toThrow('slow work');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
  });

  it('returns the value of work that finishes in time, leaving the signal alone', async () => {
    const ctx = createCallContext({ timeoutMs: 5000 });
    let seen: AbortSignal | undefined;
    const value = await runWithDeadline(ctx, 'quick work', async (signal) => {
      seen = signal;
      return 42;
    });
    expect(value).toBe(42);
    expect(seen?.aborted).toBe(false);
  });

  it('passes the rejection of failing work through runWithDeadline', async () => {
    const ctx = createCallContext({ timeoutMs: 5000 });
    const err = new ClawmeshError('NOT_FOUND', 'no such tool');
    await expect(runWithDeadline(ctx, 'work', () => Promise.reject(err))).rejects.toBe(err);
  });

  it('does not start work in runWithDeadline when the deadline already passed', async () => {
    const ctx = { ...createCallContext(), deadline: Date.now() - 1 };
    let ran = false;
    const outcome = runWithDeadline(ctx, 'late work', async () => {
      ran = true;
    });
    await expect(outcome).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(ran).toBe(false);
  });
});

describe('ids', () => {
  it('maps the same agent, channel and peer to the same conversation id', () => {
    const id = sessionConversationId('default', 'telegram', '12345');
    expect(id).toMatch(/^c_[0-9a-f]{24}$/);
    expect(sessionConversationId('default', 'telegram', '12345')).toBe(id);
  });

  it('gives the hash of the session key, the same from its memo as before it was evicted', () => {
    const expected = `c_${createHash('sha256').update('default\u0000http\u0000memo-user').digest('hex').slice(0, 24)}`;
    expect(sessionConversationId('default', 'http', 'memo-user')).toBe(expected);
    expect(sessionConversationId('default', 'http', 'memo-user')).toBe(expected);
    for (let i = 0; i < 12_000; i += 1) sessionConversationId('default', 'http', `other-${i}`);
    expect(sessionConversationId('default', 'http', 'memo-user')).toBe(expected);
  });

  it('gives a different conversation id when agent, channel or peer differ', () => {
    const ids = new Set([
      sessionConversationId('default', 'telegram', '12345'),
      sessionConversationId('helper', 'telegram', '12345'),
      sessionConversationId('default', 'discord', '12345'),
      sessionConversationId('default', 'telegram', '12346'),
      sessionConversationId('default', 'tele', 'gram12345'),
      sessionConversationId('defaulttelegram', '', '12345'),
    ]);
    expect(ids.size).toBe(6);
  });

  it('gives randomHex two lowercase hex characters per byte', () => {
    for (const bytes of [1, 8, 16, 256])
      expect(randomHex(bytes)).toMatch(new RegExp(`^[0-9a-f]{${bytes * 2}}$`));
    expect(randomHex(0)).toBe('');
  });

  it('gives different randomHex values over 2000 calls, every digit at every place', () => {
    for (const bytes of [8, 16]) {
      const values = new Set(Array.from({ length: 2000 }, () => randomHex(bytes)));
      expect(values.size).toBe(2000);
      for (let at = 0; at < bytes * 2; at++) {
        const digits = new Set([...values].map((value) => value[at]));
        expect(digits.size, `${bytes} bytes, place ${at}`).toBe(16);
      }
    }
  });

  it('starts new traces as distinct valid traceparents, sampled', () => {
    const values = new Set(Array.from({ length: 2000 }, () => newTraceparent()));
    expect(values.size).toBe(2000);
    for (const value of values) {
      expect(value).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(isTraceparent(value)).toBe(true);
    }
    const ctx = createCallContext();
    expect(ctx.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(values.has(ctx.traceparent)).toBe(false);
  });

  it('makes new ids as distinct UUID v4 strings', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => newId()));
    expect(ids.size).toBe(2000);
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('publicServerError', () => {
  it('hides the addresses in a server error, in its message and its details, keeping the rest', () => {
    const error = {
      code: 'UNAVAILABLE' as const,
      message: 'models.complete: http://10.0.3.7:8081 failed; nats://user:pw@nats:4222 too',
      retryable: true,
      details: {
        attempts: [
          {
            deployment: 'openai',
            error:
              'request to https://proxy.internal/v1/chat failed, reason: connect ECONNREFUSED 10.0.0.9:443',
          },
        ],
      },
    };
    expect(publicServerError(error)).toEqual({
      code: 'UNAVAILABLE',
      message: 'models.complete: http://… failed; nats://… too',
      retryable: true,
      details: {
        attempts: [
          { deployment: 'openai', error: 'request to https://… failed, reason: connect ECONNREFUSED …' },
        ],
      },
    });
    const plain = { code: 'UNAVAILABLE' as const, message: 'no instance of "models"', retryable: true };
    expect(publicServerError(plain)).toBe(plain);
    // A quote right after a URL stays escaped: the result is still the same structure.
    const quoted = { code: 'INTERNAL' as const, message: 'bad "http://a.b/c" "x"', retryable: false };
    expect(publicServerError(quoted).message).toBe('bad "http://…" "x"');
  });

  it('reads a long run of dotted words in linear time (an upstream error text of 160 KB took 14 s)', () => {
    const message = `upstream said: ${'a.'.repeat(80_000)} see https://internal.example/x`;
    const began = performance.now();
    const scrubbed = publicServerError({ code: 'UNAVAILABLE', message, retryable: true });
    expect(performance.now() - began).toBeLessThan(2000);
    expect(scrubbed.message.endsWith('see https://…')).toBe(true);
  });
});

describe('the models contract', () => {
  it('keeps the image parts, reasoning effort and user of a request through its validation, as RPC runs it', () => {
    const request: ModelRequest = {
      messages: [
        {
          role: 'user',
          content: 'what is this?',
          parts: [
            { type: 'text', text: 'what is this?' },
            { type: 'image', url: 'https://example.com/a.png', detail: 'low' },
          ],
        },
      ],
      reasoningEffort: 'high',
      verbosity: 'low',
      logitBias: { '42': -100 },
      user: 'alice',
    };
    expect(modelsContract.methods.complete.input.parse(request)).toEqual(request);
    expect(() =>
      modelsContract.methods.complete.input.parse({
        messages: [{ role: 'user', content: '', parts: [{ type: 'image' }] }],
      }),
    ).toThrow();
  });
});
