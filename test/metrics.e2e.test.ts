import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';

/*
 * Every role's `/metrics`, parsed with a Prometheus text-format parser after one message went
 * through a deployment split over NATS (each role its own Clawmesh, in this process): the names
 * follow Prometheus conventions and each role exposes the metrics of what it runs.
 */

/** One metric family as parse-prometheus-text-format returns it (prom2json's shape). */
interface Family {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  metrics: {
    value?: string;
    labels?: Record<string, string>;
    buckets?: Record<string, string>;
    count?: string;
    sum?: string;
  }[];
}
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (
  text: string,
) => Family[];

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `metrics${randomBytes(4).toString('hex')}`;
const roles = ['models', 'skills', 'conversation', 'gateway'] as const;
const apps = new Map<string, TestApp>();

/** The parsed families of a `/metrics` page, by name, with the page's text. */
type Scraped = Map<string, Family> & { text?: string };

async function scrape(app: TestApp): Promise<Scraped> {
  const response = await fetch(`${app.url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await response.text();
  const families: Scraped = new Map(parsePrometheus(text).map((family) => [family.name, family]));
  families.text = text;
  return families;
}

/**
 * The value of a counter or gauge — for a histogram, its count — summed over the samples whose
 * labels include `labels`. The parser drops the labels of a histogram's `_count` lines, so
 * those are read from the text.
 */
function sampleValue(families: Scraped, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name);
  if (!family) throw new Error(`no metric ${name}`);
  if (family.type === 'HISTOGRAM') {
    let total = 0;
    for (const line of (families.text ?? '').split('\n')) {
      const match = new RegExp(`^${name}_count(?:\\{(.*)\\})? (\\S+)$`).exec(line);
      if (!match) continue;
      const pairs = Object.fromEntries(
        [...(match[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
      );
      if (Object.entries(labels).every(([key, value]) => pairs[key] === value)) total += Number(match[2]);
    }
    return total;
  }
  return family.metrics
    .filter((m) => Object.entries(labels).every(([key, value]) => m.labels?.[key] === value))
    .reduce((total, m) => total + Number(m.value ?? 0), 0);
}

const BASE_UNITS = /_(seconds|bytes|total|usd_total|ratio|info)$/;

/** Checks every family against the Prometheus naming conventions. */
function checkConventions(families: Scraped): void {
  for (const family of families.values()) {
    const { name, type } = family;
    expect(name, name).toMatch(/^clawmesh_[a-z][a-z0-9_]*[a-z0-9]$/);
    expect(family.help, `${name} has help`).not.toBe('');
    // Base units only: no milliseconds, kilobytes, minutes.
    expect(name, name).not.toMatch(
      /_(ms|milliseconds|microseconds|kb|kilobytes|mb|minutes|hours|percent)(_|$)/,
    );
    if (type === 'COUNTER') expect(name, `${name} is a counter`).toMatch(/_total$/);
    else expect(name, `${name} is a ${type.toLowerCase()}, not a counter`).not.toMatch(/_total$/);
    if (type === 'HISTOGRAM' || type === 'SUMMARY') {
      expect(name, `${name} measures in a base unit`).toMatch(/_(seconds|bytes)$/);
    }
    expect(['COUNTER', 'GAUGE', 'HISTOGRAM', 'SUMMARY']).toContain(type);
    if (BASE_UNITS.test(name) && type === 'GAUGE') expect(name).not.toMatch(/_total$/);
  }
}

beforeAll(async () => {
  const shared = {
    transport: { kind: 'nats' },
    nats: { subjectPrefix: prefix },
    redis: { url: REDIS_URL, keyPrefix: `${prefix}:` },
    skills: { load: ['inventory'] },
    gateway: { port: 0, rateLimit: { points: 1000, durationSeconds: 60 } },
  };
  for (const role of roles) apps.set(role, await startTestApp({ ...shared, roles: [role] }));
}, 60_000);

afterAll(async () => {
  for (const app of [...apps.values()].reverse()) await app.stop();
  const redis = createClient({ url: REDIS_URL });
  await redis.connect();
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
    if (keys.length > 0) await redis.del(keys);
  }
  await redis.close();
});

describe('/metrics of every role', () => {
  it('follows Prometheus conventions and exposes each role its own metrics after a turn', async () => {
    const reply = await apps.get('gateway')!.post('/v1/messages', {
      userId: 'metered',
      text: 'how many red shirts are in stock?',
    });
    expect(reply.status).toBe(200);
    expect(reply.body.toolCalls[0]).toMatchObject({ skill: 'inventory', ok: true });
    // Consumers (the audit log) run after the reply.
    await apps.get('conversation')!.app.services.bus.drain();

    const scraped = new Map<string, Scraped>();
    for (const role of roles) {
      const families = await scrape(apps.get(role)!);
      checkConventions(families);
      // Process metrics in every role.
      expect(families.get('clawmesh_process_cpu_seconds_total')?.type).toBe('COUNTER');
      expect(families.get('clawmesh_process_resident_memory_bytes')?.type).toBe('GAUGE');
      expect(families.get('clawmesh_nodejs_eventloop_lag_seconds')?.type).toBe('GAUGE');
      scraped.set(role, families);
    }

    const gateway = scraped.get('gateway')!;
    const nats = { transport: 'nats' };
    expect(
      sampleValue(gateway, 'clawmesh_http_requests_total', { route: '/v1/messages', status: '200' }),
    ).toBe(1);
    expect(
      sampleValue(gateway, 'clawmesh_rpc_requests_total', {
        service: 'conversation',
        method: 'handle',
        ...nats,
      }),
    ).toBe(1);
    expect(gateway.get('clawmesh_rpc_duration_seconds')?.type).toBe('HISTOGRAM');
    expect(
      sampleValue(gateway, 'clawmesh_rpc_duration_seconds', { service: 'conversation', method: 'handle' }),
    ).toBe(1);
    expect(gateway.get('clawmesh_rpc_errors_total')?.type).toBe('COUNTER');
    // A gateway runs no turns and no models: those families are not listed there.
    for (const name of [
      'clawmesh_turns_total',
      'clawmesh_model_requests_total',
      'clawmesh_tool_calls_total',
    ]) {
      expect(gateway.has(name), name).toBe(false);
    }

    const conversation = scraped.get('conversation')!;
    expect(sampleValue(conversation, 'clawmesh_turns_total', { agent: 'default', outcome: 'ok' })).toBe(1);
    expect(conversation.get('clawmesh_turn_duration_seconds')?.type).toBe('HISTOGRAM');
    expect(sampleValue(conversation, 'clawmesh_turn_duration_seconds', { agent: 'default' })).toBe(1);
    expect(conversation.get('clawmesh_active_conversations')?.type).toBe('GAUGE');
    expect(sampleValue(conversation, 'clawmesh_active_conversations')).toBe(0);
    expect(conversation.get('clawmesh_active_turns')?.type).toBe('GAUGE');
    // Both sides of the hops: the turn it handled, the calls it made.
    expect(
      sampleValue(conversation, 'clawmesh_rpc_server_requests_total', {
        service: 'conversation',
        method: 'handle',
        ...nats,
      }),
    ).toBe(1);
    expect(conversation.get('clawmesh_rpc_server_duration_seconds')?.type).toBe('HISTOGRAM');
    expect(
      sampleValue(conversation, 'clawmesh_rpc_requests_total', {
        service: 'models',
        method: 'complete',
        ...nats,
      }),
    ).toBe(2);
    expect(
      sampleValue(conversation, 'clawmesh_rpc_requests_total', {
        service: 'skills.inventory',
        method: 'invoke',
        ...nats,
      }),
    ).toBe(1);
    // The event bus: published, consumed (the audit log), lag, dead letters.
    expect(
      sampleValue(conversation, 'clawmesh_events_published_total', {
        topic: 'message.received',
        outcome: 'ok',
      }),
    ).toBe(1);
    expect(
      sampleValue(conversation, 'clawmesh_bus_events_consumed_total', {
        topic: 'response.generated',
        group: 'audit',
        outcome: 'ok',
      }),
    ).toBe(1);
    expect(conversation.get('clawmesh_bus_consume_lag_seconds')?.type).toBe('HISTOGRAM');
    expect(conversation.get('clawmesh_bus_dead_letters_total')?.type).toBe('COUNTER');
    expect(conversation.has('clawmesh_model_requests_total')).toBe(false);

    const skills = scraped.get('skills')!;
    expect(
      sampleValue(skills, 'clawmesh_tool_calls_total', {
        skill: 'inventory',
        tool: 'lookupStock',
        outcome: 'ok',
      }),
    ).toBe(1);
    expect(
      sampleValue(skills, 'clawmesh_rpc_server_requests_total', {
        service: 'skills.inventory',
        method: 'invoke',
        ...nats,
      }),
    ).toBe(1);
    expect(skills.has('clawmesh_turns_total')).toBe(false);

    const models = scraped.get('models')!;
    expect(
      sampleValue(models, 'clawmesh_rpc_server_requests_total', {
        service: 'models',
        method: 'complete',
        ...nats,
      }),
    ).toBe(2);
    expect(sampleValue(models, 'clawmesh_model_requests_total', { outcome: 'ok' })).toBe(2);
    expect(sampleValue(models, 'clawmesh_model_tokens_total', { direction: 'input' })).toBeGreaterThan(0);
    expect(models.get('clawmesh_model_latency_seconds')?.type).toBe('HISTOGRAM');
    for (const name of [
      'clawmesh_model_cost_usd_total',
      'clawmesh_model_cache_lookups_total',
      'clawmesh_model_fallbacks_total',
      'clawmesh_model_errors_total',
    ]) {
      expect(models.get(name)?.type, name).toBe('COUNTER');
    }
    expect(models.get('clawmesh_model_circuit_open')?.type).toBe('GAUGE');
    expect(sampleValue(models, 'clawmesh_model_circuit_open')).toBe(0);
  }, 30_000);
});

describe('histogram buckets', () => {
  /** The largest finite bucket bound of a histogram family, in its unit (seconds). */
  function topBucket(families: Scraped, name: string): number {
    const bounds = [...(families.text ?? '').matchAll(new RegExp(`^${name}_bucket\\{.*le="([^"]+)"`, 'gm'))]
      .map((m) => Number(m[1]))
      .filter(Number.isFinite);
    expect(bounds.length, `${name} has buckets`).toBeGreaterThan(0);
    return Math.max(...bounds);
  }

  it('places a turn, a hop and a model call that run up to their default deadlines in a finite bucket', async () => {
    const reply = await apps.get('gateway')!.post('/v1/messages', { userId: 'bucketed', text: 'hello' });
    expect(reply.status).toBe(200);
    const { config } = apps.get('conversation')!.app;
    const turnSeconds = config.agents[0]!.turnTimeoutMs / 1000;
    const modelSeconds = config.models.openai.timeoutMs / 1000;
    // A slower turn than the top bound falls in +Inf, and histogram_quantile reads it as that
    // bound: the dashboard's p99 of a 50 s turn would say 30 s.
    const conversation = await scrape(apps.get('conversation')!);
    expect(topBucket(conversation, 'clawmesh_turn_duration_seconds')).toBeGreaterThanOrEqual(turnSeconds);
    expect(topBucket(conversation, 'clawmesh_rpc_server_duration_seconds')).toBeGreaterThanOrEqual(
      turnSeconds,
    );
    const gateway = await scrape(apps.get('gateway')!);
    expect(topBucket(gateway, 'clawmesh_rpc_duration_seconds')).toBeGreaterThanOrEqual(turnSeconds);
    const models = await scrape(apps.get('models')!);
    expect(topBucket(models, 'clawmesh_model_latency_seconds')).toBeGreaterThanOrEqual(modelSeconds);
  }, 30_000);
});

describe('metrics.enabled: false', () => {
  it('still answers /metrics, with the process metrics only: no family of the turn path', async () => {
    const app = await startTestApp({ metrics: { enabled: false } });
    try {
      const reply = await app.post('/v1/messages', {
        userId: 'quiet',
        text: 'how many red shirts are in stock?',
      });
      expect(reply.status).toBe(200);
      await app.app.services.bus.drain();
      const families = await scrape(app);
      checkConventions(families);
      // Every family listed is a process metric: no HELP and TYPE lines of empty ones.
      expect([...families.keys()].filter((name) => !/^clawmesh_(process|nodejs)_/.test(name))).toEqual([]);
      expect(families.text).not.toContain('clawmesh_turns_total');
      expect(families.size).toBeGreaterThan(10);
      expect(sampleValue(families, 'clawmesh_process_cpu_seconds_total')).toBeGreaterThan(0);
      expect(sampleValue(families, 'clawmesh_process_resident_memory_bytes')).toBeGreaterThan(0);
    } finally {
      await app.stop();
    }
  });
});
