import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The Prometheus metrics of one Clawmesh process. */
export interface Metrics {
  readonly registry: Registry;
  /** Turns finished, by agent and outcome (`ok`, `dropped`, `error`). */
  readonly turns: Counter<'agent' | 'outcome'>;
  /** Turn duration in seconds, by agent. */
  readonly turnDuration: Histogram<'agent'>;
  /** Turns running now. */
  readonly activeTurns: Gauge;
  /** Conversations with a turn running or waiting; read at scrape time from {@link Metrics.conversationCounts}. */
  readonly activeConversations: Gauge;
  /** Sources of {@link Metrics.activeConversations} (each Conversation Manager of the process). */
  readonly conversationCounts: Set<() => number>;
  /** Calls this process made to a service, in seconds, by service, method and transport (the hop). */
  readonly rpcDuration: Histogram<'service' | 'method' | 'transport'>;
  /** Calls this process made to a service, by service, method and transport. */
  readonly rpcRequests: Counter<'service' | 'method' | 'transport'>;
  /** Calls this process made that failed, by service, method, transport and error code. */
  readonly rpcErrors: Counter<'service' | 'method' | 'transport' | 'code'>;
  /** Calls this process handled, in seconds, by service, method and transport. */
  readonly rpcServerDuration: Histogram<'service' | 'method' | 'transport'>;
  /** Calls this process handled, by service, method and transport. */
  readonly rpcServerRequests: Counter<'service' | 'method' | 'transport'>;
  /** Calls this process handled that failed, by service, method, transport and error code. */
  readonly rpcServerErrors: Counter<'service' | 'method' | 'transport' | 'code'>;
  /** Events handed to this process's consumers, by topic, consumer group and outcome (`ok`, `error`). */
  readonly busConsumed: Counter<'topic' | 'group' | 'outcome'>;
  /** Seconds from an event's publication to a consumer starting on it, by topic and group. */
  readonly busConsumeLag: Histogram<'topic' | 'group'>;
  /** Events a consumer of this process failed on its last try (sent to the dead-letter topic). */
  readonly busDeadLetters: Counter<'topic' | 'group'>;
  /** Tool calls, by skill, tool and outcome (`ok`, `error`). */
  readonly toolCalls: Counter<'skill' | 'tool' | 'outcome'>;
  /** Model tokens, by model and direction (`input`, `output`). */
  readonly modelTokens: Counter<'model' | 'direction'>;
  /** Plugin hooks that threw or timed out, by plugin, hook and reason (`error`, `timeout`). */
  readonly pluginFailures: Counter<'plugin' | 'hook' | 'reason'>;
  /** Events published, by topic and outcome (`ok`, `error`); `ok` is read from {@link Metrics.eventCounts}. */
  readonly eventsPublished: Counter<'topic' | 'outcome'>;
  /** Events handed to the bus, by topic: a plain map the hot path bumps, read at scrape time. */
  readonly eventCounts: Map<string, number>;
  /** HTTP API requests, by route and status. */
  readonly httpRequests: Counter<'route' | 'status'>;
  /**
   * Model Gateway calls, by the model that answered (the target when none did), tier, how the
   * route was chosen (`exact`, `tier`, `rule`, `difficulty`, `default`) and outcome (`ok`,
   * `cached`, or an error code).
   */
  readonly modelRequests: Counter<'model' | 'tier' | 'route' | 'outcome'>;
  /** Failed Model Gateway calls, by target and error code. */
  readonly modelErrors: Counter<'target' | 'code'>;
  /** Model Gateway call duration in seconds, by model and whether the cache answered (`true`, `false`). */
  readonly modelLatency: Histogram<'model' | 'cached'>;
  /** Streamed calls: seconds from the call to the first text delta, by model. */
  readonly modelTimeToFirstToken: Histogram<'model'>;
  /** Model cost in US dollars (from `models.prices`), by model and agent. */
  readonly modelCost: Counter<'model' | 'agent'>;
  /** Model tokens by agent and direction (`input`, `output`). */
  readonly modelAgentTokens: Counter<'agent' | 'direction'>;
  /** Model answer cache lookups, by result (`hit`, `miss`, `skip`). */
  readonly modelCacheLookups: Counter<'result'>;
  /** Answers given by a deployment other than the first of their chain, by tier (`none` for exact models). */
  readonly modelFallbacks: Counter<'tier'>;
  /** 1 while a deployment's circuit is open, else 0; read at scrape time from {@link Metrics.modelCircuits}. */
  readonly modelCircuitOpen: Gauge<'deployment'>;
  /** Sources of deployment circuit state that {@link Metrics.modelCircuitOpen} reads at scrape time. */
  readonly modelCircuits: Set<() => Iterable<{ deployment: string; open: boolean }>>;
}

