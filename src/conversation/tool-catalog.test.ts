import { describe, expect, it } from 'vitest';
import type { AgentConfig } from '../config/schema.ts';
import { createCallContext } from '../core/context.ts';
import type { Client } from '../core/contract.ts';
import type { skillsContract } from '../core/contracts/skills.ts';
import { ClawmeshError } from '../core/errors.ts';
import { createLogger } from '../observability/logger.ts';
import { createToolCatalog } from './tool-catalog.ts';

const agent = { id: 'default', skills: ['inventory'] } as unknown as AgentConfig;
const lookup = {
  skill: 'inventory',
  tool: 'lookupStock',
  description: 'How many units are in stock',
  inputSchema: { type: 'object', properties: { item: { type: 'string' } } },
};

/** A skills client whose skill host is down until `up` is set. */
function skillsHost() {
  const state = { up: false, lists: 0 };
  const client = {
    async list() {
      state.lists += 1;
      if (!state.up) throw new ClawmeshError('UNAVAILABLE', 'skills.inventory.list: no running instance');
      return { tools: [lookup] };
    },
    async invoke() {
      throw new Error('not used');
    },
  } as unknown as Client<typeof skillsContract>;
  return { state, client };
}

describe('createToolCatalog', () => {
  it('goes on without tools while no skill host answers, and offers them once one does', async () => {
    const host = skillsHost();
    const catalog = createToolCatalog(host.client, undefined, 60_000);
    const down = await catalog.toolsFor(agent, createCallContext());
    expect(down.specs).toEqual([]);
    expect(down.allowed).toEqual(new Set(['inventory']));
    host.state.up = true;
    const up = await catalog.toolsFor(agent, createCallContext());
    expect(up.specs.map((spec) => spec.name)).toEqual(['inventory__lookupStock']);
    expect(host.state.lists).toBe(2);
  });

  it("logs going on without tools with the turn's request, trace, span and conversation", async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
    const catalog = createToolCatalog(skillsHost().client, logger, 60_000);
    const ctx = createCallContext({ conversationId: 'c_1', requestId: 'req-1' });
    await catalog.toolsFor(agent, ctx);
    expect(lines).toContainEqual(
      expect.objectContaining({
        requestId: 'req-1',
        traceId: ctx.traceparent.slice(3, 35),
        spanId: ctx.traceparent.slice(36, 52),
        conversationId: 'c_1',
        msg: 'no skill host answered for this agent: the turn goes on without tools',
      }),
    );
  });
});
