import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createCallContext } from '../core/context.ts';
import { ClawmeshError } from '../core/errors.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { defineSkill, type ToolContext } from './define.ts';
import { createSkillHost } from './host.ts';

let seen: { signal?: AbortSignal; ctx?: ToolContext } = {};

const demo = defineSkill({
  name: 'demo',
  version: '1.0.0',
  secrets: ['DEMO_KEY'],
  tools: {
    echo: {
      description: 'Echoes its input',
      input: z.object({ text: z.string(), times: z.number().int().positive().default(1) }),
      run: async ({ text, times }, ctx) => {
        seen.ctx = ctx;
        return { text: text.repeat(times), at: new Date(0), skip: undefined };
      },
    },
    slow: {
      description: 'Never finishes on its own',
      input: z.object({}),
      timeoutMs: 50,
      run: (_, ctx) =>
        new Promise(() => {
          seen.signal = ctx.signal;
        }),
    },
    fail: {
      description: 'Always throws',
      input: z.object({ typed: z.boolean().default(false) }),
      run: ({ typed }) => {
        if (typed) throw new ClawmeshError('UNAVAILABLE', 'the store is down');
        throw new Error('boom');
      },
    },
    nothing: { description: 'Returns nothing', input: z.object({}), run: () => undefined },
    secrets: {
      description: 'Reports what it sees of the secrets',
      input: z.object({ name: z.string() }),
      run: ({ name }, ctx) => ({ all: { ...ctx.secrets }, one: ctx.secret(name) }),
    },
  },
});

const ctx = () => createCallContext({ timeoutMs: 5_000, conversationId: 'c1' });

afterEach(() => {
  seen = {};
  delete process.env.DEMO_KEY;
  delete process.env.OTHER_KEY;
});

