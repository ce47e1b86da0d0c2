/** Where an overridden key came from, by dotted path, to name it in errors. */
export type EnvSources = Map<string, string>;

type Tree = Record<string, unknown>;

/**
 * A list entry a variable set past the end of its list (`CLAWMESH_AGENTS__3__ID` with no agents
 * 1 and 2): the entries in between would be missing.
 */
export interface EnvListGap {
  /** The dotted key of the entry the variable set (`agents.3`). */
  key: string;
  /** The dotted keys of the missing entries before it (`agents.1`, `agents.2`). */
  missing: string[];
  /** The variables that set the entry, in the order read. */
  variables: string[];
}

/** A `CLAWMESH_<PATH>` variable that cannot set any key (`CLAWMESH_AGENTS__SHOP__MODEL`). */
export interface EnvProblem {
  /** The dotted key where the variable's path goes wrong (`agents.shop`). */
  key: string;
  message: string;
  /** The variable. */
  variable: string;
}

/** Environment variables that set one key directly (or add to a list), beside `CLAWMESH_<PATH>`. */
const SHORTCUTS: Record<string, { path: string[]; list?: boolean; append?: boolean; json?: boolean }> = {
  PORT: { path: ['gateway', 'port'], json: true },
  CLAWMESH_API_KEYS: { path: ['gateway', 'apiKeys'], list: true },
  CLAWMESH_PLUGINS: { path: ['plugins'], list: true, append: true },
  CLAWMESH_STORE: { path: ['store', 'kind'] },
  CLAWMESH_SQLITE_PATH: { path: ['store', 'path'] },
  CLAWMESH_BUS: { path: ['bus', 'kind'] },
  CLAWMESH_TRANSPORT: { path: ['transport', 'kind'] },
  CLAWMESH_ROLES: { path: ['roles'], list: true },
  NATS_URL: { path: ['nats', 'url'] },
  REDIS_URL: { path: ['redis', 'url'] },
  DATABASE_URL: { path: ['postgres', 'url'] },
  RABBITMQ_URL: { path: ['rabbitmq', 'url'] },
  TELEGRAM_BOT_TOKEN: { path: ['channels', 'telegram', 'botToken'] },
  TELEGRAM_WEBHOOK_SECRET: { path: ['channels', 'telegram', 'webhookSecret'] },
  TELEGRAM_API_ROOT: { path: ['channels', 'telegram', 'apiRoot'] },
  DISCORD_PUBLIC_KEY: { path: ['channels', 'discord', 'publicKey'] },
  DISCORD_APPLICATION_ID: { path: ['channels', 'discord', 'applicationId'] },
  DISCORD_BOT_TOKEN: { path: ['channels', 'discord', 'botToken'] },
  DISCORD_API_ROOT: { path: ['channels', 'discord', 'apiRoot'] },
  WHATSAPP_APP_SECRET: { path: ['channels', 'whatsapp', 'appSecret'] },
  WHATSAPP_VERIFY_TOKEN: { path: ['channels', 'whatsapp', 'verifyToken'] },
  WHATSAPP_ACCESS_TOKEN: { path: ['channels', 'whatsapp', 'accessToken'] },
  WHATSAPP_PHONE_NUMBER_ID: { path: ['channels', 'whatsapp', 'phoneNumberId'] },
  WHATSAPP_API_ROOT: { path: ['channels', 'whatsapp', 'apiRoot'] },
  SLACK_SIGNING_SECRET: { path: ['channels', 'slack', 'signingSecret'] },
  SLACK_BOT_TOKEN: { path: ['channels', 'slack', 'botToken'] },
  SLACK_API_ROOT: { path: ['channels', 'slack', 'apiRoot'] },
  LOG_LEVEL: { path: ['log', 'level'] },
  OPENAI_API_KEY: { path: ['models', 'openai', 'apiKey'] },
  OPENAI_BASE_URL: { path: ['models', 'openai', 'baseUrl'] },
  OPENAI_MODEL: { path: ['models', 'openai', 'model'] },
  ANTHROPIC_API_KEY: { path: ['models', 'anthropic', 'apiKey'] },
  ANTHROPIC_BASE_URL: { path: ['models', 'anthropic', 'baseUrl'] },
  ANTHROPIC_MODEL: { path: ['models', 'anthropic', 'model'] },
};

