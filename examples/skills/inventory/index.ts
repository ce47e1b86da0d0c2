/**
 * The `inventory` example skill: stock levels from a catalogue bundled with it. It declares
 * `STORE_API_KEY` to show how a skill receives a secret of its own, but never needs it.
 */
import { defineSkill, type ToolContext, z } from 'clawmesh/skill';
import { CATALOGUE, type CatalogueItem } from './catalogue.ts';

/** Words that say nothing about which item is meant. */
const FILLER = new Set([
  ...'a an the some any of in stock how many much do'.split(' '),
  ...'you have is are there item pair unit left please what about'.split(' '),
]);
const SYNONYMS: Record<string, string> = {
  gray: 'grey',
  trainer: 'sneaker',
  tee: 'shirt',
  't-shirt': 'shirt',
};

/** `Red Shirts!` → `['red', 'shirt']`: the words that name an item, lower case, singular, no filler. */
export function wordsOf(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^a-z0-9-]+/)
    .map((word) => singular(word.replace(/^-+|-+$/g, '')))
    .map((word) => SYNONYMS[word] ?? word)
    .filter((word) => word !== '' && !FILLER.has(word));
}

/** A canonical singular, the same for both forms: `hoodies` and `hoodie` → `hoody`, `berries` → `berry`. */
function singular(word: string): string {
  if (word.length <= 3 || word.endsWith('ss')) return word;
  if (word.endsWith('ies')) return `${word.slice(0, -3)}y`;
  if (word.endsWith('ie')) return `${word.slice(0, -2)}y`;
  if (/(ss|sh|ch|x)es$/.test(word)) return word.slice(0, -2);
  return word.endsWith('s') ? word.slice(0, -1) : word;
}

const INDEX = CATALOGUE.map((item) => ({ item, words: new Set(wordsOf(`${item.name} ${item.colour}`)) }));

type Match = { item: CatalogueItem } | { candidates: CatalogueItem[]; ambiguous: boolean };

/** Finds the one item a query names; otherwise the items it could mean. */
export function findItem(query: string): Match {
  const bySku = CATALOGUE.find((item) => item.sku.toLowerCase() === query.trim().toLowerCase());
  if (bySku) return { item: bySku };
  const words = wordsOf(query);
  if (words.length === 0) return { candidates: [], ambiguous: false };
  const full = INDEX.filter((entry) => words.every((word) => entry.words.has(word)));
  if (full.length === 1 && full[0]) return { item: full[0].item };
  if (full.length > 1) return { candidates: full.map((entry) => entry.item), ambiguous: true };
  const related = INDEX.filter((entry) => words.some((word) => entry.words.has(word)));
  return { candidates: related.map((entry) => entry.item), ambiguous: false };
}

const unitsText = (units: number): string => (units === 1 ? '1 unit' : `${units} units`);

/**
 * The key is only reported as configured or not; this example has no live store to call, so
 * it always answers from the bundled catalogue. A real skill would pass the key to its API.
 */
function provenance(ctx: ToolContext) {
  return { source: 'bundled catalogue', storeApiKey: ctx.secrets.STORE_API_KEY ? 'configured' : 'not set' };
}

export default defineSkill({
  name: 'inventory',
  version: '1.0.0',
  description: 'Stock levels of the items in the store',
  secrets: ['STORE_API_KEY'],
  tools: {
    lookupStock: {
      description: 'How many units of an item are in stock',
      input: z.object({
        item: z.string().min(1).describe('The item, as the customer named it: "red shirt"'),
      }),
      run: async ({ item }, ctx) => {
        const match = findItem(item);
        if ('item' in match) {
          const { name, sku, units, price } = match.item;
          const stock = units === 0 ? 'out of stock' : `${unitsText(units)} in stock`;
          return { item: name, sku, units, price, ...provenance(ctx), summary: `${name}: ${stock}` };
        }
        const suggestions = match.candidates.map((candidate) => candidate.name);
        const summary = match.ambiguous
          ? `Several items match "${item}": ${match.candidates.map((c) => `${c.name} (${unitsText(c.units)})`).join(', ')}`
          : `No item matching "${item}" in the catalogue`;
        return { item, found: false, summary, suggestions, ...provenance(ctx) };
      },
    },
    listItems: {
      description: 'List the items in the store catalogue',
      input: z.object({ colour: z.string().optional().describe('Only the items of this colour') }),
      run: async ({ colour }, ctx) => {
        const wanted = colour ? wordsOf(colour)[0] : undefined;
        const items = CATALOGUE.filter((item) => !wanted || item.colour === wanted).map(
          ({ sku, name, units, price }) => ({
            sku,
            name,
            units,
            price,
          }),
        );
        const listed = items.map((item) => `${item.name} (${item.units})`).join(', ');
        const summary =
          items.length === 0 ? `No ${colour} items in the catalogue` : `${items.length} items: ${listed}`;
        return { items, count: items.length, ...provenance(ctx), summary };
      },
    },
  },
});
