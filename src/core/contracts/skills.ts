import { z } from 'zod';
import { defineContract } from '../contract.ts';

/** A tool a skill host offers, with its input as JSON Schema. */
export const ToolDescriptorSchema = z.object({
  skill: z.string(),
  tool: z.string(),
  description: z.string(),
  inputSchema: z.record(z.string(), z.unknown()),
});
export type ToolDescriptor = z.infer<typeof ToolDescriptorSchema>;

/** A tool call to run. `arguments` is what the model produced, not yet validated. */
export const InvokeRequestSchema = z.object({
  skill: z.string(),
  tool: z.string(),
  arguments: z.unknown(),
  callId: z.string().optional(),
});
export type InvokeRequest = z.infer<typeof InvokeRequestSchema>;

/**
 * The outcome of a tool call. A failure of the tool itself (bad arguments, a throw, a timeout)
 * is a result with `ok: false`, which goes back to the model; it is not a transport error.
 */
export const InvokeResultSchema = z.object({
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  durationMs: z.number().nonnegative(),
});
export type InvokeResult = z.infer<typeof InvokeResultSchema>;

/** A skill host: runs the tool calls of the skills it serves. */
export const skillsContract = defineContract({
  name: 'skills',
  version: '1.0.0',
  methods: {
    list: {
      input: z.object({ skills: z.array(z.string()).optional() }).optional(),
      output: z.object({ tools: z.array(ToolDescriptorSchema) }),
      description: 'The tools of the served skills (all, or the named ones)',
    },
    invoke: { input: InvokeRequestSchema, output: InvokeResultSchema, description: 'Runs one tool call' },
  },
});
