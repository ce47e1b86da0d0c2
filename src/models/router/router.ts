import type { RoutingRule } from '../../config/schema-models.ts';
import type { CallContext } from '../../core/context.ts';
import { ClawmeshError } from '../../core/errors.ts';
import type { ChatMessage, ToolSpec } from '../../core/messages.ts';
import { difficultyCode, difficultyOfCode } from './difficulty.ts';

/** How a target was chosen. */
export type RouteKind = 'exact' | 'tier' | 'rule' | 'difficulty' | 'default';

/** A routing decision: what to call and why. */
export interface RouteDecision {
  /** What to resolve: a tier name, a deployment id, `provider/model` or a bare provider. */
  target: string;
  /** The tier, when the target is one. */
  tier?: string;
  by: RouteKind;
  /** Why, in words: `rule 2 (channel telegram) -> tier capable`, `difficulty 0.62 >= 0.5 (code) -> tier capable` (ASCII, so log and audit lines stay one byte a character). */
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
  if (rule.minDifficulty !== undefined) parts.push(`difficulty ${difficulty} >= ${rule.minDifficulty}`);
  if (rule.maxDifficulty !== undefined) parts.push(`difficulty ${difficulty} < ${rule.maxDifficulty}`);
  return `rule ${rule.index + 1}${parts.length ? ` (${parts.join(', ')})` : ''} -> tier ${rule.tier}`;
}

/** Decisions kept per router, per kind (named targets, difficulty codes, rules × scores). */
const MAX_REMEMBERED = 4096;

/** A memo of immutable decisions: the hot path builds no reason text and no decision object. */
function remember<K>(): (key: K, make: () => RouteDecision) => RouteDecision {
  const decisions = new Map<K, RouteDecision>();
  return (key, make) => {
    let decision = decisions.get(key);
    if (decision === undefined) {
      decision = Object.freeze(make());
      if (decisions.size < MAX_REMEMBERED) decisions.set(key, decision);
    }
    return decision;
  };
}

/**
 * The router: a request that names a model, a deployment or a tier goes there (an exact model
 * is never rerouted); one that names none (or `auto`) goes to the tier of the first matching
 * rule (agent, channel, pattern on the last user message, difficulty), else by its estimated
 * difficulty to `capable` or `fast`, else to the default target. Rules naming a tier that does
 * not exist are refused at creation.
 *
 * Decisions are frozen and shared between calls that decide alike (same name, same difficulty
 * signals, same rule): treat them as read-only.
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
  const defaultDecision: RouteDecision = Object.freeze({
    target: options.defaultTarget,
    ...(defaultTier ? { tier: defaultTier } : {}),
    by: 'default',
    reason: `default ${options.defaultTarget}`,
  });
  const named = remember<string>();
  const byDifficulty = remember<number>();
  // Per rule: keyed by the score (in hundredths) when the difficulty was measured, else -1.
  const byRule = rules.map(() => remember<number>());

  const namedDecision = (name: string): RouteDecision =>
    named(name, () =>
      tiers.has(name)
        ? { target: name, tier: name, by: 'tier', reason: `tier ${name} requested` }
        : { target: name, by: 'exact', reason: `${name} requested` },
    );

  const ruleDecision = (rule: CompiledRule, score: number | undefined): RouteDecision =>
    byRule[rule.index]!(score === undefined ? -1 : Math.round(score * 100), () => ({
      target: rule.tier,
      tier: rule.tier,
      by: 'rule',
      reason: describeRule(rule, score),
      ...(score !== undefined ? { difficulty: score } : {}),
    }));

  const difficultyDecision = (code: number): RouteDecision =>
    byDifficulty(code, () => {
      const { score, signals } = difficultyOfCode(code);
      const tier = score >= threshold ? 'capable' : 'fast';
      const why = signals.length ? ` (${signals.join(', ')})` : '';
      const sign = score >= threshold ? '>=' : '<';
      return {
        target: tier,
        tier,
        by: 'difficulty',
        reason: `difficulty ${score} ${sign} ${threshold}${why} -> tier ${tier}`,
        difficulty: score,
      };
    });

  /** The first matching rule's decision, else the difficulty code if a rule measured it (or -1). */
  const matchRules = (request: RouteRequest, ctx: Pick<CallContext, 'agentId' | 'channel'>) => {
    let code = -1;
    let score: number | undefined;
    let text: string | undefined;
    for (const rule of rules) {
      if (rule.agent !== undefined && rule.agent !== ctx.agentId) continue;
      if (rule.channel !== undefined && rule.channel !== ctx.channel) continue;
      if (rule.regex) {
        text ??= lastUserText(request.messages);
        if (!rule.regex.test(text)) continue;
      }
      if (rule.minDifficulty !== undefined || rule.maxDifficulty !== undefined) {
        if (code < 0) {
          code = difficultyCode(request);
          score = difficultyOfCode(code).score;
        }
        if (rule.minDifficulty !== undefined && (score as number) < rule.minDifficulty) continue;
        if (rule.maxDifficulty !== undefined && (score as number) >= rule.maxDifficulty) continue;
      }
      return ruleDecision(rule, score);
    }
    return code;
  };

  return {
    decide(request, ctx) {
      const name = request.model;
      if (name !== undefined && name !== '' && name !== AUTO_MODEL) return namedDecision(name);
      let code = -1;
      if (rules.length > 0) {
        const matched = matchRules(request, ctx);
        if (typeof matched !== 'number') return matched;
        code = matched;
      }
      if (auto) return difficultyDecision(code < 0 ? difficultyCode(request) : code);
      return defaultDecision;
    },
  };
}
