import type { ToolCallReport } from '../core/contracts/conversation.ts';
import type { ChatMessage, ToolSpec } from '../core/messages.ts';
import type { Logger } from '../observability/logger.ts';

/** What every hook gets first: who and where, for logs and decisions. */
export interface HookContext {
  requestId: string;
  traceId: string;
  /** The span of the turn (16 hex), as in its log lines. */
  spanId?: string;
  conversationId: string;
  agentId: string;
  channel: string;
  userId: string;
  /**
   * When the turn must have answered (epoch ms). A hook still running then is cut off as if it
   * had timed out, whatever its own timeout.
   */
  deadline?: number;
  /** A logger bound to the plugin and the turn. */
  logger: Logger;
}

/** The message a plugin sees in `onMessageReceived`. Return it (changed or not), a string, or `null` to drop it. */
export interface PluginMessage {
  text: string;
  userId: string;
  channel: string;
  agentId: string;
  conversationId: string;
  messageId?: string;
  metadata?: Record<string, unknown>;
}

/** The response a plugin sees in `onResponseGenerated`. Return it, a string, or `null` to send nothing. */
export interface PluginResponse {
  text: string;
  conversationId: string;
  toolCalls: ToolCallReport[];
}

/** A tool call a plugin sees in `onSkillCall`. Return it (arguments may change) or `null` to refuse it. */
export interface PluginSkillCall {
  skill: string;
  tool: string;
  arguments: unknown;
}

/** A model request a plugin sees in `onModelCall`. Return it (changed or not) to go on. */
export interface PluginModelCall {
  model?: string;
  messages: ChatMessage[];
  tools?: ToolSpec[];
}

/** An error a plugin sees in `onError`. */
export interface PluginError {
  code: string;
  message: string;
  /** Where it happened: `turn`, `skill`, `model`, `plugin`. */
  stage: string;
}

/** What a hook that only observes returns: nothing. */
// biome-ignore lint/suspicious/noConfusingVoidType: lets a hook without a `return` type-check.
type Nothing = void | undefined;

/** A value a transforming hook may return. Nothing (`undefined`) keeps the value as it was. */
export type HookResult<T> = T | string | null | Nothing | Promise<T | string | null | Nothing>;

/**
 * A Clawmesh plugin. The classic shape is an object with `name`, `version` and hooks, as
 * CommonJS (`module.exports = {…}`) or ESM (`export default {…}`).
 */
export interface ClawmeshPlugin {
  name: string;
  version?: string;
  /** Lower runs first; default 100. Ties keep load order. */
  priority?: number;
  /** Per-hook timeout in milliseconds; the loader's default (1000) when absent. */
  timeoutMs?: number;
  onMessageReceived?(context: HookContext, message: PluginMessage): HookResult<PluginMessage>;
  onResponseGenerated?(context: HookContext, response: PluginResponse): HookResult<PluginResponse>;
  onSkillCall?(context: HookContext, call: PluginSkillCall): HookResult<PluginSkillCall>;
  onModelCall?(context: HookContext, request: PluginModelCall): HookResult<PluginModelCall>;
  onError?(context: HookContext, error: PluginError): void | Promise<void>;
}

/** The hooks that transform a value, and the value each one transforms. */
export interface TransformHooks {
  onMessageReceived: PluginMessage;
  onResponseGenerated: PluginResponse;
  onSkillCall: PluginSkillCall;
  onModelCall: PluginModelCall;
}

/**
 * Runs the hooks of the loaded plugins in priority order, each under its timeout; a plugin
 * that throws or hangs is logged, counted and skipped, never fatal.
 */
export interface HookRunner {
  /** The plugins in the order their hooks run. */
  readonly plugins: readonly ClawmeshPlugin[];
  /** Whether any plugin has this hook (lets the hot path skip work). */
  has(hook: keyof TransformHooks | 'onError'): boolean;
  /**
   * Passes `value` through every plugin's `hook`. Returns the final value, or `null` when a
   * plugin dropped it. A returned string replaces the `text` field (or, for a skill call, is
   * ignored); `undefined` keeps the value.
   */
  run<K extends keyof TransformHooks>(
    hook: K,
    context: Omit<HookContext, 'logger'>,
    value: TransformHooks[K],
  ): Promise<TransformHooks[K] | null>;
  /** Tells every plugin's `onError` about a failure; their own failures are contained too. */
  notifyError(context: Omit<HookContext, 'logger'>, error: PluginError): Promise<void>;
}
