import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createCallContext } from '../core/context.ts';
import { silentLogger } from '../observability/logger.ts';
import { runToolCall, type ToolEntry } from './call.ts';
import { defineSkill, type ToolDefinition } from './define.ts';

const entryOf = (tool: Partial<ToolDefinition>, timeoutMs = 1_000): ToolEntry => {
  const full = { description: 'd', input: z.object({}), run: () => null, ...tool } as ToolDefinition;
  const skill = defineSkill({ name: 's', version: '1', tools: { t: full } });
  return { skill, name: 's__t', tool: full, timeoutMs };
};

const run = (entry: ToolEntry, args: unknown = {}) =>
  runToolCall(entry, {
    arguments: args,
    ctx: createCallContext(),
    secrets: () => ({}),
    logger: silentLogger(),
  });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('runToolCall', () => {
  it('reads an empty argument text as no arguments', async () => {
    expect(await run(entryOf({ run: () => 'ran' }), '  ')).toEqual({ json: 'ran' });
  });

  it('answers a non-object JSON text with INVALID_ARGUMENT', async () => {
    expect(await run(entryOf({}), '42')).toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('makes results JSON: non-finite numbers become null, functions are dropped', async () => {
    expect(await run(entryOf({ run: () => Number.NaN }))).toEqual({ json: null });
    expect(await run(entryOf({ run: () => ({ a: 1, f: () => 1 }) }))).toEqual({ json: { a: 1 } });
  });

  it('fails with INTERNAL when a result cannot be JSON', async () => {
    const result = await run(entryOf({ run: () => ({ big: 1n }) }));
    expect(result).toMatchObject({
      code: 'INTERNAL',
      message: expect.stringContaining('s__t returned a value that is not JSON'),
    });
  });

  it('gives an aborted signal to a tool that asks for it after the timeout', async () => {
    let late: AbortSignal | undefined;
    const entry = entryOf(
      {
        run: async (_, ctx) => {
          await sleep(60);
          late = ctx.signal;
        },
      },
      10,
    );
    expect(await run(entry)).toMatchObject({
      code: 'DEADLINE_EXCEEDED',
      message: 's__t did not finish within 10 ms',
    });
    await sleep(100);
    expect(late?.aborted).toBe(true);
    expect(late?.reason).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
  });

  it('contains a synchronous throw', async () => {
    const entry = entryOf({
      run: () => {
        throw 'plain string';
      },
    });
    expect(await run(entry)).toEqual({ code: 'INTERNAL', message: 'plain string' });
  });
});
