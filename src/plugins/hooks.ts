import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ClawmeshPlugin, HookContext, HookRunner, PluginError, TransformHooks } from './types.ts';

/** Options of {@link createHookRunner}. */
export interface HookRunnerOptions {
  /** The loaded plugins, in load order. */
  plugins: ClawmeshPlugin[];
  /** Where contained failures are logged; each plugin gets a child bound to its name. */
  logger: Logger;
  /** Counts contained failures in `clawmesh_plugin_failures_total` when given. */
  metrics?: Metrics;
  /** The timeout of a hook whose plugin sets no `timeoutMs`; 1000 ms when absent. */
  defaultTimeoutMs?: number;
}

type HookName = keyof TransformHooks | 'onError';
type TurnContext = Omit<HookContext, 'logger'>;
type HookFn = (this: ClawmeshPlugin, context: HookContext, value: unknown) => unknown;

/** One plugin's hook, resolved once at creation. */
interface Step {
  plugin: ClawmeshPlugin;
  fn: HookFn;
  logger: Logger;
  timeoutMs: number;
}

/** What one call came to: a value, or a contained failure. */
type Outcome = { ok: true; value: unknown } | { ok: false; reason: 'error' | 'timeout'; message: string };

const HOOKS: readonly HookName[] = [
  'onMessageReceived',
  'onResponseGenerated',
  'onSkillCall',
  'onModelCall',
  'onError',
];
const TEXT_HOOKS: ReadonlySet<HookName> = new Set(['onMessageReceived', 'onResponseGenerated']);

type Fields = Record<string, unknown>;
type Shape = { holds: (value: Fields) => boolean; lacks: string };
const TEXT: Shape = {
  holds: (value) => typeof value.text === 'string',
  lacks: 'an object without a string `text`',
};
/**
 * What an object a hook returns must hold to replace the value: the fields the turn goes on
 * with, and how to say what it lacks. Anything else (an empty object, a number for `text`) is a
 * plugin's bug, contained like a throw, instead of failing the turn or reaching the user and the
 * history.
 */
const SHAPES: Record<keyof TransformHooks, Shape> = {
  onMessageReceived: TEXT,
  onResponseGenerated: TEXT,
  onSkillCall: {
    holds: (value) => Object.hasOwn(value, 'arguments'),
    lacks: 'an object without `arguments`',
  },
  onModelCall: {
    holds: (value) =>
      Array.isArray(value.messages) &&
      (value.tools === undefined || Array.isArray(value.tools)) &&
      (value.model === undefined || typeof value.model === 'string'),
    lacks: 'a model request without a `messages` array (or with `tools` or `model` of the wrong type)',
  },
};

/** Why a returned value cannot replace the hook's value, or `undefined` when it can. */
function unusable(hook: HookName, result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null || Array.isArray(result))
    return `returned an unusable ${Array.isArray(result) ? 'array' : typeof result}`;
  if (hook === 'onError') return undefined;
  const shape = SHAPES[hook];
  return shape.holds(result as Fields) ? undefined : `returned ${shape.lacks}`;
}
const DEFAULT_PRIORITY = 100;

/** The ids every log line of a turn carries (operations.md, Logs). */
function idsOf(turn: TurnContext): Record<string, string> {
  const ids: Record<string, string> = {
    requestId: turn.requestId,
    traceId: turn.traceId,
    conversationId: turn.conversationId,
  };
  if (turn.spanId) ids.spanId = turn.spanId;
  return ids;
}

/**
 * Creates the runner of the plugins' hooks: priority order (lower first, ties in load order),
 * each call under its plugin's timeout, failures logged, counted and skipped.
 *
 * @example
 * const hooks = createHookRunner({ plugins, logger, metrics });
 * const message = await hooks.run('onMessageReceived', turn, { text, userId, ... });
 * if (message === null) return; // a plugin dropped it
 */
