import { z } from 'zod';
import { ChannelsConfigSchema } from './schema-channels.ts';
import { ModelsConfigSchema } from './schema-models.ts';
import {
  NatsConfigSchema,
  PostgresConfigSchema,
  RabbitMqConfigSchema,
  RedisConfigSchema,
  ROLES,
  TransportConfigSchema,
} from './schema-topology.ts';

/** One agent: who it is, which model and skills it uses, and how it runs turns. */
export const AgentConfigSchema = z.strictObject({
  /** Unique id; messages route to it by `agentId`. */
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits or . _ -'),
  /** The display name the agent uses for itself. */
  name: z.string().default('Clawmesh'),
  /** The system prompt, first in every model request. */
  systemPrompt: z
    .string()
    .default('You are a helpful assistant. Use the tools you are given when they help answer the question.'),
  /** `provider/model` or a bare provider; the models default when absent. */
  model: z.string().optional(),
  /** Names of the skills this agent may use; all loaded skills when absent. */
  skills: z.array(z.string()).optional(),
  /** The most model ↔ tool round trips of one turn. */
  maxSteps: z.number().int().min(1).max(50).default(6),
  /** Token budget of the context window sent to the model. */
  contextTokens: z.number().int().min(256).default(8000),
  /** The whole turn's time budget, in milliseconds. */
  turnTimeoutMs: z.number().int().positive().default(60_000),
});
export type AgentConfig = z.infer<typeof AgentConfigSchema>;

/** A plugin entry: a path or package name, or an object with overrides. */
export const PluginEntrySchema = z.union([
  z.string().min(1),
  z.strictObject({
    path: z.string().min(1),
    priority: z.number().optional(),
    timeoutMs: z.number().int().positive().optional(),
    options: z.record(z.string(), z.unknown()).optional(),
  }),
]);

/**
 * The whole configuration (`clawmesh.config.yaml`). Every key can be overridden from the
 * environment: `CLAWMESH_<PATH>` with `__` between levels (`CLAWMESH_GATEWAY__PORT=9000`),
 * plus the shortcuts listed in `docs/configuration.md` (`PORT`, `OPENAI_API_KEY`, …).
 */
export const ConfigSchema = z.strictObject({
  gateway: z
    .strictObject({
      /** HTTP port of the API, health and metrics. */
      port: z.number().int().min(0).max(65535).default(8080),
      /** Interface to listen on; forced to 127.0.0.1 while no API key is configured. */
      host: z.string().default('0.0.0.0'),
      /** Bearer keys accepted by the HTTP API. None: the API is open, on loopback only. */
      apiKeys: z.array(z.string().min(8, 'an API key needs at least 8 characters')).default([]),
      /** Largest request body, in bytes (413 above it). */
      bodyLimitBytes: z
        .number()
        .int()
        .positive()
        .default(64 * 1024),
      /** Per-user rate limit: `points` messages per `durationSeconds` on `POST /v1/messages`. */
      rateLimit: z
        .strictObject({
          points: z.number().int().positive().default(60),
          durationSeconds: z.number().int().positive().default(60),
        })
        .prefault({}),
      /**
       * Split deployments: the longest wait for one attempt of a turn, in milliseconds. A
       * conversation replica that died mid-turn never answers; after this the gateway sends the
       * message again (the conversation role runs each message once).
       */
      attemptTimeoutMs: z.number().int().positive().default(15_000),
      /** How long an `Idempotency-Key` and its reply are remembered, in seconds. */
      idempotencyTtlSeconds: z
        .number()
        .int()
        .positive()
        .default(24 * 3600),
    })
    .prefault({}),
  agents: z
    .array(AgentConfigSchema)
    .min(1)
    .default([{ id: 'default' }].map((agent) => AgentConfigSchema.parse(agent))),
  /** The agent a message goes to when it names none; the first agent when absent. */
  defaultAgent: z.string().optional(),
  skills: z
    .strictObject({
      /** Skills to load: built-in example names (`inventory`, `support`), paths or package names. */
      load: z.array(z.string().min(1)).default(['inventory', 'support']),
      /** Default timeout of one tool call, in milliseconds. */
      timeoutMs: z.number().int().positive().default(10_000),
      /** Secrets per skill, by skill name; each skill also reads its declared names from the environment. */
      secrets: z.record(z.string(), z.record(z.string(), z.string())).default({}),
    })
    .prefault({}),
  /** LLM providers, deployments, tiers and routing, resilience, cache, prices, budgets (schema-models.ts). */
  models: ModelsConfigSchema,
  /** Plugins to load, in addition to `CLAWMESH_PLUGINS`. */
  plugins: z.array(PluginEntrySchema).default([]),
  /** Default timeout of one plugin hook, in milliseconds. */
  pluginTimeoutMs: z.number().int().positive().default(1000),
  store: z
    .strictObject({
      kind: z.enum(['memory', 'sqlite', 'redis', 'postgres']).default('sqlite'),
      /** The SQLite file. */
      path: z.string().default('./data/clawmesh.db'),
      /** Run SQLite in a worker thread, off the event loop (see docs/configuration.md). */
      thread: z.boolean().default(false),
      /**
       * The turn lease of a conversation: `memory` (one process), `redis` (across processes).
       * `auto` picks redis when the store or the transport is shared, else memory.
       */
      lease: z.enum(['auto', 'memory', 'redis']).default('auto'),
      /** How long a turn lease lasts without renewal, in milliseconds (it renews every third of it). */
      leaseTtlMs: z.number().int().min(100).default(10_000),
    })
    .prefault({}),
  bus: z
    .strictObject({
      kind: z.enum(['memory', 'redis', 'nats', 'rabbitmq']).default('memory'),
      /** Tries of one event before it goes to `<topic>.dead-letter`. */
      maxAttempts: z.number().int().min(1).max(100).default(5),
      /**
       * Where a process with a broker keeps the events the broker has not taken yet (a file per
       * process, named after its roles), so that stopping or dying during an outage loses none;
       * `false` keeps them in memory only.
       */
      spoolDir: z.union([z.literal(false), z.string().min(1)]).default('./data/spool'),
    })
    .prefault({}),
  /** The roles this process runs (`clawmesh start <role>…` sets it); all four when absent. */
  roles: z
    .array(z.enum(ROLES))
    .min(1)
    .default([...ROLES]),
  transport: TransportConfigSchema,
  nats: NatsConfigSchema,
  redis: RedisConfigSchema,
  postgres: PostgresConfigSchema,
  rabbitmq: RabbitMqConfigSchema,
  /** Messaging channels (Telegram, Slack, Discord, WhatsApp, web chat), bindings, delivery (schema-channels.ts). */
  channels: ChannelsConfigSchema,
  audit: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** JSON lines file the audit consumer appends every event to. */
      path: z.string().default('./data/audit.jsonl'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** Keep message texts (`text`, `content` fields) in log lines; redacted by default. */
      includeText: z.boolean().default(false),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      /**
       * Record metrics on the turn path (calls, turns, tools, models, events). Off: `/metrics`
       * still answers, with process metrics only.
       */
      enabled: z.boolean().default(true),
    })
    .prefault({}),
  /** On SIGTERM, how long turns in flight may take to finish, in milliseconds. */
  shutdownTimeoutMs: z.number().int().positive().default(30_000),
});

/** The validated configuration. */
export type Config = z.infer<typeof ConfigSchema>;
/** The configuration as written, before defaults. */
export type ConfigInput = z.input<typeof ConfigSchema>;
