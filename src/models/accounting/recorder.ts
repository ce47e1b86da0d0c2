import type { ModelResponse } from '../../core/contracts/models.ts';
import {
  type FastCounterChild,
  type FastHistogramChild,
  fastCounter,
  fastHistogram,
} from '../../observability/fast-metrics.ts';
import type { Metrics } from '../../observability/metrics.ts';

/** Records the Model Gateway's Prometheus metrics; a no-op without a registry. */
export interface ModelMetricsRecorder {
  /**
   * One answered call (from a provider or the cache): requests, latency, time to first token
   * (`firstTokenMs`, streamed calls), tokens, cost and fallbacks, by the response's model,
   * tier and route kind and the calling agent.
   */
  completed(response: ModelResponse, agent: string | undefined, firstTokenMs: number | undefined): void;
  /**
   * The estimated usage of a call that failed after the upstream sent text (a stream cut short):
   * its tokens and cost, by the response's model and the calling agent. The call itself is
   * counted by {@link ModelMetricsRecorder.failed}.
   */
  charged(response: ModelResponse, agent: string | undefined): void;
  failed(target: string, tier: string | undefined, route: string, code: string): void;
  cacheLookup(result: 'hit' | 'miss' | 'skip'): void;
}

/** Label sets kept per map; later ones are counted through uncached children (still correct). */
const MAX_LABEL_SETS = 10_000;

/** The value under `key`, made on first use; the map keeps at most {@link MAX_LABEL_SETS}. */
function cached<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    if (map.size < MAX_LABEL_SETS) map.set(key, value);
  }
  return value;
}

/**
 * Model names outside the configuration given series of their own: an ad-hoc `provider/model`
 * (`local/anything`, `openai/whatever`) is the caller's text, and as a label it would make
 * series without bound; past this many, such names count under {@link OTHER_MODEL}.
 */
const MAX_AD_HOC_MODELS = 256;

/** The `model`/`target` label of ad-hoc model names past {@link MAX_AD_HOC_MODELS}. */
export const OTHER_MODEL = 'other';

/** The series one kind of answer (model, route, agent, cached or not) adds to, found on first use. */
interface AnswerCells {
  /** The `model` label of these series. */
  model?: string;
  requests?: FastCounterChild;
  latency?: FastHistogramChild;
  ttft?: FastHistogramChild;
  fallbacks?: FastCounterChild;
  inputTokens?: FastCounterChild;
  outputTokens?: FastCounterChild;
  agentInputTokens?: FastCounterChild;
  agentOutputTokens?: FastCounterChild;
  cost?: FastCounterChild;
}

const SEP = '\u0000';

/** The `model`/`target` label of calls that named a model no deployment serves. */
export const UNKNOWN_TARGET = 'unknown';

/**
 * The Model Gateway's metrics over the process registry: requests (by model, tier, route kind,
 * outcome), errors, latency, time to first token, tokens (by model and by agent), cost, cache
 * lookups and fallbacks. Circuit state is read at scrape time (see `Metrics.modelCircuits`).
 *
 * The hot path builds no label objects or key text, and prom-client hashes no labels: an
 * answer's series are found through nested maps keyed by the response's own strings and its
 * `route` object (one per routing decision, shared) and updated in place (`fastCounter`,
 * `fastHistogram`).
 */
