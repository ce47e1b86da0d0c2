import { z } from 'zod';

/** A non-negative count or amount. */
const positiveInt = () => z.number().int().positive();

/** One provider's shortcut settings (`models.openai`, `models.anthropic`). */
const providerShortcut = (model: string) =>
  z
    .strictObject({
      /** Enables the provider. Any non-empty value works for servers that do not check keys. */
      apiKey: z.string().optional(),
      /** The server's base URL (OpenAI-compatible: ending in `/v1`); the vendor's own when absent. */
      baseUrl: z.string().url().optional(),
      /** The model used for the bare provider name (`openai`), and in the derived `models.default`. */
      model: z.string().min(1).default(model),
      /** Longest wait for one completion; the call's remaining time may cut it shorter. */
      timeoutMs: positiveInt().default(60_000),
    })
    .prefault({});

/** The providers a deployment can use. */
export const PROVIDER_KINDS = ['openai', 'anthropic', 'local'] as const;

/**
 * A named deployment: one provider at one address with one key, serving one model. Several
 * deployments of one provider (two OpenAI keys, a vLLM and an OpenRouter) may serve one model.
 */
export const DeploymentConfigSchema = z.strictObject({
  provider: z.enum(PROVIDER_KINDS),
  /** The key; for `openai` and `anthropic`, the `models.<provider>.apiKey` when absent. */
  apiKey: z.string().optional(),
  /** The server's base URL; the `models.<provider>.baseUrl` (or the vendor's) when absent. */
  baseUrl: z.string().url().optional(),
  /** The provider's model name; the `models.<provider>.model` when absent. */
  model: z.string().min(1).optional(),
  /** Longest wait for one completion through this deployment, in milliseconds. */
  timeoutMs: positiveInt().optional(),
});
export type DeploymentConfig = z.infer<typeof DeploymentConfigSchema>;

const ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * One routing rule: when every condition given matches, the request goes to `tier`. Rules are
 * tried in order; the first match wins.
 */
export const RoutingRuleSchema = z.strictObject({
  /** The agent id the request comes from. */
  agent: z.string().optional(),
  /** The channel the request comes from (`api`, `telegram`, …). */
  channel: z.string().optional(),
  /** A regular expression (case-insensitive) tested on the last user message. */
  pattern: z
    .string()
    .refine(
      (source) => {
        try {
          new RegExp(source, 'i');
          return true;
        } catch {
          return false;
        }
      },
      { message: 'not a valid regular expression' },
    )
    .optional(),
  /** Matches when the estimated difficulty (0-1) is at least this. */
  minDifficulty: z.number().min(0).max(1).optional(),
  /** Matches when the estimated difficulty (0-1) is below this. */
  maxDifficulty: z.number().min(0).max(1).optional(),
  /** The tier to use. */
  tier: z.string().min(1),
});
export type RoutingRule = z.infer<typeof RoutingRuleSchema>;

/** Token and/or cost limits of one budget. */
const LimitSchema = z
  .strictObject({
    /** Input plus output tokens. */
    tokens: positiveInt().optional(),
    /** Cost in US dollars, from `models.prices`. */
    costUsd: z.number().positive().optional(),
  })
  .optional();

/**
 * The `models` key of the configuration: providers, named deployments, tiers and routing,
 * resilience, cache, prices and budgets. With nothing set, every request goes to `local`; with
 * `OPENAI_API_KEY` (or `ANTHROPIC_API_KEY`) the default model is that provider's.
 */
