import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import type * as Yaml from 'yaml';
import { ClawmeshError } from '../core/errors.ts';
import { applyEnvOverrides } from './env.ts';
import { type Config, ConfigSchema } from './schema.ts';

/** The default config file name, looked up in the working directory. */
export const DEFAULT_CONFIG_FILE = 'clawmesh.config.yaml';

/** A loaded configuration and where it came from. */
export interface LoadedConfig {
  config: Config;
  /** The file read, when there was one. */
  file?: string;
  /** The directory relative paths in the config resolve from. */
  baseDir: string;
}

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** The config file; `CLAWMESH_CONFIG`, then `./clawmesh.config.yaml` if it exists, when absent. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Values that win over the file and the environment (used by tests and embedders). */
  overrides?: Record<string, unknown>;
}

/**
 * Reads, overrides from the environment and validates the configuration. An invalid config
 * throws `INVALID_ARGUMENT` whose message names each bad key and the variable that set it.
 *
 * @example
 * const { config } = loadConfig({ file: 'clawmesh.config.yaml' });
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const named = options.file ?? env.CLAWMESH_CONFIG;
  const file = named
    ? resolve(cwd, named)
    : existsSync(resolve(cwd, DEFAULT_CONFIG_FILE))
      ? resolve(cwd, DEFAULT_CONFIG_FILE)
      : undefined;
  const raw = file ? readConfigFile(file) : {};
  const { tree, sources } = applyEnvOverrides(raw, env);
  const merged = options.overrides ? deepMerge(tree, options.overrides) : tree;
  const result = ConfigSchema.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const key = issue.path.map(String).join('.') || '(root)';
      const from = sources.get(key) ?? [...sources].find(([path]) => key.startsWith(`${path}.`))?.[1];
      return `${key}: ${issue.message}${from ? ` (set by ${from})` : ''}`;
    });
    const where = file ? ` in ${file}` : '';
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `invalid configuration${where}:\n  ${problems.join('\n  ')}`,
      {
        details: { keys: result.error.issues.map((issue) => issue.path.map(String).join('.')) },
      },
    );
  }
  const config = finish(result.data);
  return { config, baseDir: file ? dirname(file) : cwd, ...(file ? { file } : {}) };
}

/** The YAML parser, loaded only when there is a file to read (it costs about 9 MB of RSS). */
function yaml(): typeof Yaml {
  return createRequire(import.meta.url)('yaml') as typeof Yaml;
}

function readConfigFile(file: string): Record<string, unknown> {
  if (!existsSync(file)) throw new ClawmeshError('INVALID_ARGUMENT', `config file not found: ${file}`);
  const { parse: parseYaml, YAMLParseError } = yaml();
  try {
    const parsed: unknown = parseYaml(readFileSync(file, 'utf8'));
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ClawmeshError('INVALID_ARGUMENT', `${file}: the top level must be a mapping of keys`);
    }
    return parsed as Record<string, unknown>;
  } catch (err) {
    if (err instanceof ClawmeshError) throw err;
    const detail = err instanceof YAMLParseError ? err.message : String(err);
    throw new ClawmeshError('INVALID_ARGUMENT', `${file} is not valid YAML: ${detail}`, { cause: err });
  }
}

/** Derived defaults and cross-key checks that one key's schema cannot express. */
function finish(config: Config): Config {
  const ids = new Set<string>();
  config.agents.forEach((agent, index) => {
    if (ids.has(agent.id)) {
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `invalid configuration:\n  agents.${index}.id: duplicate agent id "${agent.id}"`,
      );
    }
    ids.add(agent.id);
  });
  if (config.defaultAgent && !ids.has(config.defaultAgent)) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `invalid configuration:\n  defaultAgent: no agent has id "${config.defaultAgent}" (agents: ${[...ids].join(', ')})`,
    );
  }
  const models = config.models;
  const fallbackModel = models.openai.apiKey ? `openai/${models.openai.model}` : 'local';
  return { ...config, models: { ...models, default: models.default ?? fallbackModel } };
}

function deepMerge(base: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
