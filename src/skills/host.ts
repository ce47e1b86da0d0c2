import { z } from 'zod';
import { type CallContext, elapsedMs } from '../core/context.ts';
import type { Handlers } from '../core/contract.ts';
import type {
  InvokeRequest,
  InvokeResult,
  skillsContract,
  ToolDescriptor,
} from '../core/contracts/skills.ts';
import { ClawmeshError } from '../core/errors.ts';
import { fastCounter } from '../observability/fast-metrics.ts';
import {
  callLogger,
  type Logger,
  REDACTED,
  silentLogger,
  withoutQuotedText,
} from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { type CallFailure, runToolCall, type ToolEntry } from './call.ts';
import { isSkill, type Skill, type ToolDefinition } from './define.ts';

/** Options of {@link createSkillHost}. */
export interface SkillHostOptions {
  /** The skills to serve; their names must differ. */
  skills: readonly Skill[];
  /** Where a skill's secrets come from (only its declared names are read); `process.env` by default. */
  secrets?: (skill: Skill) => Readonly<Record<string, string | undefined>>;
  /** Time limit of a call when neither the tool nor its skill sets one, in milliseconds (10 000). */
  defaultTimeoutMs?: number;
  logger?: Logger;
  /**
   * Keep the arguments' text in the `tool call failed` line (`log.includeText`); by default every
   * argument string the error message quotes is written as `[redacted]`.
   */
  includeText?: boolean;
  /** Counts `toolCalls` by skill, tool and outcome (`ok`, `error`). */
  metrics?: Metrics;
}

/** A skill host: the handlers of the skills contract, to serve on any transport. */
export interface SkillHost {
  readonly handlers: Handlers<typeof skillsContract>;
  readonly skills: readonly Skill[];
}

const NO_SECRETS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Creates a host that lists and runs the tools of the given skills. Everything that can be
 * computed once (lookup table, JSON Schemas, metric children) is, so a call costs a map lookup,
 * a parse and a timer.
 */