export function createHookRunner(options: HookRunnerOptions): HookRunner {
  const { logger, metrics } = options;
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 1000;
  // Array.prototype.sort is stable, so equal priorities keep load order.
  const plugins = [...options.plugins].sort(
    (a, b) => (a.priority ?? DEFAULT_PRIORITY) - (b.priority ?? DEFAULT_PRIORITY),
  );
  const pluginLoggers = new Map(plugins.map((p) => [p, logger.child({ plugin: p.name })]));
  const chains = new Map<HookName, Step[]>();
  for (const hook of HOOKS) {
    const steps: Step[] = [];
    for (const plugin of plugins) {
      const fn = plugin[hook] as HookFn | undefined;
      if (typeof fn !== 'function') continue;
      const timeoutMs = plugin.timeoutMs ?? defaultTimeoutMs;
      steps.push({ plugin, fn, logger: pluginLoggers.get(plugin)!, timeoutMs });
    }
    chains.set(hook, steps);
  }

  /** Calls one hook with its logger and timeout; never throws. */
  const call = async (step: Step, hook: HookName, turn: TurnContext, value: unknown): Promise<Outcome> => {
    const context: HookContext = { ...turn, logger: step.logger.child(idsOf(turn)) };
    // The hook's own timeout, cut short by the turn's deadline: a slow plugin never holds a
    // turn past the time its caller waits for it.
    const untilDeadline = turn.deadline === undefined ? Infinity : Math.max(0, turn.deadline - Date.now());
    const timeoutMs = Math.min(step.timeoutMs, untilDeadline);
    const outcome = await guard(
      () => step.fn.call(step.plugin, context, value),
      timeoutMs,
      untilDeadline < step.timeoutMs
        ? `the turn's deadline came after ${timeoutMs} ms`
        : `timed out after ${timeoutMs} ms`,
    );
    if (!outcome.ok) {
      const { reason, message } = outcome;
      logger.warn(
        { ...idsOf(turn), plugin: step.plugin.name, hook, reason, error: message },
        `plugin ${step.plugin.name} ${hook} ${reason === 'timeout' ? 'timed out' : 'failed'}; skipped`,
      );
      metrics?.pluginFailures.inc({ plugin: step.plugin.name, hook, reason });
    }
    return outcome;
  };

  /** Passes a value through a non-empty chain. */
  const runChain = async (hook: HookName, steps: Step[], turn: TurnContext, initial: object) => {
    let value = initial;
    for (const step of steps) {
      // A copy, so a plugin that mutates its argument and then fails leaves no trace.
      const outcome = await call(step, hook, turn, { ...value });
      if (!outcome.ok) continue;
      const result = outcome.value;
      if (result === undefined) continue;
      if (result === null) {
        // A model call cannot be dropped: its null is ignored, and what earlier plugins changed stays.
        if (hook === 'onModelCall') continue;
        return null;
      }
      if (typeof result === 'string' && TEXT_HOOKS.has(hook)) {
        value = { ...value, text: result };
        continue;
      }
      const problem = unusable(hook, result);
      if (problem === undefined) {
        value = result as object;
        continue;
      }
      logger.warn(
        { ...idsOf(turn), plugin: step.plugin.name, hook, reason: 'invalid', error: problem },
        `plugin ${step.plugin.name} ${hook} ${problem}; ignored`,
      );
      metrics?.pluginFailures.inc({ plugin: step.plugin.name, hook, reason: 'invalid' });
    }
    return value;
  };

  return {
    plugins,
    has: (hook) => (chains.get(hook)?.length ?? 0) > 0,
    run<K extends keyof TransformHooks>(hook: K, turn: TurnContext, value: TransformHooks[K]) {
      const steps = chains.get(hook);
      // The hot path: no plugin has this hook, so nothing is allocated but the promise.
      if (steps === undefined || steps.length === 0) return Promise.resolve(value);
      return runChain(hook, steps, turn, value) as Promise<TransformHooks[K] | null>;
    },
    async notifyError(turn: TurnContext, error: PluginError) {
      const steps = chains.get('onError');
      if (steps === undefined || steps.length === 0) return;
      await Promise.all(steps.map((step) => call(step, 'onError', turn, { ...error })));
    },
  };
}

/**
 * Runs `fn`, turning a sync throw, a rejection or a hang past `timeoutMs` into an outcome
 * (`timedOut` says why it was cut).
 * A synchronous result returns without a timer.
 */
async function guard(fn: () => unknown, timeoutMs: number, timedOut: string): Promise<Outcome> {
  let result: unknown;
  try {
    result = fn();
  } catch (err) {
    return { ok: false, reason: 'error', message: messageOf(err) };
  }
  if (!isThenable(result)) return { ok: true, value: result };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, reason: 'timeout', message: timedOut }), timeoutMs);
  });
  const settled = Promise.resolve(result).then(
    (value): Outcome => ({ ok: true, value }),
    (err: unknown): Outcome => ({ ok: false, reason: 'error', message: messageOf(err) }),
  );
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
