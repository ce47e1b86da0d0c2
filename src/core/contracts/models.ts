import { z } from 'zod';
import { defineContract } from '../contract.ts';
import { ChatMessageSchema, ToolCallSchema, ToolSpecSchema } from '../messages.ts';

/** The longest model name a request may give: real ones are under a hundred characters. */
export const MAX_MODEL_NAME = 256;

/** A completion request, the same for every provider. */
export const ModelRequestSchema = z.object({
  /** `provider/model` (e.g. `openai/gpt-4o-mini`) or a bare provider (`local`); the default when absent. */
  model: z.string().max(MAX_MODEL_NAME).optional(),
  messages: z.array(ChatMessageSchema).min(1),
  tools: z.array(ToolSpecSchema).optional(),
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: z.number().int().positive().optional(),
  /** Nucleus sampling: only the tokens of this top probability mass (0-1). */
  topP: z.number().min(0).max(1).optional(),
  /** A seed for (best-effort) reproducible sampling, where the provider takes one. */
  seed: z.number().int().optional(),
  /** Penalizes tokens by how often they already appear (-2 to 2), where the provider takes it. */
  frequencyPenalty: z.number().min(-2).max(2).optional(),
  /** Penalizes tokens that already appear at all (-2 to 2), where the provider takes it. */
  presencePenalty: z.number().min(-2).max(2).optional(),
  /**
   * Which tool the model must call: `auto` (its choice, the default), `required` (some tool),
   * one tool by name, or `none` (no call, though the tools stay defined: a history with tool
   * calls needs them on some APIs). Meaningful only with `tools`.
   */
  toolChoice: z
    .union([z.enum(['auto', 'required', 'none']), z.object({ name: z.string().min(1) })])
    .optional(),
  /** `false`: at most one tool call per answer. Meaningful only with `tools`. */
  parallelToolCalls: z.boolean().optional(),
  /** Up to four sequences at which the model stops; none of them is part of the answer. */
  stop: z.array(z.string().min(1)).min(1).max(4).optional(),
  /** The answer's form: a JSON object, or JSON matching a schema; plain text when absent. */
  responseFormat: z
    .union([
      z.object({ type: z.literal('json_object') }),
      z.object({
        type: z.literal('json_schema'),
        name: z.string().min(1),
        description: z.string().optional(),
        schema: z.record(z.string(), z.unknown()).optional(),
        strict: z.boolean().optional(),
      }),
    ])
    .optional(),
  /**
   * How much the model reasons before it answers, where the provider takes it (OpenAI's
   * `reasoning_effort`; Anthropic's `output_config.effort`).
   */
  reasoningEffort: z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max']).optional(),
  /**
   * How long or terse the answer should be, where the provider takes it (OpenAI's `verbosity`).
   */
  verbosity: z.enum(['low', 'medium', 'high']).optional(),
  /**
   * Token ids of the provider's tokenizer to favour or ban (-100 to 100; OpenAI's `logit_bias`).
   * A provider that cannot honour it refuses the request.
   */
  logitBias: z.record(z.string(), z.number().min(-100).max(100)).optional(),
  /**
   * The end user's id to hand the provider for its abuse monitoring (OpenAI's `user`,
   * Anthropic's `metadata.user_id`). Set only when the operator forwards it
   * (`models.forwardUser`); accounting reads the call context's `userId`, never this.
   */
  user: z.string().max(256).optional(),
  /**
   * A stable (hashed) id of the end user, OpenAI's newer field for the same purpose
   * (`safety_identifier`; Anthropic's `metadata.user_id` when `user` is absent). Set, like `user`,
   * only when the operator forwards it.
   */
  safetyIdentifier: z.string().max(256).optional(),
});
export type ModelRequest = z.infer<typeof ModelRequestSchema>;

/** Token usage as the provider reported it. */
export const UsageSchema = z.object({
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
});
export type Usage = z.infer<typeof UsageSchema>;

/** How the Model Gateway chose the model of a request. */
export const RouteSchema = z.object({
  /** `exact` (the request named a model), `tier` (it named a tier), `rule`, `difficulty` or `default`. */
  by: z.enum(['exact', 'tier', 'rule', 'difficulty', 'default']),
  /** Why, in words: `rule 1 (channel telegram) → tier capable`, `difficulty 0.62 ≥ 0.5 (code) → tier capable`. */
  reason: z.string(),
  /** The estimated difficulty (0-1), when it was computed. */
  difficulty: z.number().min(0).max(1).optional(),
});
export type Route = z.infer<typeof RouteSchema>;

/** A completion: text and/or tool calls, with usage and the model that answered. */
export const ModelResponseSchema = z.object({
  content: z.string(),
  toolCalls: z.array(ToolCallSchema).default([]),
  finishReason: z.enum(['stop', 'tool_calls', 'length', 'content_filter', 'error']),
  usage: UsageSchema,
  /** `provider/model` that answered. */
  model: z.string(),
  latencyMs: z.number().nonnegative(),
  /** Whether the answer came from the gateway's cache (no provider was called). */
  cached: z.boolean().optional(),
  /** The tier the request was routed to, when it was. */
  tier: z.string().optional(),
  /** How the gateway chose the model, and why. */
  route: RouteSchema.optional(),
  /** The deployment that answered (a deployment id, or `provider/model`). */
  deployment: z.string().optional(),
  /** Whether a deployment other than the first of the chain answered. */
  fallbackUsed: z.boolean().optional(),
  /** Provider calls made for this answer, retries and fallbacks included (0 for a cache hit). */
  attempts: z.number().int().nonnegative().optional(),
  /** Cost in US dollars from the configured prices, when the model's price is known (0 for a cache hit). */
  costUsd: z.number().nonnegative().optional(),
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
      output: z.object({
        default: z.string(),
        models: z.array(z.string()),
        /** Tiers and their fallback chains of `provider/model`, in order. */
        tiers: z.array(z.object({ name: z.string(), models: z.array(z.string()) })).optional(),
      }),
      description: 'The models this gateway can route to',
    },
  },
});