export const ModelsConfigSchema = z
  .strictObject({
    /**
     * The target of requests that name none and are not routed to a tier: `provider/model`, a
     * bare provider, a deployment id or a tier. `openai/<model>` when `models.openai.apiKey` is
     * set, else `anthropic/<model>` when `models.anthropic.apiKey` is, else `local`.
     */
    default: z.string().min(1).optional(),
    openai: providerShortcut('gpt-4o-mini'),
    anthropic: providerShortcut('claude-3-5-haiku-latest'),
    /** Named deployments, by id (letters, digits, `.`, `_`, `-`). */
    deployments: z
      .record(
        z.string().regex(ID, 'a deployment id is 1-64 letters, digits or . _ -'),
        DeploymentConfigSchema,
      )
      .default({}),
    /**
     * Tiers, by name: an ordered fallback chain of `provider/model` or deployment ids. `fast` and
     * `capable` default to `[models.default]`.
     */
    tiers: z
      .record(
        z.string().regex(ID, 'a tier name is 1-64 letters, digits or . _ -'),
        z.array(z.string().min(1)).min(1),
      )
      .default({}),
    routing: z
      .strictObject({
        /** Rules tried in order before the difficulty estimate. */
        rules: z.array(RoutingRuleSchema).default([]),
        /**
         * Route requests that name no model by difficulty when no rule matches: `capable` at or
         * above `difficultyThreshold`, else `fast`. Off: they go to `models.default`.
         */
        auto: z.boolean().default(true),
        /** The difficulty (0-1) from which the `capable` tier is used. */
        difficultyThreshold: z.number().min(0).max(1).default(0.5),
      })
      .prefault({}),
    resilience: z
      .strictObject({
        timeouts: z
          .strictObject({
            /** Time to connect to the provider. */
            connectMs: positiveInt().default(10_000),
            /** Time to the first byte or token of the answer. */
            firstTokenMs: positiveInt().default(30_000),
            /** Time for the whole completion; a deployment's `timeoutMs` may only make its own shorter. */
            totalMs: positiveInt().default(60_000),
          })
          .prefault({}),
        retries: z
          .strictObject({
            /** Retries of one deployment on network errors and 5xx (a 429 moves on at once). */
            max: z.number().int().min(0).max(10).default(2),
            /** First backoff delay; doubled each retry, with full jitter. */
            baseDelayMs: positiveInt().default(200),
            /** Longest backoff delay. */
            maxDelayMs: positiveInt().default(5000),
          })
          .prefault({}),
        breaker: z
          .strictObject({
            /** Consecutive failures that open a deployment's circuit. */
            failureThreshold: positiveInt().default(5),
            /** How long an open circuit waits before a half-open probe. */
            cooldownMs: positiveInt().default(30_000),
          })
          .prefault({}),
      })
      .prefault({}),
    cache: z
      .strictObject({
        /** Answer exact repeats from the cache. */
        enabled: z.boolean().default(false),
        /** `memory` (in-process LRU) or `redis` (shared, at `redis.url`). */
        kind: z.enum(['memory', 'redis']).default('memory'),
        /** How long an answer is kept. */
        ttlSeconds: positiveInt().default(300),
        /** The most answers kept in memory. */
        maxEntries: positiveInt().default(1000),
        /** The most bytes of answers kept in memory (also the largest single answer cached). */
        maxBytes: positiveInt().default(16 * 1024 * 1024),
        /** Also cache requests with a temperature above 0 (their answers vary by design). */
        cacheNonZeroTemperature: z.boolean().default(false),
      })
      .prefault({}),
    /** Prices per model (`provider/model`, or a bare model name), in US dollars per 1M tokens. */
    prices: z
      .record(z.string().min(1), z.strictObject({ input: z.number().min(0), output: z.number().min(0) }))
      .default({}),
    budgets: z
      .strictObject({
        /** Per user and UTC day; resets at 00:00 UTC. */
        perUserDaily: LimitSchema,
        /** Per conversation, for its whole life. */
        perConversation: LimitSchema,
        /** Where usage is counted: `memory` (this process) or `redis` (shared by replicas). */
        store: z.enum(['memory', 'redis']).default('memory'),
      })
      .prefault({}),
    /**
     * A cap on `POST /v1/chat/completions`: `points` requests per `durationSeconds`, per API key
     * (and per `user` field when a request has one). Off unless set: the budgets bound usage.
     */
    /**
     * Hand the `user` and `safety_identifier` fields of `POST /v1/chat/completions` to the
     * provider, for its abuse monitoring: OpenAI-compatible upstreams get them as sent, Anthropic
     * `metadata.user_id` (`user`, else `safety_identifier`).
     * Off by default (it may identify people to a third party). Budgets and the rate limit count
     * by it either way.
     */
    forwardUser: z.boolean().default(false),
    apiRateLimit: z
      .strictObject({
        points: z.number().int().positive(),
        durationSeconds: z.number().int().positive().default(60),
      })
      .optional(),
  })
  .prefault({})
  .transform((models) => ({
    ...models,
    default:
      models.default ??
      (models.openai.apiKey
        ? `openai/${models.openai.model}`
        : models.anthropic.apiKey
          ? `anthropic/${models.anthropic.model}`
          : 'local'),
  }));

/** The validated `models` configuration. */
export type ModelsConfig = z.infer<typeof ModelsConfigSchema>;
