import type { CallContext } from '../core/context.ts';
import { ClawmeshError, type ErrorCode } from '../core/errors.ts';
import { formatZodError } from '../core/validation.ts';
import { callLogger, type Logger } from '../observability/logger.ts';
import type { Skill, ToolContext, ToolDefinition } from './define.ts';

/** A tool as a skill host holds it, with everything a call needs computed once. */
export interface ToolEntry {
  readonly skill: Skill;
  /** The qualified name, `<skill>__<tool>`. */
  readonly name: string;
  readonly tool: ToolDefinition;
  readonly timeoutMs: number;
  readonly ok?: { inc(): void };
  readonly error?: { inc(): void };
}

/** Why a call failed, as it goes back to the model. */
export interface CallFailure {
  code: ErrorCode;
  message: string;
}

/** What one call needs besides the tool: the caller's context and this skill's secrets. */
export interface CallInput {
  readonly arguments: unknown;
  readonly callId?: string;
  readonly ctx: CallContext;
  readonly secrets: (skill: Skill) => Readonly<Record<string, string>>;
  readonly logger: Logger;
}

/**
 * Runs one call: parses the arguments (a JSON text too), runs the tool under
 * min(its timeout, the time left) with a signal that aborts at expiry, and makes the result JSON.
 * Never throws: every failure is a {@link CallFailure}.
 */
export async function runToolCall(
  entry: ToolEntry,
  call: CallInput,
): Promise<{ json: unknown } | CallFailure> {
  const args = parseArguments(entry.tool, call.arguments);
  if ('code' in args) return args;
  const budget = Math.min(entry.timeoutMs, call.ctx.deadline - Date.now());
  if (budget <= 0)
    return { code: 'DEADLINE_EXCEEDED', message: `${entry.name}: no time left before the deadline` };
  const toolCtx = new CallToolContext(entry, call.ctx, call.callId, call.secrets(entry.skill), call.logger);
  let timer: NodeJS.Timeout | undefined;
  try {
    const value = await new Promise<unknown>((resolve, reject) => {
      timer = setTimeout(() => {
        const err = new ClawmeshError(
          'DEADLINE_EXCEEDED',
          `${entry.name} did not finish within ${Math.round(budget)} ms`,
        );
        toolCtx.abort(err);
        reject(err);
      }, budget);
      // Inside the executor, a synchronous throw of `run` rejects too.
      Promise.resolve(entry.tool.run(args.value, toolCtx)).then(resolve, reject);
    });
    return toJson(entry.name, value);
  } catch (err) {
    const code = err instanceof ClawmeshError ? err.code : 'INTERNAL';
    return { code, message: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The ToolContext of one call. The abort controller and the child logger are made only when the
 * tool asks for them: most tools use neither, and a call is on the turn's hot path.
 */
class CallToolContext implements ToolContext {
  readonly requestId: string;
  readonly conversationId?: string;
  readonly userId?: string;
  readonly channel?: string;
  readonly agentId?: string;
  readonly deadline: number;
  #logger: Logger | undefined;
  #ctx: CallContext;
  #controller: AbortController | undefined;
  #abortedBy: Error | undefined;

  constructor(
    private readonly entry: ToolEntry,
    ctx: CallContext,
    readonly callId: string | undefined,
    readonly secrets: Readonly<Record<string, string>>,
    private readonly parentLogger: Logger,
  ) {
    this.#ctx = ctx;
    this.requestId = ctx.requestId;
    this.conversationId = ctx.conversationId;
    this.userId = ctx.userId;
    this.channel = ctx.channel;
    this.agentId = ctx.agentId;
    this.deadline = ctx.deadline;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#abortedBy) this.#controller.abort(this.#abortedBy);
    }
    return this.#controller.signal;
  }

  /** Aborts the signal (now, or as it is made if the tool has not asked for it yet). */
  abort(reason: Error): void {
    this.#abortedBy = reason;
    this.#controller?.abort(reason);
  }

  get logger(): Logger {
    this.#logger ??= callLogger(this.parentLogger, this.#ctx, {
      skill: this.entry.skill.name,
      tool: this.entry.name,
    });
    return this.#logger;
  }

  secret(name: string): string {
    const skill = this.entry.skill.name;
    if (!this.entry.skill.secrets.includes(name)) {
      throw new ClawmeshError('PERMISSION_DENIED', `skill "${skill}" did not declare the secret "${name}"`);
    }
    const value = this.secrets[name];
    if (value === undefined) {
      const where = `environment variable ${name}`;
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `secret "${name}" of skill "${skill}" is not set (${where})`,
      );
    }
    return value;
  }
}

function parseArguments(tool: ToolDefinition, raw: unknown): { value: unknown } | CallFailure {
  let value = raw ?? {};
  if (typeof value === 'string') {
    try {
      // Models send an empty text for a tool without parameters.
      value = value.trim() === '' ? {} : JSON.parse(value);
    } catch (err) {
      return { code: 'INVALID_ARGUMENT', message: `arguments are not valid JSON: ${(err as Error).message}` };
    }
  }
  const parsed = tool.input.safeParse(value);
  if (parsed.success) return { value: parsed.data };
  return { code: 'INVALID_ARGUMENT', message: formatZodError(parsed.error) };
}

function toJson(name: string, value: unknown): { json: unknown } | CallFailure {
  if (value === undefined || value === null) return { json: null };
  if (typeof value === 'string' || typeof value === 'boolean') return { json: value };
  if (typeof value === 'number') return { json: Number.isFinite(value) ? value : null };
  try {
    // A round trip, so a local call returns exactly what HTTP or NATS would carry (Dates as text…).
    const text = JSON.stringify(value);
    return { json: text === undefined ? null : JSON.parse(text) };
  } catch (err) {
    return {
      code: 'INTERNAL',
      message: `${name} returned a value that is not JSON: ${(err as Error).message}`,
    };
  }
}
