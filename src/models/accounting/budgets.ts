import type { CallContext } from '../../core/context.ts';
import { ClawmeshError } from '../../core/errors.ts';
import { COUNTED, type UsageIncrement, type UsageStore, type UsageTotals } from './usage-store.ts';

/** Token and/or cost limits of one budget. */
export interface Limit {
  tokens?: number | undefined;
  costUsd?: number | undefined;
}

/** The budgets of `models.budgets`. */
export interface BudgetLimits {
  /** Per user and UTC day. */
  perUserDaily?: Limit | undefined;
  /** Per conversation, for its whole life. */
  perConversation?: Limit | undefined;
}

/** Options of {@link createBudgets}. */
export interface BudgetsOptions {
  limits: BudgetLimits;
  store: UsageStore;
  /** How long a conversation's counter lives after its last call (default 30 days). */
  conversationTtlMs?: number;
  now?: () => number;
}

/** What a user or conversation has used. */
export interface UsageReport {
  userToday?: UsageTotals;
  conversation?: UsageTotals;
}

/** Usage counting per user and day and per conversation, and the budgets over it. */
export interface Budgets {
  /** Whether any limit is set (else {@link Budgets.check} never throws). */
  readonly enabled: boolean;
  /** Throws `RATE_LIMITED` naming the budget that is spent and when it resets. */
  check(ctx: Pick<CallContext, 'userId' | 'conversationId'>): Promise<void>;
  /**
   * Counts a completion's tokens and cost against the context's user and conversation. Returns
   * `COUNTED` (usage-store.ts) when there was nothing to count or the store counted at once.
   */
  record(ctx: Pick<CallContext, 'userId' | 'conversationId'>, tokens: number, costUsd: number): Promise<void>;
  /** What the context's user (today) and conversation have used. */
  usage(ctx: Pick<CallContext, 'userId' | 'conversationId'>): Promise<UsageReport>;
}

const DAY_MS = 86_400_000;
const DONE: Promise<void> = COUNTED;

// The UTC day's text (`2026-03-10`), formatted once a day rather than once a call, and the
// users' keys of that day: one string per user and day rather than one per call, so a store's
// map finds the key by its cached hash instead of hashing a new string each time.
let cachedDay = Number.NaN;
let cachedDayText = '';
let userKeys = new Map<string, string>();
/** Users whose key of the day is kept. */
const MAX_USER_KEYS = 10_000;
const dayOf = (at: number) => {
  const day = Math.floor(at / DAY_MS);
  if (day !== cachedDay) {
    cachedDayText = new Date(day * DAY_MS).toISOString().slice(0, 10);
    cachedDay = day;
    userKeys = new Map();
  }
  return cachedDayText;
};
const userKey = (userId: string, at: number) => {
  const day = dayOf(at);
  let key = userKeys.get(userId);
  if (key === undefined) {
    key = `user:${userId}:${day}`;
    if (userKeys.size < MAX_USER_KEYS) userKeys.set(userId, key);
  }
  return key;
};
const conversationKey = (conversationId: string) => `conversation:${conversationId}`;

function spent(limit: Limit | undefined, used: UsageTotals): 'tokens' | 'costUsd' | undefined {
  if (!limit) return undefined;
  if (limit.tokens !== undefined && used.tokens >= limit.tokens) return 'tokens';
  if (limit.costUsd !== undefined && used.costUsd >= limit.costUsd) return 'costUsd';
  return undefined;
}

function amount(what: 'tokens' | 'costUsd', value: number): string {
  return what === 'tokens' ? `${Math.round(value)} tokens` : `$${value.toFixed(4)}`;
}

/**
 * Budgets per user per UTC day and per conversation, over a usage store (memory, or Redis to
 * share them across replicas). A call is refused before it runs once a budget is used up; the
 * call that crosses a limit still completes, so a budget can be exceeded by one answer.
 *
 * @example
 * const budgets = createBudgets({ limits: { perUserDaily: { tokens: 100_000 } }, store: createMemoryUsageStore() });
 * await budgets.check(ctx); // RATE_LIMITED once the user's 100k tokens of today are spent
 */
