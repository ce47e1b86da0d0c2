import type { EventPublisher } from '../bus/publisher.ts';
import { type CallContext, elapsedMs } from '../core/context.ts';
import type { Client } from '../core/contract.ts';
import type { ToolCallReport } from '../core/contracts/conversation.ts';
import type { InvokeResult, skillsContract } from '../core/contracts/skills.ts';
import { ClawmeshError, httpStatusOf, isErrorCode } from '../core/errors.ts';
import { type ChatMessage, splitToolName, type ToolCall } from '../core/messages.ts';
import { hideAddresses } from '../core/public-errors.ts';
import { callLogger, type Logger, withoutQuotedText } from '../observability/logger.ts';
import type { HookRunner } from '../plugins/types.ts';
import type { HookScope } from './hook-scope.ts';

/** What running one tool call needs. */
export interface ToolCallDeps {
  skills: Client<typeof skillsContract>;
  hooks: HookRunner;
  events: EventPublisher;
  /** Skills this agent may use; `undefined` means every loaded skill. */
  allowedSkills?: ReadonlySet<string>;
  /** Where a call that never reached its skill host (a transport failure) is logged. */
  logger?: Logger;
  /**
   * Keep the text in that line (`log.includeText`); by default the strings of the call's
   * arguments and the turn's text that its error message quotes are written as `[redacted]`.
   */
  includeText?: boolean;
  /** The text of the turn's message, kept out of the lines unless `includeText`. */
  turnText?: string;
}

/**
 * Runs one tool call the model asked for; every failure becomes a tool error for the model. A
 * server-side failure (a skill host that cannot be reached, a tool that threw) reaches the model,
 * the reply's `toolCalls` and the stored conversation without the addresses it names (`http://…`,
 * `connect ECONNREFUSED …`); the `skill.invoked` event keeps the full text, and so do the logs but
 * for the user's text it quotes (unless `includeText`).
 */
export async function runToolCall(
  call: ToolCall,
  deps: ToolCallDeps,
  ctx: CallContext,
  scope: HookScope,
): Promise<{ message: ChatMessage; report: ToolCallReport }> {
  const started = performance.now();
  const target = splitToolName(call.name);
  let args: unknown = parseArguments(call.arguments);
  let outcome: InvokeResult;
  if (!target) {
    outcome = failure('NOT_FOUND', `no tool named "${call.name}"`, started);
  } else if (deps.allowedSkills && !deps.allowedSkills.has(target.skill)) {
    outcome = failure('PERMISSION_DENIED', `this agent may not use skill "${target.skill}"`, started);
  } else {
    let refused = false;
    if (deps.hooks.has('onSkillCall')) {
      const changed = await deps.hooks.run('onSkillCall', scope, { ...target, arguments: args });
      if (changed === null) refused = true;
      else args = changed.arguments;
    }
    outcome = refused
      ? failure('PERMISSION_DENIED', 'a plugin refused this tool call', started)
      : await invoke(deps, { ...target, arguments: args, callId: call.id }, ctx, started);
  }
  const skill = target?.skill ?? '';
  const tool = target?.tool ?? call.name;
  deps.events.emit(
    'skill.invoked',
    {
      conversationId: scope.conversationId,
      skill,
      tool,
      ok: outcome.ok,
      durationMs: outcome.durationMs,
      ...(outcome.error ? { error: outcome.error.message } : {}),
    },
    ctx,
  );
  const report: ToolCallReport = {
    skill,
    tool,
    arguments: args,
    ok: outcome.ok,
    durationMs: outcome.durationMs,
  };
  const error = outcome.ok ? undefined : publicToolError(outcome.error);
  if (outcome.ok) report.result = outcome.result;
  else report.error = error?.message ?? 'tool failed';
  const content = JSON.stringify(outcome.ok ? (outcome.result ?? null) : { error });
  return { message: { role: 'tool', content, toolCallId: call.id, name: call.name }, report };
}

async function invoke(
  deps: ToolCallDeps,
  request: { skill: string; tool: string; arguments: unknown; callId: string },
  ctx: CallContext,
  started: number,
): Promise<InvokeResult> {
  try {
    return await deps.skills.invoke(request, ctx);
  } catch (err) {
    const error = ClawmeshError.from(err);
    // The skill host logs the failures it returns; one it never saw is logged here.
    if (deps.logger?.isLevelEnabled('warn')) {
      const logged = deps.includeText
        ? error.message
        : withoutQuotedText(error.message, request.arguments, deps.turnText);
      callLogger(deps.logger, ctx, { skill: request.skill, tool: request.tool }).warn(
        { code: error.code },
        `tool call failed: ${logged}`,
      );
    }
    return failure(error.code, error.message, started);
  }
}

/**
 * A tool's failure as the model and the API client see it: a server-side one (`UNAVAILABLE`,
 * `DEADLINE_EXCEEDED`, `INTERNAL`, or a code a skill host made up) without the addresses it
 * names, which are the deployment's; the caller's own mistakes (`INVALID_ARGUMENT`…) as they are,
 * since the model needs their text to correct its arguments.
 */
function publicToolError(error: InvokeResult['error']): { code: string; message: string } | undefined {
  if (!error) return undefined;
  if (isErrorCode(error.code) && httpStatusOf(error.code) < 500) return error;
  const message = hideAddresses(error.message);
  return message === error.message ? error : { code: error.code, message };
}

function failure(code: string, message: string, started: number): InvokeResult {
  return { ok: false, error: { code, message }, durationMs: elapsedMs(started) };
}

/**
 * The model's arguments text, parsed; left as text when it does not parse, or when it is a JSON
 * string (`"red shirt"`, or an object encoded twice): the skill host then reads the text once and
 * says what is wrong with the value, instead of reading a string's contents as arguments.
 */
function parseArguments(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'string' ? text : value;
  } catch {
    return text;
  }
}
