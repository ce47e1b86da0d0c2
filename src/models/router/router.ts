import type { RoutingRule } from '../../config/schema-models.ts';
import type { CallContext } from '../../core/context.ts';
import { ClawmeshError } from '../../core/errors.ts';
import type { ChatMessage, ToolSpec } from '../../core/messages.ts';
import { type Difficulty, estimateDifficulty } from './difficulty.ts';

/** How a target was chosen. */
export type RouteKind = 'exact' | 'tier' | 'rule' | 'difficulty' | 'default';

/** A routing decision: what to call and why. */
export interface RouteDecision {
  /** What to resolve: a tier name, a deployment id, `provider/model` or a bare provider. */
  target: string;
  /** The tier, when the target is one. */
  tier?: string;
  by: RouteKind;
  /** Why, in words: `rule 2 (channel telegram) → tier capable`, `difficulty 0.62 ≥ 0.5 (code) → tier capable`. */
  reason: string;
  /** The difficulty estimate, when it was computed. */
  difficulty?: number;
}

/** The parts of a request the router reads. */
export interface RouteRequest {
  /** What the caller named: `provider/model`, a deployment id, a tier, `auto`, or nothing. */
  model?: string | undefined;
  messages: readonly ChatMessage[];
  tools?: readonly ToolSpec[] | undefined;
}

/** Options of {@link createRouter}. */
export interface RouterOptions {
  /** The tier names that exist. */
  tiers: Iterable<string>;
  rules?: readonly RoutingRule[];
  /** Route by difficulty between `fast` and `capable` when no rule matches (default true). */
  auto?: boolean;
  /** The difficulty from which `capable` is chosen (default 0.5). */
  difficultyThreshold?: number;
  /** The target of requests that name none and are not routed to a tier. */
  defaultTarget: string;
}

/** Chooses a target for each request. */
export interface Router {
  decide(request: RouteRequest, ctx: Pick<CallContext, 'agentId' | 'channel'>): RouteDecision;
}

/** The word a request uses to ask for routing explicitly, as if it named no model. */
export const AUTO_MODEL = 'auto';

interface CompiledRule extends RoutingRule {
  index: number;
  regex?: RegExp;
}

function lastUserText(messages: readonly ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i -= 1) {
    const message = messages[i]!;
    if (message.role === 'user') return message.content;
  }
  return '';
}

function describeRule(rule: CompiledRule, difficulty: number | undefined): string {
  const parts: string[] = [];
  if (rule.agent !== undefined) parts.push(`agent ${rule.agent}`);
  if (rule.channel !== undefined) parts.push(`channel ${rule.channel}`);
  if (rule.pattern !== undefined) parts.push(`pattern /${rule.pattern}/`);
  if (rule.minDifficulty !== undefined) parts.push(`difficulty ${difficulty} ≥ ${rule.minDifficulty}`);
  if (rule.maxDifficulty !== undefined) parts.push(`difficulty ${difficulty} < ${rule.maxDifficulty}`);
  return `rule ${rule.index + 1}${parts.length ? ` (${parts.join(', ')})` : ''} → tier ${rule.tier}`;
}

/**
 * The router: a request that names a model, a deployment or a tier goes there (an exact model
 * is never rerouted); one that names none (or `auto`) goes to the tier of the first matching
 * rule (agent, channel, pattern on the last user message, difficulty), else by its estimated
 * difficulty to `capable` or `fast`, else to the default target. Rules naming a tier that does
 * not exist are refused at creation.
 *
 * @example
 * const router = createRouter({ tiers: ['fast', 'capable'], defaultTarget: 'local' });
 * router.decide({ messages: [{ role: 'user', content: 'hi' }] }, ctx).tier; // 'fast'
 */
export function createRouter(options: RouterOptions): Router {
  const tiers = new Set(options.tiers);
  const threshold = options.difficultyThreshold ?? 0.5;
  const auto = (options.auto ?? true) && tiers.has('fast') && tiers.has('capable');
  const rules: CompiledRule[] = (options.rules ?? []).map((rule, index) => {
    if (!tiers.has(rule.tier)) {
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `models.routing.rules.${index}.tier: no tier "${rule.tier}" (tiers: ${[...tiers].join(', ') || 'none'})`,
      );
    }
    return {
      ...rule,
      index,
      ...(rule.pattern !== undefined ? { regex: new RegExp(rule.pattern, 'i') } : {}),
    };
  });
  const defaultTier = tiers.has(options.defaultTarget) ? options.defaultTarget : undefined;

  return {
    decide(request, ctx) {
      const named = request.model;
      if (named !== undefined && named !== '' && named !== AUTO_MODEL) {
        if (tiers.has(named))
          return { target: named, tier: named, by: 'tier', reason: `tier ${named} requested` };
        return { target: named, by: 'exact', reason: `${named} requested` };
      }
      let difficulty: Difficulty | undefined;
      const measure = () => {
        difficulty ??= estimateDifficulty(request);
        return difficulty.score;
      };
      let text: string | undefined;
      const lastText = () => {
        text ??= lastUserText(request.messages);
        return text;
      };
      for (const rule of rules) {
        if (rule.agent !== undefined && rule.agent !== ctx.agentId) continue;
        if (rule.channel !== undefined && rule.channel !== ctx.channel) continue;
        if (rule.regex && !rule.regex.test(lastText())) continue;
        if (rule.minDifficulty !== undefined && measure() < rule.minDifficulty) continue;
        if (rule.maxDifficulty !== undefined && measure() >= rule.maxDifficulty) continue;
        const score = difficulty?.score;
        return {
          target: rule.tier,
          tier: rule.tier,
          by: 'rule',
          reason: describeRule(rule, score),
          ...(score !== undefined ? { difficulty: score } : {}),
        };
      }
      if (auto) {
        const score = measure();
        const tier = score >= threshold ? 'capable' : 'fast';
        const why = difficulty!.signals.length ? ` (${difficulty!.signals.join(', ')})` : '';
        const sign = score >= threshold ? '≥' : '<';
        return {
          target: tier,
          tier,
          by: 'difficulty',
          reason: `difficulty ${score} ${sign} ${threshold}${why} → tier ${tier}`,
          difficulty: score,
        };
      }
      return {
        target: options.defaultTarget,
        ...(defaultTier ? { tier: defaultTier } : {}),
        by: 'default',
        reason: `default ${options.defaultTarget}`,
      };
    },
  };
}