export function createBudgets(options: BudgetsOptions): Budgets {
  const now = options.now ?? Date.now;
  const { perUserDaily, perConversation } = options.limits;
  const conversationTtlMs = options.conversationTtlMs ?? 30 * DAY_MS;
  const enabled =
    perUserDaily?.tokens !== undefined ||
    perUserDaily?.costUsd !== undefined ||
    perConversation?.tokens !== undefined ||
    perConversation?.costUsd !== undefined;

  const usage: Budgets['usage'] = async (ctx) => {
    const at = now();
    const keys: string[] = [];
    if (ctx.userId) keys.push(userKey(ctx.userId, at));
    if (ctx.conversationId) keys.push(conversationKey(ctx.conversationId));
    const totals = keys.length ? await options.store.get(keys) : [];
    let i = 0;
    return {
      ...(ctx.userId ? { userToday: totals[i++]! } : {}),
      ...(ctx.conversationId ? { conversation: totals[i]! } : {}),
    };
  };

  return {
    enabled,
    usage,
    async check(ctx) {
      if (!enabled) return;
      const report = await usage({
        ...(perUserDaily && ctx.userId ? { userId: ctx.userId } : {}),
        ...(perConversation && ctx.conversationId ? { conversationId: ctx.conversationId } : {}),
      });
      const at = now();
      const userOver = report.userToday ? spent(perUserDaily, report.userToday) : undefined;
      if (userOver && report.userToday) {
        const resetsAt = (Math.floor(at / DAY_MS) + 1) * DAY_MS;
        const retryAfterSeconds = Math.max(1, Math.ceil((resetsAt - at) / 1000));
        const limit = perUserDaily![userOver]!;
        throw new ClawmeshError(
          'RATE_LIMITED',
          `the daily ${userOver === 'tokens' ? 'token' : 'cost'} budget of user ${ctx.userId} is spent ` +
            `(${amount(userOver, report.userToday[userOver])} of ${amount(userOver, limit)} used today); ` +
            `it resets at ${new Date(resetsAt).toISOString()}`,
          {
            retryable: true,
            details: {
              budget: 'perUserDaily',
              limit: perUserDaily,
              used: report.userToday,
              resetsAt: new Date(resetsAt).toISOString(),
              retryAfterSeconds,
            },
          },
        );
      }
      const conversationOver = report.conversation ? spent(perConversation, report.conversation) : undefined;
      if (conversationOver && report.conversation) {
        const limit = perConversation![conversationOver]!;
        throw new ClawmeshError(
          'RATE_LIMITED',
          `the ${conversationOver === 'tokens' ? 'token' : 'cost'} budget of conversation ${ctx.conversationId} is spent ` +
            `(${amount(conversationOver, report.conversation[conversationOver])} of ${amount(conversationOver, limit)} used); ` +
            'it does not reset: start a new conversation',
          {
            retryable: false,
            details: { budget: 'perConversation', limit: perConversation, used: report.conversation },
          },
        );
      }
    },
    // Not async: on every answered call, one promise (the store's) rather than two.
    record(ctx, tokens, costUsd) {
      if (tokens <= 0 && costUsd <= 0) return DONE;
      try {
        const at = now();
        const increments: UsageIncrement[] = [];
        if (ctx.userId) {
          // Kept a day past its end, so "today" is always there until it turns into yesterday.
          const ttlMs = (Math.floor(at / DAY_MS) + 2) * DAY_MS - at;
          increments.push({ key: userKey(ctx.userId, at), tokens, costUsd, ttlMs });
        }
        if (ctx.conversationId) {
          increments.push({
            key: conversationKey(ctx.conversationId),
            tokens,
            costUsd,
            ttlMs: conversationTtlMs,
          });
        }
        return increments.length ? options.store.add(increments) : DONE;
      } catch (err) {
        return Promise.reject(err);
      }
    },
  };
}
