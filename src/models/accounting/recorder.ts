import type { Usage } from '../../core/contracts/models.ts';
import type { Metrics } from '../../observability/metrics.ts';

/** What one answered call adds to the metrics. */
export interface CompletionRecord {
  /** `provider/model` that answered (or that answered the cached call). */
  model: string;
  tier?: string | undefined;
  /** How the route was chosen (`exact`, `tier`, `rule`, `difficulty`, `default`). */
  route: string;
  agent?: string | undefined;
  latencyMs: number;
  /** Streamed calls: time to the first text delta. */
  firstTokenMs?: number | undefined;
  usage: Usage;
  costUsd?: number | undefined;
  cached: boolean;
  fallbackUsed: boolean;
}

/** Records the Model Gateway's Prometheus metrics; a no-op without a registry. */
export interface ModelMetricsRecorder {
  completed(record: CompletionRecord): void;
  failed(target: string, tier: string | undefined, route: string, code: string): void;
  cacheLookup(result: 'hit' | 'miss' | 'skip'): void;
}

/** Label children kept per label set, so the hot path skips prom-client's label hashing. */
const MAX_CHILDREN = 10_000;

function memo<T>(make: (key: string) => T): (key: string) => T {
  const children = new Map<string, T>();
  return (key) => {
    let child = children.get(key);
    if (child === undefined) {
      child = make(key);
      if (children.size < MAX_CHILDREN) children.set(key, child);
    }
    return child;
  };
}

const SEP = '\u0000';

/**
 * The Model Gateway's metrics over the process registry: requests (by model, tier, route kind,
 * outcome), errors, latency, time to first token, tokens (by model and by agent), cost, cache
 * lookups and fallbacks. Circuit state is read at scrape time (see `Metrics.modelCircuits`).
 */
export function createModelMetricsRecorder(metrics: Metrics | undefined): ModelMetricsRecorder {
  if (!metrics) return { completed() {}, failed() {}, cacheLookup() {} };
  const requests = memo((key) => {
    const [model, tier, route, outcome] = key.split(SEP);
    return metrics.modelRequests.labels({ model, tier, route, outcome });
  });
  const latency = memo((key) => {
    const [model, cached] = key.split(SEP);
    return metrics.modelLatency.labels({ model, cached });
  });
  const tokens = memo((key) => {
    const [model, direction] = key.split(SEP);
    return metrics.modelTokens.labels({ model, direction });
  });
  const agentTokens = memo((key) => {
    const [agent, direction] = key.split(SEP);
    return metrics.modelAgentTokens.labels({ agent, direction });
  });
  const cost = memo((key) => {
    const [model, agent] = key.split(SEP);
    return metrics.modelCost.labels({ model, agent });
  });
  const ttft = memo((model) => metrics.modelTimeToFirstToken.labels({ model }));
  const fallbacks = memo((tier) => metrics.modelFallbacks.labels({ tier }));
  const lookups = memo((result) => metrics.modelCacheLookups.labels({ result }));
  const errors = memo((key) => {
    const [target, code] = key.split(SEP);
    return metrics.modelErrors.labels({ target, code });
  });

  return {
    completed(record) {
      const tier = record.tier ?? 'none';
      const agent = record.agent ?? 'none';
      const outcome = record.cached ? 'cached' : 'ok';
      requests(`${record.model}${SEP}${tier}${SEP}${record.route}${SEP}${outcome}`).inc();
      latency(`${record.model}${SEP}${record.cached}`).observe(record.latencyMs / 1000);
      if (record.firstTokenMs !== undefined) ttft(record.model).observe(record.firstTokenMs / 1000);
      if (record.fallbackUsed) fallbacks(tier).inc();
      // A cached answer cost no provider tokens.
      if (record.cached) return;
      const { inputTokens, outputTokens } = record.usage;
      if (inputTokens > 0) {
        tokens(`${record.model}${SEP}input`).inc(inputTokens);
        agentTokens(`${agent}${SEP}input`).inc(inputTokens);
      }
      if (outputTokens > 0) {
        tokens(`${record.model}${SEP}output`).inc(outputTokens);
        agentTokens(`${agent}${SEP}output`).inc(outputTokens);
      }
      if (record.costUsd) cost(`${record.model}${SEP}${agent}`).inc(record.costUsd);
    },
    failed(target, tier, route, code) {
      requests(`${target}${SEP}${tier ?? 'none'}${SEP}${route}${SEP}${code}`).inc();
      errors(`${target}${SEP}${code}`).inc();
    },
    cacheLookup(result) {
      lookups(result).inc();
    },
  };
}
