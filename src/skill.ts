/**
 * The public entry for skill authors: `clawmesh/skill`.
 *
 * @example
 * import { defineSkill, z } from 'clawmesh/skill';
 *
 * export default defineSkill({
 *   name: 'weather',
 *   version: '1.0.0',
 *   secrets: ['WEATHER_API_KEY'],
 *   tools: {
 *     forecast: {
 *       description: 'The weather forecast for a city',
 *       input: z.object({ city: z.string().min(1) }),
 *       run: async ({ city }, ctx) => ({ city, summary: `Sunny in ${city}` }),
 *     },
 *   },
 * });
 */

// Defining skills

export { defineSkill, isSkill } from './skills/define.ts';

// Schemas (the same zod the host validates with)

export { z } from 'zod';

// Errors a tool may throw: the code goes back to the model with the message

export { ClawmeshError } from './core/errors.ts';

// Types

export type { ErrorCode } from './core/errors.ts';
export type {
  Skill,
  SkillDefinition,
  ToolContext,
  ToolDefinition,
  ToolDefinitions,
  ToolSchemas,
} from './skills/define.ts';
