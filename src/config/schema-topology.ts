import { z } from 'zod';

/** The four roles a process can run; `clawmesh start` alone runs them all. */
export const ROLES = ['gateway', 'conversation', 'skills', 'models'] as const;
/** One role of a process. */
export type Role = (typeof ROLES)[number];

/**
 * One service's URLs for the `http` transport: a URL, or comma-separated URLs of its replicas
 * (`http://10.0.0.6:8084,http://10.0.0.7:8084`), each checked on its own.
 */
const serviceUrls = z.string().superRefine((value, ctx) => {
  const parts = value.split(',').map((part) => part.trim());
  if (parts.every((part) => part === '')) {
    ctx.addIssue({ code: 'custom', message: 'expected a URL, or comma-separated URLs of replicas' });
    return;
  }
  // The value is not repeated: an unparseable one may hold a password that cannot be masked.
  parts.forEach((part, index) => {
    if (part !== '' && !URL.canParse(part)) {
      const which = parts.length === 1 ? 'not a URL' : `URL ${index + 1} of ${parts.length} is not a URL`;
      ctx.addIssue({
        code: 'custom',
        message: `${which} (expected a URL, or comma-separated URLs of replicas)`,
      });
    }
  });
});

/**
 * Where services run: `local` (one process, function calls), `http` (`POST /rpc/<service>/<method>`
 * to the URL of each service) or `nats` (request-reply through the NATS services API).
 */
export const TransportConfigSchema = z
  .strictObject({
    kind: z.enum(['local', 'http', 'nats']).default('local'),
    /**
     * Base URLs of services for the `http` transport, by service name (`conversation`, `models`,
     * `skills.inventory`). The environment's `<NAME>_SERVICE_URL` (`CONVERSATION_SERVICE_URL`,
     * `SKILLS_INVENTORY_SERVICE_URL`, or `SKILLS_SERVICE_URL` for every skill) wins over these.
     */
    urls: z.record(z.string(), serviceUrls).default({}),
    /** Largest request or reply of one call, in bytes. */
    payloadLimitBytes: z
      .number()
      .int()
      .positive()
      .default(1024 * 1024),
  })
  .prefault({});

/** A server URL with a default, as written in the config or set by its variable. */
const urlWithDefault = (fallback: string) =>
  z.strictObject({ url: z.string().min(1).default(fallback) }).prefault({});

/** NATS, for the `nats` transport and the JetStream bus (`NATS_URL`). */
export const NatsConfigSchema = z
  .strictObject({
    url: z.string().min(1).default('nats://127.0.0.1:4222'),
    /**
     * The first token of every subject (`<prefix>.<service>.<method>`, `<prefix>.events.<topic>`):
     * deployments sharing one NATS server stay apart by choosing different prefixes.
     */
    subjectPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, _ or -')
      .default('clawmesh'),
    /**
     * How long a call over the `nats` transport waits without its reply or a progress message
     * (each instance sends one per second for every call it runs) before it fails `UNAVAILABLE`:
     * the replica died or hangs, and the gateway sends the message to a live one. 0 waits for
     * the call's deadline alone.
     */
    livenessMs: z
      .number()
      .int()
      .refine((ms) => ms === 0 || ms >= 2000, 'must be 0 (off) or at least 2000 ms')
      .default(3000),
  })
  .prefault({});
/** Redis, for the Redis stores, lease, bus, cache and rate limits (`REDIS_URL`). */
export const RedisConfigSchema = z
  .strictObject({
    url: z.string().min(1).default('redis://127.0.0.1:6379'),
    /** Prefix of every key and stream, so deployments can share one Redis. */
    keyPrefix: z.string().default('clawmesh:'),
    /**
     * How long a command may wait for Redis's answer, in milliseconds: a Redis that stops
     * answering without closing the connection (a hung host, a partition) fails a turn with
     * UNAVAILABLE after this long instead of holding it to its deadline.
     */
    commandTimeoutMs: z.number().int().min(100).max(600_000).default(5000),
  })
  .prefault({});
/** A PostgreSQL name the stores build table names from: lower-case letters, digits and `_`. */
const pgIdentifier = (what: string) =>
  z.string().regex(/^[a-z_][a-z0-9_]{0,47}$/, `must be lower-case letters, digits and _ (a ${what})`);

/** PostgreSQL, for the PostgreSQL stores (`DATABASE_URL`). */
export const PostgresConfigSchema = z
  .strictObject({
    url: z.string().min(1).default('postgres://postgres@127.0.0.1:5432/postgres'),
    /** The schema of the tables, created when missing; deployments sharing a database choose different ones. */
    schema: pgIdentifier('schema name').default('public'),
    /** Prepended to each table name (`clawmesh_conversations`). */
    tablePrefix: pgIdentifier('table name prefix').or(z.literal('')).default('clawmesh_'),
  })
  .prefault({});
/** RabbitMQ, for the RabbitMQ bus (`RABBITMQ_URL`). */
export const RabbitMqConfigSchema = urlWithDefault('amqp://guest:guest@127.0.0.1:5672');
