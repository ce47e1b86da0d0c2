import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { ClawmeshError } from '../core/errors.ts';
import { defineSkill, isSkill, type SkillDefinition, type ToolContext } from './define.ts';

const tool = {
  description: 'Says hello',
  input: z.object({ name: z.string() }),
  run: async ({ name }: { name: string }) => `hello ${name}`,
};

function definitionError(def: unknown): ClawmeshError {
  try {
    defineSkill(def as SkillDefinition);
  } catch (err) {
    if (err instanceof ClawmeshError) return err;
    throw err;
  }
  throw new Error('defineSkill accepted the definition');
}

describe('defineSkill', () => {
  it('types each run input from its own schema, with no annotations', async () => {
    const skill = defineSkill({
      name: 'inventory',
      version: '1.0.0',
      secrets: ['STORE_API_KEY'],
      tools: {
        lookupStock: {
          description: 'How many units of an item are in stock',
          input: z.object({ item: z.string() }),
          run: async ({ item }, ctx) => {
            expectTypeOf(item).toEqualTypeOf<string>();
            expectTypeOf(ctx).toEqualTypeOf<ToolContext>();
            return { item, units: 42 };
          },
        },
        openTicket: {
          description: 'Opens a ticket',
          input: z.object({ subject: z.string(), priority: z.enum(['low', 'high']).default('low') }),
          run: ({ subject, priority }) => {
            expectTypeOf(priority).toEqualTypeOf<'low' | 'high'>();
            return subject;
          },
        },
      },
    });
    expect(Object.keys(skill.tools)).toEqual(['lookupStock', 'openTicket']);
    expect(skill.secrets).toEqual(['STORE_API_KEY']);
    expect(await skill.tools.lookupStock.run({ item: 'red shirt' }, {} as ToolContext)).toEqual({
      item: 'red shirt',
      units: 42,
    });
  });

  it('brands the skill so hosts and loaders recognise it, and freezes it', () => {
    const skill = defineSkill({ name: 'greeter', version: '1.0.0', tools: { hello: tool } });
    expect(isSkill(skill)).toBe(true);
    expect(isSkill({ ...skill })).toBe(false);
    expect(isSkill(null)).toBe(false);
    expect(Object.isFrozen(skill)).toBe(true);
    expect(Object.keys(skill)).not.toContain(Symbol.for('clawmesh.skill'));
    expect(JSON.parse(JSON.stringify(skill)).name).toBe('greeter');
  });

  it('drops duplicate secret names', () => {
    const skill = defineSkill({ name: 'a', version: '1', secrets: ['KEY', 'KEY'], tools: { hello: tool } });
    expect(skill.secrets).toEqual(['KEY']);
  });

  it.each(['my_skill', 'a__b', '1abc', '', 'with space'])('rejects the skill name %j', (name) => {
    const err = definitionError({ name, version: '1.0.0', tools: { hello: tool } });
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('skill name');
  });

  it.each(['look_up', 'a__b', '-x'])('rejects the tool name %j', (name) => {
    const err = definitionError({ name: 'ok', version: '1.0.0', tools: { [name]: tool } });
    expect(err.message).toMatch(/defineSkill\("ok"\): tool name/);
  });

  it('rejects a qualified tool name longer than models accept', () => {
    const err = definitionError({ name: 's'.repeat(40), version: '1', tools: { ['t'.repeat(30)]: tool } });
    expect(err.message).toContain('longer than 64 characters');
  });

  it.each([
    ['no tools', { name: 'x', version: '1', tools: {} }, 'at least one tool'],
    ['no version', { name: 'x', tools: { hello: tool } }, 'version'],
    [
      'no description',
      { name: 'x', version: '1', tools: { hello: { ...tool, description: '' } } },
      'description',
    ],
    [
      'an input that is not zod',
      { name: 'x', version: '1', tools: { hello: { ...tool, input: {} } } },
      'zod schema',
    ],
    [
      'no run',
      { name: 'x', version: '1', tools: { hello: { ...tool, run: 'nope' } } },
      'run must be a function',
    ],
    ['a bad timeout', { name: 'x', version: '1', timeoutMs: -1, tools: { hello: tool } }, 'timeoutMs'],
    [
      'a bad secret name',
      { name: 'x', version: '1', secrets: ['NOT-A-VAR'], tools: { hello: tool } },
      'secret',
    ],
  ])('rejects a definition with %s', (_, def, message) => {
    expect(definitionError(def).message).toContain(message);
  });
});
