import type { Usage } from '../../core/contracts/models.ts';

/** A model's price in US dollars per one million tokens. */
export interface Price {
  input: number;
  output: number;
}

/** Prices by model. */
export interface PriceTable {
  /** The cost of `usage` on `model` (`provider/model`), or undefined when its price is unknown. */
  costOf(model: string, usage: Usage): number | undefined;
}

/**
 * A price table from the config's `models.prices`: a model is looked up as `provider/model`,
 * then by its bare model name (`gpt-4o-mini`), so one entry can price a model on any deployment.
 * The `local` provider is free.
 *
 * @example
 * createPriceTable({ 'openai/gpt-4o-mini': { input: 0.15, output: 0.6 } })
 *   .costOf('openai/gpt-4o-mini', { inputTokens: 1000, outputTokens: 500 }); // 0.00045
 */
export function createPriceTable(prices: Readonly<Record<string, Price>>): PriceTable {
  const table = new Map(Object.entries(prices));
  const resolved = new Map<string, Price | null>();
  const priceOf = (model: string): Price | undefined => {
    let price = resolved.get(model);
    if (price === undefined) {
      const slash = model.indexOf('/');
      price =
        table.get(model) ??
        (slash >= 0 ? table.get(model.slice(slash + 1)) : undefined) ??
        (model === 'local' || model.startsWith('local/') ? { input: 0, output: 0 } : null);
      // Bounded by the models this process has answered with.
      if (resolved.size < 10_000) resolved.set(model, price);
    }
    return price ?? undefined;
  };
  return {
    costOf(model, usage) {
      const price = priceOf(model);
      if (!price) return undefined;
      return (usage.inputTokens * price.input + usage.outputTokens * price.output) / 1_000_000;
    },
  };
}
