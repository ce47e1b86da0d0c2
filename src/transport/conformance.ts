import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type CallContext, createCallContext, traceIdOf } from '../core/context.ts';
import { type CallMiddleware, defineContract, type Handlers } from '../core/contract.ts';
import { ClawmeshError, ERROR_CODES } from '../core/errors.ts';
import { randomHex } from '../core/ids.ts';
import type { Transport } from './types.ts';

/*
 * The conformance suite every transport runs unchanged (local, http, nats). Service names are
 * unique per test, so transports whose tests share one server (NATS) can run it as it is.
 */

/** Transports wired to each other for one test. */
export interface TransportPair {
  /** Serves contracts. */
  server: Transport;
  /** Calls them; the same object as `server` for an in-process transport. */
  client: Transport;
  /** A second server of the same services, as another process would run it (see `replicas`). */
  replica?: Transport;
  /** Releases what the pair holds beyond its transports (those are closed by the suite). */
  close?(): Promise<void>;
}

/** What {@link describeTransport} asks of `makePair`. */
export interface PairOptions {
  /** The payload limit to give every transport of the pair. */
  maxPayloadBytes: number;
}

/** Options of {@link describeTransport}. */
export interface DescribeTransportOptions {
  /**
   * Whether two servers of one service share its calls (`replica` is then required). The local
   * transport serves a service once per process, so it has no replicas to test.
   */
  replicas?: boolean;
}

type MakePair = (options: PairOptions) => Promise<TransportPair> | TransportPair;

const LIMIT = 64 * 1024;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves to what `promise` rejected with; fails the test if it resolved. */
export async function rejection(promise: Promise<unknown>): Promise<ClawmeshError> {
  try {
    await promise;
  } catch (err) {
    return err as ClawmeshError;
  }
  throw new Error('expected the call to reject');
}

const Seen = z.object({
  requestId: z.string(),
  traceparent: z.string(),
  deadline: z.number(),
  conversationId: z.string().optional(),
  userId: z.string().optional(),
  channel: z.string().optional(),
  agentId: z.string().optional(),
});

function makeContract(name: string) {
  return defineContract({
    name,
    version: '1.2.3',
    methods: {
      echo: {
        input: z.object({
          text: z.string(),
          times: z.number().int().min(1),
          tags: z.array(z.string()).optional(),
          nested: z.object({ ok: z.boolean(), at: z.number().nullable() }).optional(),
        }),
        output: z.object({ text: z.string(), length: z.number(), tags: z.array(z.string()) }),
      },
      fail: {
        input: z.object({
          code: z.enum(ERROR_CODES),
          message: z.string(),
          retryable: z.boolean(),
          details: z.record(z.string(), z.unknown()).optional(),
        }),
        output: z.object({}),
      },
      crash: { input: z.object({ message: z.string() }), output: z.object({}) },
      context: { input: z.object({}), output: Seen },
      slow: { input: z.object({ ms: z.number() }), output: z.object({ ms: z.number() }) },
      whoami: { input: z.object({}), output: z.object({ instance: z.string() }) },
    },
  });
}

type TestContract = ReturnType<typeof makeContract>;

/** Handlers of the test contract; `calls` counts every handler run. */
function makeHandlers(
  instance: string,
  calls: { count: number },
  seen: CallContext[] = [],
): Handlers<TestContract> {
  return {
    echo: async ({ text, times, tags }) => {
      calls.count += 1;
      const out = text.repeat(times);
      return { text: out, length: out.length, tags: tags ?? [] };
    },
    fail: async ({ code, message, retryable, details }) => {
      calls.count += 1;
      throw new ClawmeshError(code, message, details ? { retryable, details } : { retryable });
    },
    crash: async ({ message }) => {
      calls.count += 1;
      throw new Error(message);
    },
    context: async (_input, ctx) => {
      calls.count += 1;
      seen.push(ctx);
      const { onDelta: _onDelta, ...rest } = ctx;
      return rest;
    },
    slow: async ({ ms }) => {
      calls.count += 1;
      await sleep(ms);
      return { ms };
    },
    whoami: async () => {
      calls.count += 1;
      return { instance };
    },
  };
}

/**
 * Registers the transport conformance suite. `makePair` is called before each test; the suite
 * closes the pair's transports after it.
 *
 * @example
 * describeTransport('local', ({ maxPayloadBytes }) => {
 *   const transport = createLocalTransport({ validate: true, maxPayloadBytes });
 *   return { server: transport, client: transport };
 * });
 */
