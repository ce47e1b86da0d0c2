import type { Counter, Histogram, LabelValues } from 'prom-client';

/**
 * Label children for the turn's hot path. prom-client validates and hashes the label set on
 * every `inc` and `observe`, even through `metric.labels(...)` (about a microsecond each, a
 * dozen times a turn); these children find the metric's own stored series once and then update
 * it in place, so a scrape reads exactly what the metric would hold. Should a prom-client
 * release store its series differently, they fall back to the public API.
 */

/** A counter series updated without label hashing. */
export interface FastCounterChild {
  inc(value?: number): void;
}

/** A histogram series updated without label hashing. */
export interface FastHistogramChild {
  observe(value: number): void;
}

type Series = { labels: Record<string, string | number>; value?: number; sum?: number; count?: number };
type Stored = { hashMap?: Record<string, Series>; upperBounds?: number[] };

function sameLabels(a: Record<string, string | number>, b: Record<string, string | number>): boolean {
  const keys = Object.keys(b);
  return Object.keys(a).length === keys.length && keys.every((key) => String(a[key]) === String(b[key]));
}

function seriesOf(metric: object, labels: Record<string, string | number>): Series | undefined {
  const map = (metric as Stored).hashMap;
  if (!map) return undefined;
  return Object.values(map).find((series) => sameLabels(series.labels, labels));
}

/** The series of `counter` with `labels` (created at 0), to increment without hashing. */
export function fastCounter<T extends string>(counter: Counter<T>, labels: LabelValues<T>): FastCounterChild {
  counter.inc(labels, 0);
  const series = seriesOf(counter, labels as Record<string, string | number>);
  if (typeof series?.value !== 'number') return { inc: (value = 1) => counter.inc(labels, value) };
  return {
    inc(value = 1) {
      series.value = (series.value as number) + value;
    },
  };
}

/** The series of `histogram` with `labels` (created empty), to observe into without hashing. */
export function fastHistogram<T extends string>(
  histogram: Histogram<T>,
  labels: LabelValues<T>,
): FastHistogramChild {
  const plain = labels as Record<string, string | number>;
  if (!seriesOf(histogram, plain)) histogram.zero(labels);
  const series = seriesOf(histogram, plain) as
    | (Series & { bucketValues?: Record<number, number>; sum: number; count: number })
    | undefined;
  const bounds = (histogram as unknown as Stored).upperBounds;
  if (!series?.bucketValues || typeof series.count !== 'number' || !Array.isArray(bounds)) {
    return { observe: (value) => histogram.observe(labels, value) };
  }
  const buckets = series.bucketValues as Record<string, number>;
  // The buckets are keyed by their bounds as property names: indexing with the number itself
  // would convert it to a string on every observation (about 0.4 µs, eight times the rest).
  const keys = bounds.map(String);
  return {
    observe(value) {
      if (!Number.isFinite(value)) return;
      series.sum += value;
      series.count += 1;
      for (let i = 0; i < bounds.length; i++) {
        if (value <= bounds[i]!) {
          const key = keys[i]!;
          buckets[key] = (buckets[key] ?? 0) + 1;
          return;
        }
      }
    },
  };
}
