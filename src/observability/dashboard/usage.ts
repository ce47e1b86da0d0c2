import type { EventTopics } from '../../bus/events.ts';
import type { Bus, BusEvent } from '../../bus/types.ts';
import { createRecentKeys } from '../../core/bounded.ts';
import type { ModelUsage, UsageView } from './views.ts';

/** The models counted one by one; the calls of any model past this bound are counted under {@link OTHER}. */
const MAX_MODELS = 200;
/** The name usage beyond {@link MAX_MODELS} models is counted under. */
const OTHER = '(other models)';

/** Model usage counted in memory from `model.completed` events. */
export interface UsageCounter {
  /** Counts one event; a repeat of an event id already counted is ignored (delivery is at least once). */
  record(event: BusEvent): void;
  view(): UsageView;
}

/** {@link UsageCounter} fed by a bus subscription; `close` ends the subscription. */
export interface UsageFeed extends UsageCounter {
  close(): Promise<void>;
}

interface Totals {
  requests: number;
  cached: number;
  fallbacks: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  priced: boolean;
  latencyMs: number;
  lastAt: string;
}

/**
 * Requests, tokens, cost, cache hits, fallbacks and latency by model, since this counter was
 * made. Cached answers are counted as requests but add no tokens or cost (no provider ran).
 */
export function createUsageCounter(options: { maxModels?: number; now?: () => Date } = {}): UsageCounter {
  const maxModels = options.maxModels ?? MAX_MODELS;
  const since = (options.now?.() ?? new Date()).toISOString();
  const byModel = new Map<string, Totals>();
  const seen = createRecentKeys(10_000);
  return {
    record(event) {
      if (event.type !== 'model.completed' || !seen.add(event.id)) return;
      const data = event.data as Partial<EventTopics['model.completed']>;
      if (typeof data?.model !== 'string') return;
      const name = byModel.has(data.model) || byModel.size < maxModels ? data.model : OTHER;
      let totals = byModel.get(name);
      if (!totals) {
        totals = {
          requests: 0,
          cached: 0,
          fallbacks: 0,
          inputTokens: 0,
          outputTokens: 0,
          costUsd: 0,
          priced: false,
          latencyMs: 0,
          lastAt: event.time,
        };
        byModel.set(name, totals);
      }
      totals.requests++;
      totals.latencyMs += finite(data.latencyMs);
      if (event.time > totals.lastAt) totals.lastAt = event.time;
      if (data.fallbackUsed) totals.fallbacks++;
      if (data.cached) {
        totals.cached++;
        return;
      }
      totals.inputTokens += finite(data.inputTokens);
      totals.outputTokens += finite(data.outputTokens);
      if (typeof data.costUsd === 'number' && Number.isFinite(data.costUsd)) {
        totals.costUsd += data.costUsd;
        totals.priced = true;
      }
    },
    view() {
      const models: ModelUsage[] = [...byModel].map(([model, t]) => ({
        model,
        requests: t.requests,
        cached: t.cached,
        fallbacks: t.fallbacks,
        inputTokens: t.inputTokens,
        outputTokens: t.outputTokens,
        costUsd: t.costUsd,
        priced: t.priced,
        averageLatencyMs: t.requests > 0 ? t.latencyMs / t.requests : 0,
        lastAt: t.lastAt,
      }));
      models.sort((a, b) => b.requests - a.requests || a.model.localeCompare(b.model));
      const totals = { requests: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
      for (const m of models) {
        totals.requests += m.requests;
        totals.inputTokens += m.inputTokens;
        totals.outputTokens += m.outputTokens;
        totals.costUsd += m.costUsd;
      }
      return { available: true, source: 'events', since, models, totals };
    },
  };
}

/**
 * Counts the `model.completed` events of a bus in consumer group `group`. Within a group each
 * event reaches one member: on a bus shared by several processes, give the feed to one of them
 * (or each its own group) so none counts a share only.
 *
 * @example
 * const usage = await startUsageFeed(services.bus, 'dashboard');
 * usage.view().models; // [{ model: 'local/default', requests: 2, … }]
 */
export async function startUsageFeed(bus: Bus, group: string): Promise<UsageFeed> {
  const counter = createUsageCounter();
  const subscription = await bus.subscribe('model.completed', group, (event) => counter.record(event));
  return { ...counter, close: () => subscription.close() };
}

function finite(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}
