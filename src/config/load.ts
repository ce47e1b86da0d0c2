import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import type * as Yaml from 'yaml';
import { ClawmeshError } from '../core/errors.ts';
import { redactUrl } from '../core/redact-url.ts';
import { applyEnvOverrides, type EnvListGap, type EnvProblem, retypeEnvValues } from './env.ts';
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
  const { tree, sources, gaps, problems: envProblems } = applyEnvOverrides(raw, env);
  const merged = options.overrides ? deepMerge(tree, options.overrides) : tree;
  let result = ConfigSchema.safeParse(merged);
  // Digits meant as a text (a phone number id) or a plain list were read as JSON: read them as written.
  if (!result.success && retypeEnvValues(merged, result.error.issues, sources, env))
    result = ConfigSchema.safeParse(merged);
  const setBy = (key: string) =>
    sources.get(key) ?? [...sources].find(([path]) => key.startsWith(`${path}.`))?.[1];
  const problems: Problem[] = [...envProblems.map(envProblem), ...gaps.map(gapProblem)];
  if (!result.success) {
    // A missing entry fails validation too; its gap above already says why.
    const inGap = (key: string) =>
      gaps.some((gap) => gap.missing.some((missing) => key === missing || key.startsWith(`${missing}.`)));
    for (const issue of result.error.issues) {
      const key = issue.path.map(String).join('.');
      if (inGap(key)) continue;
      if (issue.code === 'unrecognized_keys') {
        // One line per key, each naming the variable that set it (if one did).
        for (const name of issue.keys) {
          problems.push({
            key,
            message: `Unrecognized key: "${name}"`,
            from: setBy(key ? `${key}.${name}` : name),
          });
        }
        continue;
      }
      problems.push({ key, message: issue.message, from: setBy(key) });
    }
  }
  if (problems.length > 0 || !result.success) {
    // "in <file>" only when the file may hold a problem: not when variables set every bad key.
    const where = file && problems.some((problem) => !problem.from) ? ` in ${file}` : '';
    throw invalidConfig(problems, where);
  }
  const config = finish(result.data, setBy);
  return { config, baseDir: file ? dirname(file) : cwd, ...(file ? { file } : {}) };
}

/** One bad key of a configuration, and the variable that set it. */
interface Problem {
  /** The dotted key; empty for the top level. */
  key: string;
  message: string;
  /** The environment variables that set the key, when any did. */
  from?: string | undefined;
}

/** The error of an invalid configuration: one line per problem, naming its key and variable. */
function invalidConfig(problems: Problem[], where = ''): ClawmeshError {
  const lines = problems.map(
    (problem) =>
      `${problem.key || '(root)'}: ${problem.message}${problem.from ? ` (set by ${problem.from})` : ''}`,
  );
  return new ClawmeshError('INVALID_ARGUMENT', `invalid configuration${where}:\n  ${lines.join('\n  ')}`, {
    details: { keys: problems.map((problem) => problem.key) },
  });
}

/** A variable that could set no key, as a problem of the key where its path goes wrong. */
function envProblem(problem: EnvProblem): Problem {
  return { key: problem.key, message: problem.message, from: problem.variable };
}

/** A list entry set by a variable past the end of its list, as a problem of that entry. */
function gapProblem(gap: EnvListGap): Problem {
  const index = gap.key.slice(gap.key.lastIndexOf('.') + 1);
  const missing = `${gap.missing.join(', ')} ${gap.missing.length > 1 ? 'are' : 'is'} missing`;
  return {
    key: gap.key,
    message: `list index ${index} given, but ${missing}: a list's entries are numbered from 0 without gaps`,
    from: gap.variables.join(', '),
  };
}

/** The YAML parser, loaded only when there is a file to read (it costs about 9 MB of RSS). */
function yaml(): typeof Yaml {
  return createRequire(import.meta.url)('yaml') as typeof Yaml;
}

/** What is wrong with a config file itself, in `details.fileProblem` of its error. */
export type ConfigFileProblem = 'not-found' | 'unreadable' | 'not-yaml' | 'not-a-mapping';

function readConfigFile(file: string): Record<string, unknown> {
  const fail = (message: string, fileProblem: ConfigFileProblem, cause?: unknown) =>
    new ClawmeshError('INVALID_ARGUMENT', message, { cause, details: { file, fileProblem } });
  if (!existsSync(file)) throw fail(`config file not found: ${file}`, 'not-found');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw fail(
      `config file cannot be read: ${file}: ${err instanceof Error ? err.message : String(err)}`,
      'unreadable',
      err,
    );
  }
  const { parse: parseYaml, YAMLParseError } = yaml();
  try {
    const parsed: unknown = parseYaml(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw fail(`${file}: the top level must be a mapping of keys`, 'not-a-mapping');
    }
    return parsed as Record<string, unknown>;
  } catch (err) {
    if (err instanceof ClawmeshError) throw err;
    const detail = err instanceof YAMLParseError ? err.message : String(err);
    throw fail(`${file} is not valid YAML: ${detail}`, 'not-yaml', err);
  }
}