export function createModelMetricsRecorder(
  metrics: Metrics | undefined,
  configured: ReadonlySet<string> = new Set(),
): ModelMetricsRecorder {
  if (!metrics) return { completed() {}, charged() {}, failed() {}, cacheLookup() {} };
  const adHoc = new Set<string>();
  /** A model or target name as a label: configured names always, ad-hoc ones while there is room. */
  const labelOf = (name: string): string => {
    if (configured.has(name) || adHoc.has(name)) return name;
    if (adHoc.size >= MAX_AD_HOC_MODELS) return OTHER_MODEL;
    adHoc.add(name);
    return name;
  };
  // model → route object → agent → [answered, cached] series.
  const byModel = new Map<string, WeakMap<object, Map<string, [AnswerCells, AnswerCells]>>>();
  const failures = new Map<string, [FastCounterChild, FastCounterChild]>();
  const lookups = new Map<string, FastCounterChild>();
  const noRoute = {};

  const cellsOf = (response: ModelResponse, agent: string): AnswerCells => {
    const routes = cached(byModel, response.model, () => new WeakMap());
    const route = response.route ?? noRoute;
    let agents = routes.get(route);
    if (agents === undefined) {
      agents = new Map();
      routes.set(route, agents);
    }
    return cached(agents, agent, (): [AnswerCells, AnswerCells] => [{}, {}])[response.cached ? 1 : 0];
  };

  /** Tokens (by model and by agent) and cost of a response from a provider. */
  const countUsage = (cells: AnswerCells, response: ModelResponse, agent: string) => {
    const model = cells.model as string;
    const { inputTokens, outputTokens } = response.usage;
    if (inputTokens > 0) {
      cells.inputTokens ??= fastCounter(metrics.modelTokens, { model, direction: 'input' });
      cells.inputTokens.inc(inputTokens);
      cells.agentInputTokens ??= fastCounter(metrics.modelAgentTokens, { agent, direction: 'input' });
      cells.agentInputTokens.inc(inputTokens);
    }
    if (outputTokens > 0) {
      cells.outputTokens ??= fastCounter(metrics.modelTokens, { model, direction: 'output' });
      cells.outputTokens.inc(outputTokens);
      cells.agentOutputTokens ??= fastCounter(metrics.modelAgentTokens, { agent, direction: 'output' });
      cells.agentOutputTokens.inc(outputTokens);
    }
    if (response.costUsd) {
      cells.cost ??= fastCounter(metrics.modelCost, { model, agent });
      cells.cost.inc(response.costUsd);
    }
  };

  return {
    completed(response, agentId, firstTokenMs) {
      const agent = agentId ?? 'none';
      const cells = cellsOf(response, agent);
      cells.model ??= labelOf(response.model);
      const { model } = cells;
      const tier = response.tier ?? 'none';
      const isCached = response.cached === true;
      cells.requests ??= fastCounter(metrics.modelRequests, {
        model,
        tier,
        route: response.route?.by ?? 'exact',
        outcome: isCached ? 'cached' : 'ok',
      });
      cells.requests.inc();
      cells.latency ??= fastHistogram(metrics.modelLatency, { model, cached: String(isCached) });
      cells.latency.observe(response.latencyMs / 1000);
      if (firstTokenMs !== undefined) {
        cells.ttft ??= fastHistogram(metrics.modelTimeToFirstToken, { model });
        cells.ttft.observe(firstTokenMs / 1000);
      }
      if (response.fallbackUsed) {
        cells.fallbacks ??= fastCounter(metrics.modelFallbacks, { tier });
        cells.fallbacks.inc();
      }
      // A cached answer cost no provider tokens.
      if (!isCached) countUsage(cells, response, agent);
    },
    charged(response, agentId) {
      const agent = agentId ?? 'none';
      const cells = cellsOf(response, agent);
      cells.model ??= labelOf(response.model);
      countUsage(cells, response, agent);
    },
    failed(requested, tier, route, code) {
      // A name no deployment serves comes from the caller: as a label it would make a series
      // per typo or random string, so they all count under `unknown`.
      const target = code === 'NOT_FOUND' ? UNKNOWN_TARGET : labelOf(requested);
      const [requests, errors] = cached(
        failures,
        `${target}${SEP}${tier ?? 'none'}${SEP}${route}${SEP}${code}`,
        (): [FastCounterChild, FastCounterChild] => [
          fastCounter(metrics.modelRequests, { model: target, tier: tier ?? 'none', route, outcome: code }),
          fastCounter(metrics.modelErrors, { target, code }),
        ],
      );
      requests.inc();
      errors.inc();
    },
    cacheLookup(result) {
      cached(lookups, result, () => fastCounter(metrics.modelCacheLookups, { result })).inc();
    },
  };
}