/** The top-level config keys a `CLAWMESH_<KEY>…` variable may set; other such variables are not config. */
const TOP_LEVEL_KEYS = new Set([
  'gateway',
  'agents',
  'defaultAgent',
  'skills',
  'models',
  'plugins',
  'pluginTimeoutMs',
  'store',
  'bus',
  'audit',
  'log',
  'metrics',
  'shutdownTimeoutMs',
  'roles',
  'transport',
  'nats',
  'redis',
  'postgres',
  'rabbitmq',
  'channels',
]);

/**
 * Applies environment overrides to a raw config tree (before validation): the shortcuts, and
 * `CLAWMESH_<KEY>__<KEY>…` for any key (`CLAWMESH_GATEWAY__RATE_LIMIT__POINTS=10`,
 * `CLAWMESH_AGENTS__0__MODEL=openai/gpt-4o`). Values are read as JSON when they parse, else
 * as strings. Returns the tree, which variable set each key, and the list entries set past the
 * end of their list.
 */
export function applyEnvOverrides(
  raw: Tree,
  env: NodeJS.ProcessEnv,
): { tree: Tree; sources: EnvSources; gaps: EnvListGap[]; problems: EnvProblem[] } {
  const tree = structuredClone(raw);
  const sources: EnvSources = new Map();
  const generic: Array<{ path: string[]; name: string }> = [];
  const problems: EnvProblem[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === '') continue;
    const shortcut = SHORTCUTS[name];
    if (shortcut) {
      const items = value
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean);
      // Keys, URLs, names and paths stay strings even when they look like numbers.
      let next: unknown = shortcut.list ? items : shortcut.json ? parseValue(value) : value;
      if (shortcut.append) {
        const current = getPath(tree, shortcut.path);
        next = [...(Array.isArray(current) ? current : []), ...items];
      }
      setPath(tree, shortcut.path, next);
      sources.set(shortcut.path.join('.'), name);
      continue;
    }
    if (!name.startsWith('CLAWMESH_')) continue;
    const path = keyPath(name.slice('CLAWMESH_'.length).split('__'));
    if (!TOP_LEVEL_KEYS.has(path[0] ?? '')) continue;
    // An override inside the agent list starts from the default agent, not from nothing.
    if (path[0] === 'agents' && !Array.isArray(tree.agents)) tree.agents = [{ id: 'default' }];
    const problem = pathProblem(tree, path);
    if (problem) {
      problems.push({ ...problem, variable: name });
      continue;
    }
    setPath(tree, path, parseValue(value));
    sources.set(path.join('.'), name);
    generic.push({ path, name });
  }
  // Checked once every variable is in: CLAWMESH_AGENTS__2__ID may come after CLAWMESH_AGENTS__3__ID.
  return { tree, sources, gaps: listGaps(tree, generic), problems };
}

/**
 * Why a variable's key path cannot be set, if it cannot: an empty level (`GATEWAY____PORT`,
 * a trailing `__`), or a name where a list needs an entry's number (`AGENTS__SHOP__MODEL`),
 * which would otherwise be dropped without a word.
 */
function pathProblem(tree: Tree, path: string[]): { key: string; message: string } | undefined {
  const empty = path.indexOf('');
  if (empty !== -1) {
    return {
      key: path.slice(0, empty).join('.'),
      message: 'the variable has an empty level: levels are separated by exactly two underscores (__)',
    };
  }
  let node: unknown = tree;
  for (const [depth, segment] of path.entries()) {
    if (Array.isArray(node) && !/^\d+$/.test(segment)) {
      const list = path.slice(0, depth).join('.');
      return {
        key: `${list}.${segment}`,
        message: `${list} is a list: "${segment}" is not an entry's number (0 for the first)`,
      };
    }
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Tree)[segment];
  }
  return undefined;
}

