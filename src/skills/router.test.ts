import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createCallContext } from '../core/context.ts';
import { randomHex } from '../core/ids.ts';
import { createLogger } from '../observability/logger.ts';
import { createNatsTransport } from '../transport/nats.ts';
import type { Transport } from '../transport/types.ts';
import { defineSkill } from './define.ts';
import { createSkillHost } from './host.ts';
import { createSkillRouter, serveSkillHost, skillServiceContract } from './router.ts';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

const quick = defineSkill({
  name: 'quick',
  version: '1.0.0',
  tools: {
    echo: { description: 'Echoes its input', input: z.object({ text: z.string() }), run: ({ text }) => text },
  },
});

describe('createSkillRouter', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of cleanup.splice(0).reverse()) await close();
  });
  const transport = async (subjectPrefix: string): Promise<Transport> => {
    const t = await createNatsTransport({ servers: NATS_URL, subjectPrefix });
    cleanup.push(() => t.close());
    return t;
  };

  it('leaves out a skill whose host hangs after listTimeoutMs, not after the whole turn deadline', async () => {
    const prefix = `h3router${randomHex(4)}`;
    const [server, client] = await Promise.all([transport(prefix), transport(prefix)]);
    await serveSkillHost(server, createSkillHost({ skills: [quick] }));
    // A host that receives the call and never answers (a blocked event loop, a frozen VM).
    await server.serve(skillServiceContract('stuck'), {
      list: () => new Promise(() => undefined),
      invoke: () => new Promise(() => undefined),
    });
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
    const router = createSkillRouter({
      transport: client,
      skills: ['quick', 'stuck'],
      logger,
      listTimeoutMs: 300,
    });
    const began = performance.now();
    const ctx = createCallContext({ timeoutMs: 15_000, conversationId: 'c_1' });
    const { tools } = await router.list({}, ctx);
    expect(performance.now() - began).toBeLessThan(2000);
    expect(tools.map((tool) => `${tool.skill}.${tool.tool}`)).toEqual(['quick.echo']);
    // A line of the turn that listed the tools: it carries the turn's ids.
    expect(lines).toContainEqual(
      expect.objectContaining({
        skill: 'stuck',
        requestId: ctx.requestId,
        traceId: ctx.traceparent.slice(3, 35),
        conversationId: 'c_1',
      }),
    );
  });
});
