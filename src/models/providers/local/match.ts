import type { ToolSpec } from '../../../core/messages.ts';
import { identifierStems, meaningfulStems, type Token } from './words.ts';

/** A tool with the weighted stems it answers to, computed once per distinct tool. */
interface IndexedTool {
  readonly weights: ReadonlyMap<string, number>;
}

/** The tool chosen for a message and the message's stems that chose it. */
export interface ToolMatch {
  readonly tool: ToolSpec;
  /** Stems of the message that matched the tool; they are left out of extracted arguments. */
  readonly matched: ReadonlySet<string>;
  readonly score: number;
}

/** Weights of where a word appears: the tool's own name says most, its description least. */
const TOOL_WORD = 2;
const SKILL_WORD = 1.5;
const DESCRIPTION_WORD = 1;
/** Words after `: ` are usually the payload, not the command; they count half. */
const PAYLOAD_FACTOR = 0.5;
/** At least one meaningful word in common. */
const THRESHOLD = 1;

const MAX_CACHED = 1024;
const byObject = new WeakMap<ToolSpec, IndexedTool>();
const byText = new Map<string, IndexedTool>();

function put(weights: Map<string, number>, stems: readonly string[], weight: number): void {
  for (const s of stems) {
    if ((weights.get(s) ?? 0) < weight) weights.set(s, weight);
  }
}

function buildIndex(tool: ToolSpec): IndexedTool {
  const weights = new Map<string, number>();
  const at = tool.name.indexOf('__');
  put(weights, meaningfulStems(tool.description), DESCRIPTION_WORD);
  if (at > 0) put(weights, identifierStems(tool.name.slice(0, at)), SKILL_WORD);
  put(weights, identifierStems(at > 0 ? tool.name.slice(at + 2) : tool.name), TOOL_WORD);
  return { weights };
}

/**
 * The index of a tool, cached by object and by text: requests rebuild their tool arrays on
 * every turn, but the names and descriptions repeat. The text cache is bounded.
 */
function indexOf(tool: ToolSpec): IndexedTool {
  const hit = byObject.get(tool);
  if (hit) return hit;
  const key = `${tool.name}\u0000${tool.description}`;
  let indexed = byText.get(key);
  if (!indexed) {
    indexed = buildIndex(tool);
    // Tool sets repeat, so a full cache means churn: start over rather than evict one by one.
    if (byText.size >= MAX_CACHED) byText.clear();
    byText.set(key, indexed);
  }
  byObject.set(tool, indexed);
  return indexed;
}

/**
 * Picks the tool whose name and description share the most meaningful words with the message.
 * Ties go to the tool listed first. `payloadFrom` is the offset after which words count half.
 */
export function matchTool(
  tools: readonly ToolSpec[],
  tokens: readonly Token[],
  payloadFrom: number,
): ToolMatch | undefined {
  const wanted = new Map<string, number>();
  for (const token of tokens) {
    if (token.stop || token.numeric) continue;
    const weight = token.start >= payloadFrom ? PAYLOAD_FACTOR : 1;
    if ((wanted.get(token.stem) ?? 0) < weight) wanted.set(token.stem, weight);
  }
  if (wanted.size === 0) return undefined;

  let best: ToolSpec | undefined;
  let bestScore = 0;
  let bestIndex: IndexedTool | undefined;
  for (const tool of tools) {
    const indexed = indexOf(tool);
    const { weights } = indexed;
    let score = 0;
    for (const [s, weight] of wanted) {
      const w = weights.get(s);
      if (w !== undefined) score += w * weight;
    }
    if (score > bestScore) {
      best = tool;
      bestScore = score;
      bestIndex = indexed;
    }
  }
  if (!best || !bestIndex || bestScore < THRESHOLD) return undefined;
  const matched = new Set<string>();
  for (const s of wanted.keys()) if (bestIndex.weights.has(s)) matched.add(s);
  return { tool: best, matched, score: bestScore };
}