describe('createSkillHost', () => {
  const host = createSkillHost({ skills: [demo] });
  const { invoke, list } = host.handlers;

  it('lists each tool with its input as JSON Schema, defaults optional', async () => {
    const { tools } = await list({}, ctx());
    expect(tools.map((t) => t.tool)).toEqual(['echo', 'slow', 'fail', 'nothing', 'secrets']);
    const echo = tools[0]!;
    expect(echo).toMatchObject({ skill: 'demo', tool: 'echo', description: 'Echoes its input' });
    expect(echo.inputSchema).toMatchObject({
      type: 'object',
      properties: { text: { type: 'string' }, times: { type: 'integer', default: 1 } },
      required: ['text'],
    });
    expect(echo.inputSchema).not.toHaveProperty('$schema');
    expect((await list({}, ctx())).tools[0]!.inputSchema).toBe(echo.inputSchema);
  });

  it('lists only the named skills and refuses an unknown one', async () => {
    expect((await list({ skills: ['demo'] }, ctx())).tools).toHaveLength(5);
    await expect(list({ skills: ['nope'] }, ctx())).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('runs a valid call and returns a JSON value', async () => {
    const call = ctx();
    const result = await invoke(
      { skill: 'demo', tool: 'echo', arguments: { text: 'ab', times: 2 }, callId: 'k1' },
      call,
    );
    expect(result).toMatchObject({ ok: true, result: { text: 'abab', at: '1970-01-01T00:00:00.000Z' } });
    expect(result.result).not.toHaveProperty('skip');
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(seen.ctx).toMatchObject({ requestId: call.requestId, conversationId: 'c1', callId: 'k1' });
    expect(seen.ctx?.deadline).toBe(call.deadline);
  });

  it('parses arguments that arrive as a JSON string', async () => {
    const result = await invoke({ skill: 'demo', tool: 'echo', arguments: '{"text":"hi"}' }, ctx());
    expect(result).toMatchObject({ ok: true, result: { text: 'hi' } });
  });

  it('answers arguments that are a JSON string, not an object, saying so', async () => {
    for (const text of ['"hi"', JSON.stringify(JSON.stringify({ text: 'hi' }))]) {
      const result = await invoke({ skill: 'demo', tool: 'echo', arguments: text }, ctx());
      expect(result.error).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(result.error?.message).not.toContain('not valid JSON');
      expect(result.error?.message).toMatch(/object/);
    }
  });

  it('answers malformed JSON arguments with INVALID_ARGUMENT', async () => {
    const result = await invoke({ skill: 'demo', tool: 'echo', arguments: '{"text":' }, ctx());
    expect(result.ok).toBe(false);
    expect(result.error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(result.error?.message).toContain('not valid JSON');
  });

  it('answers bad arguments with INVALID_ARGUMENT naming each field, never a throw', async () => {
    const result = await invoke({ skill: 'demo', tool: 'echo', arguments: { text: 3, times: -1 } }, ctx());
    expect(result.ok).toBe(false);
    expect(result.error?.code).toBe('INVALID_ARGUMENT');
    expect(result.error?.message).toMatch(/^text: .+; times: .+/);
  });

  it('turns undefined into null', async () => {
    expect(await invoke({ skill: 'demo', tool: 'nothing', arguments: {} }, ctx())).toMatchObject({
      ok: true,
      result: null,
    });
  });

  it('stops a slow tool at its timeout with DEADLINE_EXCEEDED and aborts its signal', async () => {
    const started = Date.now();
    const result = await invoke({ skill: 'demo', tool: 'slow', arguments: {} }, ctx());
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(result).toMatchObject({ ok: false, error: { code: 'DEADLINE_EXCEEDED' } });
    expect(seen.signal?.aborted).toBe(true);
  });

  it('holds a call to the time left before the caller deadline', async () => {
    const fast = createSkillHost({ skills: [demo], defaultTimeoutMs: 60_000 });
    const started = Date.now();
    const result = await fast.handlers.invoke(
      { skill: 'demo', tool: 'slow', arguments: {} },
      createCallContext({ timeoutMs: 20 }),
    );
    expect(result.error?.code).toBe('DEADLINE_EXCEEDED');
    expect(Date.now() - started).toBeLessThan(1_000);
    const late = await fast.handlers.invoke(
      { skill: 'demo', tool: 'echo', arguments: { text: 'x' } },
      createCallContext({ timeoutMs: -1 }),
    );
    expect(late.error?.code).toBe('DEADLINE_EXCEEDED');
  });

  it('turns a throw into ok:false with its code, or INTERNAL', async () => {
    const plain = await invoke({ skill: 'demo', tool: 'fail', arguments: {} }, ctx());
    expect(plain).toMatchObject({ ok: false, error: { code: 'INTERNAL', message: 'boom' } });
    const typed = await invoke({ skill: 'demo', tool: 'fail', arguments: { typed: true } }, ctx());
    expect(typed).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE', message: 'the store is down' } });
  });

  it("replaces the skill's secret in a tool's error message, which reaches the model and the client", async () => {
    const leaky = defineSkill({
      name: 'leaky',
      version: '1.0.0',
      secrets: ['LEAKY_KEY'],
      tools: {
        fetch: {
          description: 'Fails quoting its key, as some client libraries do',
          input: z.object({}),
          run: (_, toolCtx) => {
            throw new Error(`GET https://api.example/items?key=${toolCtx.secrets.LEAKY_KEY} refused`);
          },
        },
      },
    });
    const host = createSkillHost({ skills: [leaky], secrets: () => ({ LEAKY_KEY: 'leaky-secret-123' }) });
    const result = await host.handlers.invoke({ skill: 'leaky', tool: 'fetch', arguments: {} }, ctx());
    expect(result).toMatchObject({
      ok: false,
      error: { code: 'INTERNAL', message: 'GET https://api.example/items?key=[redacted] refused' },
    });
  });

  it("logs a failed call with its skill and code, the arguments' text it quotes redacted unless includeText", async () => {
    const lookup = defineSkill({
      name: 'shop',
      version: '1.0.0',
      tools: {
        find: {
          description: 'Fails quoting what it was asked, as many tools do',
          input: z.object({ query: z.object({ item: z.string() }) }),
          run: ({ query }) => {
            throw new ClawmeshError('NOT_FOUND', `no item named "${query.item}" in the catalogue`);
          },
        },
      },
    });
    const asked = 'the blue "pyjamas" for my neighbour at 12 Elm Street';
    const logged = async (includeText: boolean) => {
      const lines: Record<string, unknown>[] = [];
      const logger = createLogger({
        destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
      });
      const host = createSkillHost({ skills: [lookup], logger, includeText });
      const result = await host.handlers.invoke(
        { skill: 'shop', tool: 'find', arguments: { query: { item: asked } } },
        ctx(),
      );
      // The model and the caller get the whole message either way.
      expect(result.error?.message).toBe(`no item named "${asked}" in the catalogue`);
      return lines;
    };
    expect(await logged(false)).toEqual([
      expect.objectContaining({
        level: 40,
        skill: 'shop',
        tool: 'shop__find',
        code: 'NOT_FOUND',
        conversationId: 'c1',
        msg: 'tool call failed: no item named "[redacted]" in the catalogue',
      }),
    ]);
    expect(await logged(true)).toEqual([
      expect.objectContaining({ msg: `tool call failed: no item named "${asked}" in the catalogue` }),
    ]);
    // Arguments the model wrote as broken JSON: the parser's error quotes them (at debug).
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      level: 'debug',
      destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
    });
    const host = createSkillHost({ skills: [lookup], logger });
    await host.handlers.invoke({ skill: 'shop', tool: 'find', arguments: `{"query": ${asked}` }, ctx());
    expect(lines).toEqual([expect.objectContaining({ level: 20, code: 'INVALID_ARGUMENT' })]);
    expect(String(lines[0]!.msg)).not.toMatch(/blue|pyjamas/);
  });

  it('gives a skill only the secrets it declared', async () => {
    process.env.DEMO_KEY = 'demo-secret';
    process.env.OTHER_KEY = 'other-secret';
    const ok = await invoke({ skill: 'demo', tool: 'secrets', arguments: { name: 'DEMO_KEY' } }, ctx());
    expect(ok).toMatchObject({ ok: true, result: { all: { DEMO_KEY: 'demo-secret' }, one: 'demo-secret' } });
    const denied = await invoke({ skill: 'demo', tool: 'secrets', arguments: { name: 'OTHER_KEY' } }, ctx());
    expect(denied).toMatchObject({ ok: false, error: { code: 'PERMISSION_DENIED' } });
  });

  it('names the variable of a declared secret that is not set', async () => {
    const result = await invoke({ skill: 'demo', tool: 'secrets', arguments: { name: 'DEMO_KEY' } }, ctx());
    expect(result).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(result.error?.message).toContain('DEMO_KEY');
  });

  it('reads secrets from a custom source, still only the declared names', async () => {
    const custom = createSkillHost({
      skills: [demo],
      secrets: () => ({ DEMO_KEY: 'from-vault', OTHER_KEY: 'x' }),
    });
    const result = await custom.handlers.invoke(
      { skill: 'demo', tool: 'secrets', arguments: { name: 'DEMO_KEY' } },
      ctx(),
    );
    expect(result.result).toEqual({ all: { DEMO_KEY: 'from-vault' }, one: 'from-vault' });
  });

  it('refuses an unknown skill or tool with NOT_FOUND', async () => {
    await expect(invoke({ skill: 'demo', tool: 'nope', arguments: {} }, ctx())).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining('it has: echo'),
    });
    await expect(invoke({ skill: 'nope', tool: 'echo', arguments: {} }, ctx())).rejects.toBeInstanceOf(
      ClawmeshError,
    );
  });

  it('counts calls by skill, tool and outcome', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const counted = createSkillHost({ skills: [demo], metrics });
    await counted.handlers.invoke({ skill: 'demo', tool: 'echo', arguments: { text: 'a' } }, ctx());
    await counted.handlers.invoke({ skill: 'demo', tool: 'echo', arguments: {} }, ctx());
    const text = await metrics.registry.metrics();
    expect(text).toContain('clawmesh_tool_calls_total{skill="demo",tool="echo",outcome="ok"} 1');
    expect(text).toContain('clawmesh_tool_calls_total{skill="demo",tool="echo",outcome="error"} 1');
  });

  it('refuses two skills of the same name', () => {
    expect(() => createSkillHost({ skills: [demo, demo] })).toThrow(/two skills are named "demo"/);
  });

  it('refuses a tool whose input is not an object schema', () => {
    const scalar = defineSkill({
      name: 'scalar',
      version: '1',
      tools: { t: { description: 'd', input: z.string(), run: () => 1 } },
    });
    expect(() => createSkillHost({ skills: [scalar] })).toThrow(/object schema/);
  });
});