/** The families of prom-client's process metrics: CPU, memory, heap, event loop, handles, GC. */
const PROCESS_FAMILY = /^clawmesh_(process|nodejs)_/;

/**
 * A registry holding only the process metrics of `registry` (`clawmesh_process_*`,
 * `clawmesh_nodejs_*`), the same objects: what `/metrics` serves with `metrics.enabled: false`,
 * where every other family would be HELP and TYPE lines without a sample.
 */
export function processMetricsOf(registry: Registry): Registry {
  const shown = new Registry();
  for (const { name } of registry.getMetricsAsArray()) {
    const metric = PROCESS_FAMILY.test(name) ? registry.getSingleMetric(name) : undefined;
    if (metric) shown.registerMetric(metric);
  }
  return shown;
}

// Up to 120 s: turns and model calls may last their default deadlines (60 s), and a duration
// past the top bound lands in +Inf, which histogram_quantile reads as that bound.
const FAST_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
];

/**
 * Creates the metrics in a registry of their own (never the global one), so several Clawmesh
 * instances can live in one process, as they do in tests.
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: 'clawmesh_' });
    // prom-client names three gauges `_total`, which Prometheus reserves for counters; the
    // per-type gauges beside them (`clawmesh_nodejs_active_handles{type}`, …) hold the same counts.
    for (const kind of ['handles', 'requests', 'resources'])
      registry.removeSingleMetric(`clawmesh_nodejs_active_${kind}_total`);
  }
  const registers = [registry];
  const eventCounts = new Map<string, number>();
  const okSeen = new Map<string, number>();
  const modelCircuits = new Set<() => Iterable<{ deployment: string; open: boolean }>>();
  const conversationCounts = new Set<() => number>();
  const rpcLabels = ['service', 'method', 'transport'];
  return {
    conversationCounts,
    modelCircuits,
    eventCounts,
    registry,
    turns: new Counter({
      name: 'clawmesh_turns_total',
      help: 'Turns finished',
      labelNames: ['agent', 'outcome'],
      registers,
    }),
    turnDuration: new Histogram({
      name: 'clawmesh_turn_duration_seconds',
      help: 'Duration of a turn, from accepted to reply',
      labelNames: ['agent'],
      buckets: FAST_BUCKETS,
      registers,
    }),
    activeTurns: new Gauge({ name: 'clawmesh_active_turns', help: 'Turns running now', registers }),
    activeConversations: new Gauge({
      name: 'clawmesh_active_conversations',
      help: 'Conversations with a turn running or waiting',
      registers,
      collect() {
        let count = 0;
        for (const source of conversationCounts) count += source();
        this.set(count);
      },
    }),
    rpcDuration: new Histogram({
      name: 'clawmesh_rpc_duration_seconds',
      help: 'Duration of the calls this process made to services, per service, method and transport',
      labelNames: rpcLabels,
      buckets: FAST_BUCKETS,
      registers,
    }),
    rpcRequests: new Counter({
      name: 'clawmesh_rpc_requests_total',
      help: 'Calls this process made to services, per service, method and transport',
      labelNames: rpcLabels,
      registers,
    }),
    rpcErrors: new Counter({
      name: 'clawmesh_rpc_errors_total',
      help: 'Calls this process made that failed, per service, method, transport and error code',
      labelNames: [...rpcLabels, 'code'],
      registers,
    }),
    rpcServerDuration: new Histogram({
      name: 'clawmesh_rpc_server_duration_seconds',
      help: 'Duration of the calls this process handled, per service, method and transport',
      labelNames: rpcLabels,
      buckets: FAST_BUCKETS,
      registers,
    }),
    rpcServerRequests: new Counter({
      name: 'clawmesh_rpc_server_requests_total',
      help: 'Calls this process handled, per service, method and transport',
      labelNames: rpcLabels,
      registers,
    }),
    rpcServerErrors: new Counter({
      name: 'clawmesh_rpc_server_errors_total',
      help: 'Calls this process handled that failed, per service, method, transport and error code',
      labelNames: [...rpcLabels, 'code'],
      registers,
    }),
    busConsumed: new Counter({
      name: 'clawmesh_bus_events_consumed_total',
      help: 'Events handed to the consumers of this process, per topic, group and outcome',
      labelNames: ['topic', 'group', 'outcome'],
      registers,
    }),
    busConsumeLag: new Histogram({
      name: 'clawmesh_bus_consume_lag_seconds',
      help: 'Time from the publication of an event to a consumer starting on it, per topic and group',
      labelNames: ['topic', 'group'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
      registers,
    }),
    busDeadLetters: new Counter({
      name: 'clawmesh_bus_dead_letters_total',
      help: 'Events a consumer of this process failed on its last try (sent to <topic>.dead-letter)',
      labelNames: ['topic', 'group'],
      registers,
    }),
    toolCalls: new Counter({
      name: 'clawmesh_tool_calls_total',
      help: 'Tool calls, per skill, tool and outcome',
      labelNames: ['skill', 'tool', 'outcome'],
      registers,
    }),
    modelTokens: new Counter({
      name: 'clawmesh_model_tokens_total',
      help: 'Model tokens, per model and direction',
      labelNames: ['model', 'direction'],
      registers,
    }),
    pluginFailures: new Counter({
      name: 'clawmesh_plugin_failures_total',
      help: 'Plugin hooks that threw or timed out (contained)',
      labelNames: ['plugin', 'hook', 'reason'],
      registers,
    }),
    eventsPublished: new Counter({
      name: 'clawmesh_events_published_total',
      help: 'Events handed to the bus (ok) and events the bus refused (error)',
      labelNames: ['topic', 'outcome'],
      registers,
      collect() {
        for (const [topic, count] of eventCounts) {
          const current = this.labels({ topic, outcome: 'ok' });
          // A counter only goes up: add what was published since the last scrape.
          const seen = okSeen.get(topic) ?? 0;
          if (count > seen) current.inc(count - seen);
          okSeen.set(topic, count);
        }
      },
    }),
    httpRequests: new Counter({
      name: 'clawmesh_http_requests_total',
      help: 'HTTP API requests, per route and status',
      labelNames: ['route', 'status'],
      registers,
    }),
    modelRequests: new Counter({
      name: 'clawmesh_model_requests_total',
      help: 'Model Gateway calls, per model, tier, route kind and outcome',
      labelNames: ['model', 'tier', 'route', 'outcome'],
      registers,
    }),
    modelErrors: new Counter({
      name: 'clawmesh_model_errors_total',
      help: 'Failed Model Gateway calls, per target and error code',
      labelNames: ['target', 'code'],
      registers,
    }),
    modelLatency: new Histogram({
      name: 'clawmesh_model_latency_seconds',
      help: 'Duration of Model Gateway calls, per model and cache hit',
      labelNames: ['model', 'cached'],
      buckets: FAST_BUCKETS,
      registers,
    }),
    modelTimeToFirstToken: new Histogram({
      name: 'clawmesh_model_time_to_first_token_seconds',
      help: 'Streamed Model Gateway calls: time to the first text delta, per model',
      labelNames: ['model'],
      buckets: FAST_BUCKETS,
      registers,
    }),
    modelCost: new Counter({
      name: 'clawmesh_model_cost_usd_total',
      help: 'Model cost in US dollars, per model and agent',
      labelNames: ['model', 'agent'],
      registers,
    }),
    modelAgentTokens: new Counter({
      name: 'clawmesh_model_agent_tokens_total',
      help: 'Model tokens, per agent and direction',
      labelNames: ['agent', 'direction'],
      registers,
    }),
    modelCacheLookups: new Counter({
      name: 'clawmesh_model_cache_lookups_total',
      help: 'Model answer cache lookups, per result (hit, miss, skip)',
      labelNames: ['result'],
      registers,
    }),
    modelFallbacks: new Counter({
      name: 'clawmesh_model_fallbacks_total',
      help: 'Answers given by a fallback deployment, per tier',
      labelNames: ['tier'],
      registers,
    }),
    modelCircuitOpen: new Gauge({
      name: 'clawmesh_model_circuit_open',
      help: 'Whether a model deployment circuit is open (1) or not (0)',
      labelNames: ['deployment'],
      registers,
      collect() {
        for (const source of modelCircuits) {
          for (const { deployment, open } of source()) this.set({ deployment }, open ? 1 : 0);
        }
      },
    }),
  };
}