/** Derived defaults and cross-key checks that one key's schema cannot express. */
function finish(config: Config, setBy: (key: string) => string | undefined): Config {
  const ids = new Set<string>();
  config.agents.forEach((agent, index) => {
    if (ids.has(agent.id)) {
      const key = `agents.${index}.id`;
      throw invalidConfig([{ key, message: `duplicate agent id "${agent.id}"`, from: setBy(key) }]);
    }
    ids.add(agent.id);
  });
  if (config.defaultAgent && !ids.has(config.defaultAgent)) {
    const message = `no agent has id "${config.defaultAgent}" (agents: ${[...ids].join(', ')})`;
    throw invalidConfig([{ key: 'defaultAgent', message, from: setBy('defaultAgent') }]);
  }
  const servers = serverUrlProblems(config, setBy);
  if (servers.length > 0) throw invalidConfig(servers);
  const models = config.models;
  const fallbackModel = models.openai.apiKey ? `openai/${models.openai.model}` : 'local';
  return { ...config, models: { ...models, default: models.default ?? fallbackModel } };
}

/** The shape of a PostgreSQL URL, as the messages about one show it. */
export const POSTGRES_URL_SHAPE = 'postgres://user:password@host:5432/database';

/** The servers a config may name, their key, the schemes their clients take and an example. */
const SERVER_URLS = [
  {
    key: 'postgres.url',
    name: 'a PostgreSQL',
    schemes: ['postgres:', 'postgresql:'],
    shape: POSTGRES_URL_SHAPE,
    variable: 'DATABASE_URL',
  },
  {
    key: 'redis.url',
    name: 'a Redis',
    schemes: ['redis:', 'rediss:'],
    shape: 'redis://host:6379',
    variable: 'REDIS_URL',
  },
  {
    key: 'rabbitmq.url',
    name: 'a RabbitMQ',
    schemes: ['amqp:', 'amqps:'],
    shape: 'amqp://user:password@host:5672',
    variable: 'RABBITMQ_URL',
  },
  {
    key: 'nats.url',
    name: 'a NATS',
    schemes: ['nats:', 'tls:'],
    shape: 'nats://host:4222',
    variable: 'NATS_URL',
  },
] as const;

/**
 * Whether the config talks to Redis: a store, the bus, rate limits, the model cache or budgets, or
 * the turn lease (\`auto\` takes Redis when the store or the transport is shared, as at start).
 * Only a conversation role opens the lease; the check errs on the side of the URL being needed.
 */
function usesRedis(config: Config): boolean {
  const { store, bus, transport, channels, models } = config;
  const sharedState = transport.kind !== 'local' || store.kind === 'redis' || store.kind === 'postgres';
  const lease = store.lease === 'auto' ? (sharedState ? 'redis' : 'none') : store.lease;
  return (
    store.kind === 'redis' ||
    bus.kind === 'redis' ||
    lease === 'redis' ||
    channels.limiter === 'redis' ||
    models.cache.kind === 'redis' ||
    models.budgets.store === 'redis'
  );
}

/**
 * The server URLs the config uses that their client could not read: \`DATABASE_URL=notaurl\` would
 * fail much later as \`getaddrinfo ENOTFOUND base\`, \`NATS_URL=http://…\` would be taken as NATS.
 * Only for the servers in use: \`DATABASE_URL\` or \`REDIS_URL\` are common names that a process
 * without them may have set for something else. NATS servers are a comma-separated list, each
 * with a scheme or as \`host:port\`.
 */
function serverUrlProblems(config: Config, setBy: (key: string) => string | undefined): Problem[] {
  const used: Record<(typeof SERVER_URLS)[number]['key'], boolean> = {
    'postgres.url': config.store.kind === 'postgres',
    'redis.url': usesRedis(config),
    'rabbitmq.url': config.bus.kind === 'rabbitmq',
    'nats.url': config.transport.kind === 'nats' || config.bus.kind === 'nats',
  };
  const problems: Problem[] = [];
  for (const server of SERVER_URLS) {
    if (!used[server.key]) continue;
    const url =
      server.key === 'postgres.url'
        ? config.postgres.url
        : server.key === 'redis.url'
          ? config.redis.url
          : server.key === 'rabbitmq.url'
            ? config.rabbitmq.url
            : config.nats.url;
    const parts = server.key === 'nats.url' ? url.split(',').map((part) => part.trim()) : [url];
    if (parts.every((part) => hasScheme(part, server.schemes, server.key === 'nats.url'))) continue;
    const from = setBy(server.key);
    problems.push({
      key: server.key,
      message: `"${maskPassword(url)}" is not ${server.name} URL such as ${server.shape}${from ? '' : ` (or set ${server.variable})`}`,
      from,
    });
  }
  return problems;
}

/** Whether a URL has one of the schemes, or (when allowed) is a bare \`host:port\`. */
function hasScheme(text: string, schemes: readonly string[], bareHostPort: boolean): boolean {
  if (bareHostPort && /^[A-Za-z0-9.[\]:-]+:\d+$/.test(text) && !text.includes('//')) return true;
  try {
    return schemes.includes(new URL(text).protocol);
  } catch {
    return false;
  }
}

/** A URL-like text with its password as `***`, whether or not it parses as a URL. */
function maskPassword(text: string): string {
  const masked = redactUrl(text);
  return masked === text ? text.replace(/:[^:@/\s]+@/g, ':***@') : masked;
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