/** A validation failure, as much of it as {@link retypeEnvValues} reads. */
export interface TypeIssue {
  code: string;
  path: readonly PropertyKey[];
  expected?: string;
}

/**
 * Values that reading as JSON gave the wrong type, read again as the variable wrote them: a text
 * key given digits or `true` (`CLAWMESH_CHANNELS__WHATSAPP__PHONE_NUMBER_ID=106540352242922`)
 * takes the text as written, and a list key given a plain text (`…__ALLOWLIST=alice,bob`, or
 * `=12345`) takes its comma-separated items. A number or boolean inside a JSON value a variable
 * set (`…__ALLOWLIST=[123,"bob"]`) becomes its text. Changes `tree`; returns whether it did.
 */
export function retypeEnvValues(
  tree: Tree,
  issues: readonly TypeIssue[],
  sources: EnvSources,
  env: NodeJS.ProcessEnv,
): boolean {
  let changed = false;
  for (const issue of issues) {
    if (issue.code !== 'invalid_type' || issue.path.some((segment) => typeof segment === 'symbol')) continue;
    const path = issue.path.map(String);
    const value = getPath(tree, path);
    const name = sources.get(path.join('.'));
    const raw = name === undefined ? undefined : env[name];
    const scalar = typeof value === 'number' || typeof value === 'boolean';
    if (issue.expected === 'string' && scalar) {
      const setAbove = path.some((_, depth) => sources.has(path.slice(0, depth).join('.')));
      if (raw !== undefined) setPath(tree, path, raw);
      else if (setAbove) setPath(tree, path, String(value));
      else continue;
      changed = true;
    } else if (issue.expected === 'array' && raw !== undefined && (scalar || typeof value === 'string')) {
      setPath(
        tree,
        path,
        raw
          .split(',')
          .map((item) => item.trim())
          .filter(Boolean),
      );
      changed = true;
    }
  }
  return changed;
}

/** The list entries that variables set beyond the end of their list, one per entry. */
function listGaps(tree: Tree, set: Array<{ path: string[]; name: string }>): EnvListGap[] {
  const gaps = new Map<string, EnvListGap>();
  for (const { path, name } of set) {
    let node: unknown = tree;
    for (const [depth, segment] of path.entries()) {
      if (Array.isArray(node) && /^\d+$/.test(segment)) {
        const index = Number(segment);
        const prefix = path.slice(0, depth).join('.');
        const missing: string[] = [];
        for (let before = 0; before < index; before++) {
          if (node[before] === undefined) missing.push(`${prefix}.${before}`);
        }
        if (missing.length > 0) {
          const key = `${prefix}.${index}`;
          const gap = gaps.get(key) ?? { key, missing, variables: [] };
          gap.variables.push(name);
          gaps.set(key, gap);
          break;
        }
      }
      if (node === null || typeof node !== 'object') break;
      node = (node as Tree)[segment];
    }
  }
  return [...gaps.values()];
}

function parseValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/**
 * Config keys from variable name segments. Under `skills.secrets` the skill name is lower-cased
 * and the secret's own name is kept as written (`STORE_API_KEY`), since skills declare it so.
 */
function keyPath(segments: string[]): string[] {
  const path = segments.map(camelCase);
  if (path[0] === 'skills' && path[1] === 'secrets') {
    if (segments[2] !== undefined) path[2] = segments[2].toLowerCase();
    if (segments[3] !== undefined) path[3] = segments.slice(3).join('__');
    return path.slice(0, 4);
  }
  return path;
}

function camelCase(segment: string): string {
  if (/^\d+$/.test(segment)) return segment;
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function getPath(tree: Tree, path: string[]): unknown {
  let node: unknown = tree;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Tree)[key];
  }
  return node;
}

function setPath(tree: Tree, path: string[], value: unknown): void {
  let node: Tree = tree;
  path.forEach((key, index) => {
    if (index === path.length - 1) {
      node[key] = value;
      return;
    }
    const nextIsIndex = /^\d+$/.test(path[index + 1] ?? '');
    if (node[key] === null || typeof node[key] !== 'object') node[key] = nextIsIndex ? [] : {};
    node = node[key] as Tree;
  });
}