export function createSkillHost(options: SkillHostOptions): SkillHost {
  const { defaultTimeoutMs = 10_000, metrics } = options;
  const logger = options.logger ?? silentLogger();
  const readSecrets = options.secrets ?? (() => process.env);
  const skills = Object.freeze([...options.skills]);
  const entries = new Map<string, ToolEntry>();
  const descriptors = new Map<string, readonly ToolDescriptor[]>();

  for (const skill of skills) {
    if (!isSkill(skill)) {
      throw new ClawmeshError('INVALID_ARGUMENT', 'a skill host serves skills made by defineSkill');
    }
    if (descriptors.has(skill.name)) {
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `two skills are named "${skill.name}"; a host serves each name once`,
      );
    }
    const list: ToolDescriptor[] = [];
    for (const [toolName, tool] of Object.entries(skill.tools)) {
      const name = `${skill.name}__${toolName}`;
      list.push(
        Object.freeze({
          skill: skill.name,
          tool: toolName,
          description: tool.description,
          inputSchema: jsonSchemaOf(name, tool),
        }),
      );
      const labels = { skill: skill.name, tool: toolName };
      entries.set(`${skill.name}/${toolName}`, {
        skill,
        name,
        tool,
        timeoutMs: tool.timeoutMs ?? skill.timeoutMs ?? defaultTimeoutMs,
        ok: metrics ? fastCounter(metrics.toolCalls, { ...labels, outcome: 'ok' }) : undefined,
        error: metrics ? fastCounter(metrics.toolCalls, { ...labels, outcome: 'error' }) : undefined,
      });
    }
    descriptors.set(skill.name, Object.freeze(list));
  }
  const all = [...descriptors.values()].flat();

  const secretsOf = (skill: Skill): Readonly<Record<string, string>> => {
    if (skill.secrets.length === 0) return NO_SECRETS;
    const source = readSecrets(skill);
    const granted: Record<string, string> = {};
    for (const name of skill.secrets) {
      const value = source[name];
      if (typeof value === 'string' && value !== '') granted[name] = value;
    }
    return Object.freeze(granted);
  };

  const finish = (
    entry: ToolEntry,
    request: InvokeRequest,
    ctx: CallContext,
    started: number,
    outcome: { json: unknown } | CallFailure,
  ): InvokeResult => {
    const durationMs = elapsedMs(started);
    if ('json' in outcome) {
      entry.ok?.inc();
      if (logger.isLevelEnabled('debug'))
        callLogger(logger, ctx).debug({ tool: entry.name, durationMs }, 'tool call finished');
      return { ok: true, result: outcome.json, durationMs };
    }
    entry.error?.inc();
    // The message goes to the model, the API's client, the events and the dashboard: a tool
    // whose error quotes its own secret (a client library's message, a URL with its key) must
    // not hand the secret on.
    const message = withoutSecrets(
      outcome.message,
      entry.skill.secrets.length > 0 ? secretsOf(entry.skill) : NO_SECRETS,
    );
    const level = outcome.code === 'INVALID_ARGUMENT' ? 'debug' : 'warn';
    if (logger.isLevelEnabled(level)) {
      // Tool errors often quote their arguments, which carry what the user wrote.
      const logged = options.includeText ? message : withoutQuotedText(message, request.arguments);
      callLogger(logger, ctx)[level](
        { skill: entry.skill.name, tool: entry.name, code: outcome.code, durationMs },
        `tool call failed: ${logged}`,
      );
    }
    return { ok: false, error: { code: outcome.code, message }, durationMs };
  };

  const invoke = async (request: InvokeRequest, ctx: CallContext): Promise<InvokeResult> => {
    const entry = entries.get(`${request.skill}/${request.tool}`) ?? notFound(request, descriptors);
    const started = performance.now();
    const call = { arguments: request.arguments, callId: request.callId, ctx, secrets: secretsOf, logger };
    return finish(entry, request, ctx, started, await runToolCall(entry, call));
  };

  const list = async (input: { skills?: string[] } | undefined) => {
    const names = input?.skills;
    if (!names) return { tools: [...all] };
    const tools: ToolDescriptor[] = [];
    for (const name of new Set(names)) {
      const found = descriptors.get(name);
      if (!found) throw new ClawmeshError('NOT_FOUND', `this skill host serves no skill "${name}"`);
      tools.push(...found);
    }
    return { tools };
  };

  return { handlers: { list, invoke }, skills };
}

/** Secret values shorter than this are words, too likely to occur by chance (as in the logs). */
const MIN_SECRET_LENGTH = 8;

/** `message` with each of the skill's secret values replaced by `[redacted]`. */
function withoutSecrets(message: string, secrets: Readonly<Record<string, string>>): string {
  let out = message;
  for (const value of Object.values(secrets)) {
    if (value.length >= MIN_SECRET_LENGTH && out.includes(value)) out = out.replaceAll(value, REDACTED);
  }
  return out;
}

function jsonSchemaOf(name: string, tool: ToolDefinition): Record<string, unknown> {
  // `io: 'input'`: the model writes what the schema accepts, so fields with defaults stay optional.
  const { $schema: _, ...schema } = z.toJSONSchema(tool.input, { io: 'input', unrepresentable: 'any' });
  if (schema.type !== 'object') {
    throw new ClawmeshError('INVALID_ARGUMENT', `${name}: input must be an object schema (z.object({...}))`);
  }
  return deepFreeze(schema);
}

function notFound(request: InvokeRequest, descriptors: Map<string, readonly ToolDescriptor[]>): never {
  const tools = descriptors.get(request.skill);
  if (!tools) throw new ClawmeshError('NOT_FOUND', `this skill host serves no skill "${request.skill}"`);
  const names = tools.map((d) => d.tool).join(', ');
  throw new ClawmeshError(
    'NOT_FOUND',
    `skill "${request.skill}" has no tool "${request.tool}" (it has: ${names})`,
  );
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
