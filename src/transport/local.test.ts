import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type CallContext, createCallContext } from '../core/context.ts';
import { type CallMiddleware, defineContract } from '../core/contract.ts';
import { ClawmeshError } from '../core/errors.ts';
import { describeTransport } from './conformance.ts';
import { createLocalTransport } from './local.ts';

const echo = defineContract({
  name: 'echo',
  version: '1.0.0',
  methods: {
    say: {
      input: z.object({ text: z.string(), times: z.number().int().min(1) }),
      output: z.object({ text: z.string() }),
    },
    fail: { input: z.object({}), output: z.object({}) },
  },
});

/** The same service as `echo`, as seen by a newer caller that knows one more method. */
const echoV2 = defineContract({
  name: 'echo',
  version: '2.0.0',
  methods: {
    ...echo.methods,
    shout: { input: z.object({ text: z.string() }), output: z.object({ text: z.string() }) },
  },
});

const ctx = (timeoutMs = 5000) => createCallContext({ timeoutMs });

describeTransport('local', ({ maxPayloadBytes }) => {
  const transport = createLocalTransport({ validate: true, maxPayloadBytes });
  return { server: transport, client: transport };
});

describe('local transport', () => {
  it('round-trips a call to a served contract, passing the context', async () => {
    const transport = createLocalTransport();
    const seen: CallContext[] = [];
    await transport.serve(echo, {
      say: async ({ text, times }, callCtx) => {
        seen.push(callCtx);
        return { text: text.repeat(times) };
      },
      fail: async () => ({}),
    });
    const call = ctx();
    await expect(transport.client(echo).say({ text: 'ab', times: 3 }, call)).resolves.toEqual({
      text: 'ababab',
    });
    expect(seen).toEqual([call]);
    expect(transport.kind).toBe('local');
  });

  it('rejects a call to a service that is not served with UNAVAILABLE', async () => {
    const transport = createLocalTransport();
    const err = await transport
      .client(echo)
      .say({ text: 'a', times: 1 }, ctx())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClawmeshError);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect((err as Error).message).toContain('"echo"');
  });

  it('rejects a method the served contract does not have with NOT_FOUND', async () => {
    const transport = createLocalTransport();
    await transport.serve(echo, { say: async ({ text }) => ({ text }), fail: async () => ({}) });
    const err = await transport
      .client(echoV2)
      .shout({ text: 'hey' }, ctx())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NOT_FOUND' });
    expect((err as Error).message).toContain('"shout"');
  });

  it('rejects a call whose deadline passed with DEADLINE_EXCEEDED without running the handler', async () => {
    const transport = createLocalTransport();
    let ran = false;
    await transport.serve(echo, {
      say: async ({ text }) => {
        ran = true;
        return { text };
      },
      fail: async () => ({}),
    });
    const expired = { ...ctx(), deadline: Date.now() - 1 };
    await expect(transport.client(echo).say({ text: 'a', times: 1 }, expired)).rejects.toMatchObject({
      code: 'DEADLINE_EXCEEDED',
    });
    expect(ran).toBe(false);
  });

  it('passes a typed error thrown by a handler to the caller unchanged', async () => {
    const transport = createLocalTransport();
    const thrown = new ClawmeshError('RATE_LIMITED', 'too many echoes', {
      retryable: false,
      details: { retryAfterSeconds: 7 },
    });
    await transport.serve(echo, {
      say: async ({ text }) => ({ text }),
      fail: async () => {
        throw thrown;
      },
    });
    const err = await transport
      .client(echo)
      .fail({}, ctx())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClawmeshError);
    expect(err).toMatchObject({
      code: 'RATE_LIMITED',
      message: 'too many echoes',
      retryable: false,
      details: { retryAfterSeconds: 7 },
    });
  });

  it('refuses to serve the same contract twice with CONFLICT', async () => {
    const transport = createLocalTransport();
    const handlers = { say: async ({ text }: { text: string }) => ({ text }), fail: async () => ({}) };
    await transport.serve(echo, handlers);
    await expect(transport.serve(echo, handlers)).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(transport.client(echo).say({ text: 'still', times: 1 }, ctx())).resolves.toEqual({
      text: 'still',
    });
  });

  it('answers UNAVAILABLE once a registration is closed, and serves again after', async () => {
    const transport = createLocalTransport();
    const handlers = { say: async ({ text }: { text: string }) => ({ text }), fail: async () => ({}) };
    const registration = await transport.serve(echo, handlers);
    const client = transport.client(echo);
    await registration.close();
    await expect(client.say({ text: 'a', times: 1 }, ctx())).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await transport.serve(echo, handlers);
    await expect(client.say({ text: 'back', times: 1 }, ctx())).resolves.toEqual({ text: 'back' });
  });

  it('answers UNAVAILABLE for every service once the transport is closed', async () => {
    const transport = createLocalTransport();
    await transport.serve(echo, { say: async ({ text }) => ({ text }), fail: async () => ({}) });
    await transport.close();
    await expect(transport.client(echo).fail({}, ctx())).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('rejects a bad input with INVALID_ARGUMENT naming the field when validating', async () => {
    const transport = createLocalTransport({ validate: true });
    let ran = false;
    await transport.serve(echo, {
      say: async ({ text }) => {
        ran = true;
        return { text };
      },
      fail: async () => ({}),
    });
    const bad = { text: 42, times: 1 } as unknown as { text: string; times: number };
    const err = await transport
      .client(echo)
      .say(bad, ctx())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((err as Error).message).toMatch(/^echo\.say: text: /);
    expect(ran).toBe(false);
  });

  it('hands the handler the parsed input when validating', async () => {
    const transport = createLocalTransport({ validate: true });
    const inputs: unknown[] = [];
    await transport.serve(echo, {
      say: async (input) => {
        inputs.push(input);
        return { text: input.text };
      },
      fail: async () => ({}),
    });
    const input = { text: 'a', times: 1, extra: 'dropped' };
    await transport.client(echo).say(input, ctx());
    expect(inputs).toEqual([{ text: 'a', times: 1 }]);
  });

  it('hands the handler the input as is when not validating', async () => {
    const transport = createLocalTransport();
    const inputs: unknown[] = [];
    await transport.serve(echo, {
      say: async (input) => {
        inputs.push(input);
        return { text: String(input.text) };
      },
      fail: async () => ({}),
    });
    const input = { text: 42, times: 0, extra: true } as unknown as { text: string; times: number };
    await expect(transport.client(echo).say(input, ctx())).resolves.toEqual({ text: '42' });
    expect(inputs).toHaveLength(1);
    expect(inputs[0]).toBe(input);
  });

  it('runs middleware around calls in order, outermost first, with service, method and input', async () => {
    const transport = createLocalTransport();
    const events: string[] = [];
    await transport.serve(echo, {
      say: async ({ text }) => {
        events.push(`handler ${text}`);
        return { text };
      },
      fail: async () => ({}),
    });
    const trace =
      (label: string): CallMiddleware =>
      (service, next) =>
      async (method, input, callCtx) => {
        events.push(`${label} before ${service}.${method} ${JSON.stringify(input)}`);
        const result = await next(method, input, callCtx);
        events.push(`${label} after ${JSON.stringify(result)}`);
        return result;
      };
    const client = transport.client(echo, [trace('outer'), trace('inner')]);
    await expect(client.say({ text: 'hi', times: 1 }, ctx())).resolves.toEqual({ text: 'hi' });
    expect(events).toEqual([
      'outer before echo.say {"text":"hi","times":1}',
      'inner before echo.say {"text":"hi","times":1}',
      'handler hi',
      'inner after {"text":"hi"}',
      'outer after {"text":"hi"}',
    ]);
  });

  it('lets middleware change the input and the result of a call', async () => {
    const transport = createLocalTransport();
    await transport.serve(echo, { say: async ({ text }) => ({ text }), fail: async () => ({}) });
    const upper: CallMiddleware = (_service, next) => async (method, input, callCtx) => {
      const { text } = input as { text: string };
      const result = (await next(method, { ...(input as object), text: text.toUpperCase() }, callCtx)) as {
        text: string;
      };
      return { text: `${result.text}!` };
    };
    await expect(transport.client(echo, [upper]).say({ text: 'hi', times: 1 }, ctx())).resolves.toEqual({
      text: 'HI!',
    });
  });

  it('sees errors of the call in middleware', async () => {
    const transport = createLocalTransport();
    const codes: string[] = [];
    const record: CallMiddleware = (_service, next) => async (method, input, callCtx) => {
      try {
        return await next(method, input, callCtx);
      } catch (err) {
        codes.push(ClawmeshError.from(err).code);
        throw err;
      }
    };
    await expect(transport.client(echo, [record]).fail({}, ctx())).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    expect(codes).toEqual(['UNAVAILABLE']);
  });

  it('hands the handler the very context of the caller, onDelta included', async () => {
    const transport = createLocalTransport();
    const deltas: string[] = [];
    await transport.serve(echo, {
      say: async ({ text }, callCtx) => {
        callCtx.onDelta?.(text);
        return { text };
      },
      fail: async () => ({}),
    });
    const call = createCallContext({ onDelta: (delta) => deltas.push(delta) });
    await transport.client(echo).say({ text: 'streamed', times: 1 }, call);
    expect(deltas).toEqual(['streamed']);
  });

  it('does not measure payloads unless asked to', async () => {
    const transport = createLocalTransport();
    await transport.serve(echo, { say: async ({ text }) => ({ text }), fail: async () => ({}) });
    const big = 'x'.repeat(2 * 1024 * 1024);
    await expect(transport.client(echo).say({ text: big, times: 1 }, ctx())).resolves.toEqual({ text: big });
  });
});
