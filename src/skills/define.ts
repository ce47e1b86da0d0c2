import type { z } from 'zod';
import { ClawmeshError } from '../core/errors.ts';
import type { Logger } from '../observability/logger.ts';

/** What a tool's `run` gets besides its input: who asked, the deadline, and this skill's secrets. */
export interface ToolContext {
  /** The id of the inbound request that led to this call. */
  readonly requestId: string;
  /** The id the model gave this tool call, when it gave one; the same on a retried call. */
  readonly callId?: string;
  readonly conversationId?: string;
  readonly userId?: string;
  readonly channel?: string;
  readonly agentId?: string;
  /** Absolute deadline of this call, epoch milliseconds. */
  readonly deadline: number;
  /** Aborts when the call times out; pass it on to `fetch` and other cancellable work. */
  readonly signal: AbortSignal;
  /** The skill's declared secrets that are set, and no others. */
  readonly secrets: Readonly<Record<string, string>>;
  /**
   * A declared secret, or a throw: `PERMISSION_DENIED` for a name the skill did not declare,
   * `INVALID_ARGUMENT` for a declared one that is not set.
   */
  secret(name: string): string;
  /** A logger bound to the skill, the tool and the request. */
  readonly logger: Logger;
}

/** One tool of a skill: what the model reads (description, input schema) and what runs. */
export interface ToolDefinition<S extends z.ZodType = z.ZodType> {
  /** What the tool does, for the model. */
  readonly description: string;
  /** The schema of the arguments; the model sees it as JSON Schema, and `run` gets the parsed value. */
  readonly input: S;
  /** Time limit of one call in milliseconds; the skill's, then the host's, when absent. */
  readonly timeoutMs?: number;
  /** Runs one call. Returns a JSON-serializable value (`undefined` becomes `null`); a throw is a failed call. */
  run(input: z.output<S>, ctx: ToolContext): unknown;
}

/** The input schemas of a skill's tools, by tool name. */
export type ToolSchemas = Record<string, z.ZodType>;

/** A skill's tools, by name, each typed by its own input schema. */
export type ToolDefinitions<T extends ToolSchemas = ToolSchemas> = { [K in keyof T]: ToolDefinition<T[K]> };

/** What {@link defineSkill} takes. */
export interface SkillDefinition<T extends ToolSchemas = ToolSchemas> {
  /** Letters, digits and `-`, starting with a letter; the model sees tools as `<skill>__<tool>`. */
  readonly name: string;
  readonly version: string;
  readonly description?: string;
  /** Names of the secrets (environment variables by default) this skill alone is given. */
  readonly secrets?: readonly string[];
  /** Time limit of one call of any of its tools, in milliseconds. */
  readonly timeoutMs?: number;
  /** The tools, by name (same rules as the skill name). */
  readonly tools: ToolDefinitions<T>;
}

/** A skill made by {@link defineSkill}, ready for a skill host. */
export interface Skill<T extends ToolSchemas = ToolSchemas> {
  readonly name: string;
  readonly version: string;
  readonly description?: string;
  readonly secrets: readonly string[];
  readonly timeoutMs?: number;
  readonly tools: Readonly<ToolDefinitions<T>>;
}

const SKILL_BRAND = Symbol.for('clawmesh.skill');
const NAME = /^[a-zA-Z][a-zA-Z0-9-]*$/;
const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** OpenAI and Anthropic limit a function name to 64 characters. */
const MAX_QUALIFIED_NAME = 64;

/**
 * Declares a skill: checks its names and tools and marks it for skill hosts and the loader.
 * Each tool's `run` gets its input typed from the tool's `input` schema.
 *
 * @example
 * import { defineSkill, z } from 'clawmesh/skill';
 *
 * export default defineSkill({
 *   name: 'inventory',
 *   version: '1.0.0',
 *   secrets: ['STORE_API_KEY'],
 *   tools: {
 *     lookupStock: {
 *       description: 'How many units of an item are in stock',
 *       input: z.object({ item: z.string() }),
 *       run: async ({ item }, ctx) => ({ item, units: 42 }),
 *     },
 *   },
 * });
 */
export function defineSkill<T extends ToolSchemas>(def: SkillDefinition<T>): Skill<T> {
  const fail = (problem: string): never => {
    const who = typeof def?.name === 'string' ? `defineSkill("${def.name}")` : 'defineSkill';
    throw new ClawmeshError('INVALID_ARGUMENT', `${who}: ${problem}`);
  };
  if (typeof def !== 'object' || def === null) fail('expected a skill definition object');
  checkName(def.name, 'skill name', fail);
  if (typeof def.version !== 'string' || def.version === '') fail('version must be a non-empty string');
  checkTimeout(def.timeoutMs, 'timeoutMs', fail);
  const secrets = def.secrets ?? [];
  if (!Array.isArray(secrets)) fail('secrets must be an array of names');
  for (const secret of secrets) {
    if (typeof secret !== 'string' || !SECRET_NAME.test(secret)) {
      fail(`secret name ${JSON.stringify(secret)} must be an environment variable name`);
    }
  }
  const tools = def.tools as Record<string, ToolDefinition> | undefined;
  if (typeof tools !== 'object' || tools === null || Object.keys(tools).length === 0) {
    fail('tools must be an object with at least one tool');
  }
  for (const [toolName, tool] of Object.entries(tools ?? {})) {
    checkName(toolName, 'tool name', fail);
    if (def.name.length + 2 + toolName.length > MAX_QUALIFIED_NAME) {
      fail(`"${def.name}__${toolName}" is longer than ${MAX_QUALIFIED_NAME} characters, which models reject`);
    }
    if (typeof tool?.description !== 'string' || tool.description.trim() === '') {
      fail(`tool "${toolName}" needs a description`);
    }
    if (typeof (tool.input as { safeParse?: unknown })?.safeParse !== 'function') {
      fail(`tool "${toolName}": input must be a zod schema`);
    }
    if (typeof tool.run !== 'function') fail(`tool "${toolName}": run must be a function`);
    checkTimeout(tool.timeoutMs, `tool "${toolName}": timeoutMs`, fail);
  }

  const skill: Skill<T> = {
    name: def.name,
    version: def.version,
    ...(def.description === undefined ? {} : { description: def.description }),
    secrets: Object.freeze([...new Set(secrets)]),
    ...(def.timeoutMs === undefined ? {} : { timeoutMs: def.timeoutMs }),
    tools: Object.freeze({ ...def.tools }),
  };
  Object.defineProperty(skill, SKILL_BRAND, { value: true, enumerable: false });
  return Object.freeze(skill);
}

/**
 * Whether a value is a skill made by {@link defineSkill} (from this or another copy of
 * Clawmesh: the brand is a registered symbol).
 */
export function isSkill(value: unknown): value is Skill {
  return (
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[SKILL_BRAND] === true
  );
}

function checkName(name: unknown, what: string, fail: (problem: string) => never): asserts name is string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    fail(
      `${what} ${JSON.stringify(name)} must start with a letter and hold only letters, digits and "-" ` +
        '(the model sees "<skill>__<tool>")',
    );
  }
}

function checkTimeout(value: unknown, what: string, fail: (problem: string) => never): void {
  if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
    fail(`${what} must be a positive number of milliseconds`);
  }
}