export function describeTransport(
  name: string,
  makePair: MakePair,
  options: DescribeTransportOptions = {},
): void {
  describe(`Transport conformance: ${name}`, () => {
    let pair: TransportPair;
    let contract: TestContract;
    let calls: { count: number };
    let seen: CallContext[];
    const ctx = (timeoutMs = 5000) => createCallContext({ timeoutMs });
    const serve = () => pair.server.serve(contract, makeHandlers('a', calls, seen));
    const client = (middleware?: readonly CallMiddleware[]) => pair.client.client(contract, middleware);

    beforeEach(async () => {
      pair = await makePair({ maxPayloadBytes: LIMIT });
      contract = makeContract(`conformance.t${randomHex(6)}-svc`);
      calls = { count: 0 };
      seen = [];
    });
    afterEach(async () => {
      const transports = new Set([pair.client, pair.server, pair.replica].filter((t) => t !== undefined));
      for (const transport of transports) await transport.close();
      await pair.close?.();
    });

    it('round-trips a call with typed input and output', async () => {
      await serve();
      const out = await client().echo(
        { text: 'añ€😀"\\', times: 2, tags: ['x', 'y'], nested: { ok: true, at: null } },
        ctx(),
      );
      expect(out).toEqual({ text: 'añ€😀"\\añ€😀"\\', length: 14, tags: ['x', 'y'] });
      expect(calls.count).toBe(1);
    });

    it('answers 50 concurrent calls, each with its own result', async () => {
      await serve();
      const echo = client().echo;
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => echo({ text: `m${i}`, times: 1 }, ctx())),
      );
      expect(results.map((r) => r.text)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    });

    it('rejects an input that does not match the schema with INVALID_ARGUMENT naming the field', async () => {
      await serve();
      const bad = { text: 42, times: 1 } as unknown as { text: string; times: number };
      const err = await rejection(client().echo(bad, ctx()));
      expect(err).toBeInstanceOf(ClawmeshError);
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(err.message).toContain(`${contract.name}.echo: text:`);
      expect(calls.count).toBe(0);
    });

    it('delivers every error code with its message, retryable flag and details unchanged', async () => {
      await serve();
      const fail = client().fail;
      for (const [i, code] of ERROR_CODES.entries()) {
        const retryable = i % 2 === 0;
        const details = { index: i, nested: { code }, list: [1, 'two'] };
        const err = await rejection(
          fail({ code, message: `failed with ${code} ✗`, retryable, details }, ctx()),
        );
        expect(err).toBeInstanceOf(ClawmeshError);
        expect({
          code: err.code,
          message: err.message,
          retryable: err.retryable,
          details: err.details,
        }).toEqual({
          code,
          message: `failed with ${code} ✗`,
          retryable,
          details,
        });
      }
      const bare = await rejection(
        fail({ code: 'NOT_FOUND', message: 'no such thing', retryable: false }, ctx()),
      );
      expect(bare).toMatchObject({ code: 'NOT_FOUND', message: 'no such thing', retryable: false });
      expect(bare.details).toBeUndefined();
    });

    it('reports an exception that is not a ClawmeshError as INTERNAL with its message', async () => {
      await serve();
      const err = ClawmeshError.from(await rejection(client().crash({ message: 'kaput' }, ctx())));
      expect(err.code).toBe('INTERNAL');
      expect(err.message).toContain('kaput');
    });

    it('fails a call whose deadline has passed with DEADLINE_EXCEEDED without running the handler', async () => {
      await serve();
      const expired = { ...ctx(), deadline: Date.now() - 1 };
      const err = await rejection(client().echo({ text: 'a', times: 1 }, expired));
      expect(err).toBeInstanceOf(ClawmeshError);
      expect(err.code).toBe('DEADLINE_EXCEEDED');
      await sleep(50);
      expect(calls.count).toBe(0);
    });

    it('passes the request id, trace, remaining deadline and ids to the handler', async () => {
      await serve();
      const call = createCallContext({
        timeoutMs: 5000,
        conversationId: 'c_1 é/%',
        userId: 'user:ü 1',
        channel: 'web chat',
        agentId: 'agent.a',
        onDelta: () => undefined,
      });
      const out = await client().context({}, call);
      expect(seen).toHaveLength(1);
      const got = seen[0]!;
      expect(got.requestId).toBe(call.requestId);
      expect(traceIdOf(got)).toBe(traceIdOf(call));
      expect(got.deadline).toBeGreaterThan(call.deadline - 250);
      expect(got.deadline).toBeLessThan(call.deadline + 250);
      expect(got).toMatchObject({
        conversationId: 'c_1 é/%',
        userId: 'user:ü 1',
        channel: 'web chat',
        agentId: 'agent.a',
      });
      expect(out.requestId).toBe(call.requestId);
    });

    it('gives the caller DEADLINE_EXCEEDED when the handler is slower than the deadline', async () => {
      await serve();
      const started = Date.now();
      const err = await rejection(client().slow({ ms: 1500 }, ctx(150)));
      const waited = Date.now() - started;
      expect(err).toBeInstanceOf(ClawmeshError);
      expect(err.code).toBe('DEADLINE_EXCEEDED');
      expect(waited).toBeGreaterThanOrEqual(140);
      expect(waited).toBeLessThan(1200);
    });

    it('takes a payload under the limit and refuses a larger one with a typed error', async () => {
      await serve();
      const echo = client().echo;
      const fits = await echo({ text: 'x'.repeat(LIMIT / 2), times: 1 }, ctx());
      expect(fits.length).toBe(LIMIT / 2);
      const err = await rejection(echo({ text: 'x'.repeat(LIMIT + 1), times: 1 }, ctx()));
      expect(err).toBeInstanceOf(ClawmeshError);
      expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', retryable: false });
      expect(err.details?.reason).toBe('PAYLOAD_TOO_LARGE');
      expect(calls.count).toBe(1);
    });

    it('fails a reply over the limit with INTERNAL', async () => {
      await serve();
      const err = await rejection(client().echo({ text: 'y'.repeat(LIMIT / 2), times: 3 }, ctx()));
      expect(err).toBeInstanceOf(ClawmeshError);
      expect(err).toMatchObject({ code: 'INTERNAL', retryable: false });
      expect(err.details?.reason).toBe('PAYLOAD_TOO_LARGE');
    });

    it('answers UNAVAILABLE within a second for a service nobody serves', async () => {
      const started = Date.now();
      const err = await rejection(client().echo({ text: 'a', times: 1 }, ctx(10_000)));
      expect(err).toBeInstanceOf(ClawmeshError);
      expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
      expect(Date.now() - started).toBeLessThan(1000);
    });

    it('runs client middleware around remote calls, seeing results and errors', async () => {
      await serve();
      const events: string[] = [];
      const record: CallMiddleware = (service, next) => async (method, input, callCtx) => {
        try {
          const result = await next(method, input, callCtx);
          events.push(`${service === contract.name}:${method}:ok`);
          return result;
        } catch (err) {
          events.push(`${service === contract.name}:${method}:${ClawmeshError.from(err).code}`);
          throw err;
        }
      };
      const wrapped = client([record]);
      await wrapped.whoami({}, ctx());
      await rejection(wrapped.fail({ code: 'CONFLICT', message: 'taken', retryable: false }, ctx()));
      expect(events).toEqual(['true:whoami:ok', 'true:fail:CONFLICT']);
    });

    if (options.replicas) {
      it('shares the calls of one service between two servers', async () => {
        await pair.server.serve(contract, makeHandlers('a', calls));
        await pair.replica!.serve(contract, makeHandlers('b', calls));
        const whoami = client().whoami;
        const counts = { a: 0, b: 0 } as Record<string, number>;
        for (let i = 0; i < 40; i += 1) {
          const { instance } = await whoami({}, ctx());
          counts[instance] = (counts[instance] ?? 0) + 1;
        }
        expect(counts.a! + counts.b!).toBe(40);
        expect(counts.a).toBeGreaterThan(0);
        expect(counts.b).toBeGreaterThan(0);
      });
    }

    it('stops serving when a registration closes, and serves again after', async () => {
      const registration = await serve();
      const whoami = client().whoami;
      await expect(whoami({}, ctx())).resolves.toEqual({ instance: 'a' });
      await registration.close();
      const err = await rejection(whoami({}, ctx()));
      expect(err).toMatchObject({ code: 'UNAVAILABLE' });
      await serve();
      await expect(whoami({}, ctx())).resolves.toEqual({ instance: 'a' });
    });

    it('stops serving when the server transport closes', async () => {
      await serve();
      const whoami = client().whoami;
      await expect(whoami({}, ctx())).resolves.toEqual({ instance: 'a' });
      await pair.server.close();
      const started = Date.now();
      const err = await rejection(whoami({}, ctx(10_000)));
      expect(err).toMatchObject({ code: 'UNAVAILABLE' });
      expect(Date.now() - started).toBeLessThan(1000);
    });
  });
}
