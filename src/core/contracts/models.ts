import { z } from 'zod';
import { defineContract } from '../contract.ts';
import { ChatMessageSchema, ToolCallSchema, ToolSpecSchema } from '../messages.ts';

/** A completion request, the same for every provider. */
export const ModelRequestSchema = z.object({
  /** `provider/model` (e.g. `openai/gpt-4o-mini`) or a bare provider (`local`); the default when absent. */
  model: z.string().optional(),
  messages: z.array(ChatMessageSchema).min(1),
  tools: z.array(ToolSpecSchema).optional(),
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: z.number().int().positive().optional(),
});
export type ModelRequest = z.infer<typeof ModelRequestSchema>;

/** Token usage as the provider reported it. */
export const UsageSchema = z.object({
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
});
export type Usage = z.infer<typeof UsageSchema>;

/** A completion: text and/or tool calls, with usage and the model that answered. */
export const ModelResponseSchema = z.object({
  content: z.string(),
  toolCalls: z.array(ToolCallSchema).default([]),
  finishReason: z.enum(['stop', 'tool_calls', 'length', 'content_filter', 'error']),
  usage: UsageSchema,
  /** `provider/model` that answered. */
  model: z.string(),
  latencyMs: z.number().nonnegative(),
});
export type ModelResponse = z.infer<typeof ModelResponseSchema>;

/** The Model Gateway: the one door to every LLM. */
export const modelsContract = defineContract({
  name: 'models',
  version: '1.0.0',
  methods: {
    complete: { input: ModelRequestSchema, output: ModelResponseSchema, description: 'One completion' },
    list: {
      input: z.object({}).optional(),
      output: z.object({ default: z.string(), models: z.array(z.string()) }),
      description: 'The models this gateway can route to',
    },
  },
});
