import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClawmeshError } from '../core/errors.ts';
import { applyEnvOverrides } from './env.ts';
import { DEFAULT_CONFIG_FILE, loadConfig } from './load.ts';
import { ConfigSchema } from './schema.ts';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'clawmesh-config-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes a file under the test's directory and returns its absolute path. */
function write(name: string, text: string): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

/** The error `run` throws; fails the test when it returns. */
function failure(run: () => unknown): ClawmeshError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ClawmeshError);
    return err as ClawmeshError;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig defaults', () => {
  it('returns the schema defaults with no file and an empty environment', () => {
    const { config, file, baseDir } = loadConfig({ env: {}, cwd: dir });
    expect(file).toBeUndefined();
    expect(baseDir).toBe(dir);
    expect(config.gateway).toEqual({
      port: 8080,
      host: '0.0.0.0',
      apiKeys: [],
      bodyLimitBytes: 64 * 1024,
      rateLimit: { points: 60, durationSeconds: 60 },
      attemptTimeoutMs: 15_000,
      idempotencyTtlSeconds: 24 * 3600,
    });
    expect(config.roles).toEqual(['gateway', 'conversation', 'skills', 'models']);
    expect(config.transport).toMatchObject({ kind: 'local', urls: {} });
    expect(config.store).toMatchObject({ kind: 'sqlite', lease: 'auto', leaseTtlMs: 10_000 });
    expect(config.agents).toHaveLength(1);
    expect(config.agents[0]).toMatchObject({
      id: 'default',
      name: 'Clawmesh',
      maxSteps: 6,
      contextTokens: 8000,
      turnTimeoutMs: 60_000,
    });
    expect(config.defaultAgent).toBeUndefined();
    expect(config.skills).toEqual({ load: ['inventory', 'support'], timeoutMs: 10_000, secrets: {} });
    expect(config.models).toMatchObject({
      default: 'local',
      openai: { model: 'gpt-4o-mini', timeoutMs: 60_000 },
    });
    expect(config.plugins).toEqual([]);
    expect(config.pluginTimeoutMs).toBe(1000);
    expect(config.store).toEqual({
      kind: 'sqlite',
      path: './data/clawmesh.db',
      thread: false,
      lease: 'auto',
      leaseTtlMs: 10_000,
    });
    expect(config.bus).toEqual({ kind: 'memory', maxAttempts: 5 });
    expect(config.audit).toEqual({ enabled: true, path: './data/audit.jsonl' });
    expect(config.log).toMatchObject({ level: 'info' });
    expect(config.shutdownTimeoutMs).toBe(30_000);
  });

  it('accepts the empty object as a whole config', () => {
    expect(ConfigSchema.parse({}).gateway.port).toBe(8080);
  });
});

describe('loadConfig files', () => {
  it('reads an explicit file relative to cwd and resolves paths from its directory', () => {
    const path = write('conf/custom.yaml', 'gateway:\n  port: 9100\nlog:\n  level: warn\n');
    const { config, file, baseDir } = loadConfig({ file: 'conf/custom.yaml', env: {}, cwd: dir });
    expect(file).toBe(path);
    expect(baseDir).toBe(join(dir, 'conf'));
    expect(config.gateway.port).toBe(9100);
    expect(config.gateway.host).toBe('0.0.0.0');
    expect(config.log.level).toBe('warn');
  });

  it('reads the file named by CLAWMESH_CONFIG', () => {
    const path = write('from-env.yaml', 'store:\n  kind: memory\n');
    const { config, file } = loadConfig({ env: { CLAWMESH_CONFIG: 'from-env.yaml' }, cwd: dir });
    expect(file).toBe(path);
    expect(config.store.kind).toBe('memory');
  });

  it('prefers the explicit file over CLAWMESH_CONFIG', () => {
    write('explicit.yaml', 'gateway:\n  port: 1111\n');
    write('from-env.yaml', 'gateway:\n  port: 2222\n');
    const { config } = loadConfig({
      file: 'explicit.yaml',
      env: { CLAWMESH_CONFIG: 'from-env.yaml' },
      cwd: dir,
    });
    expect(config.gateway.port).toBe(1111);
  });

  it(`finds ./${DEFAULT_CONFIG_FILE} in cwd when no file is named`, () => {
    const path = write(DEFAULT_CONFIG_FILE, 'agents:\n  - id: helper\n    model: local\n');
    const { config, file, baseDir } = loadConfig({ env: {}, cwd: dir });
    expect(file).toBe(path);
    expect(baseDir).toBe(dir);
    expect(config.agents.map((agent) => agent.id)).toEqual(['helper']);
    expect(config.agents[0]?.name).toBe('Clawmesh');
  });

  it('treats an empty file as all defaults', () => {
    write(DEFAULT_CONFIG_FILE, '# nothing set yet\n');
    expect(loadConfig({ env: {}, cwd: dir }).config.gateway.port).toBe(8080);
  });

  it('rejects a file that is not valid YAML with INVALID_ARGUMENT naming the file', () => {
    const path = write('broken.yaml', 'gateway:\n  port: [8080\n');
    const err = failure(() => loadConfig({ file: path, env: {}, cwd: dir }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain(path);
    expect(err.message).toContain('not valid YAML');
    expect(err.cause).toBeDefined();
  });

  it('rejects a file whose top level is a list', () => {
    const path = write('list.yaml', '- gateway\n- agents\n');
    const err = failure(() => loadConfig({ file: path, env: {}, cwd: dir }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain(path);
    expect(err.message).toContain('top level must be a mapping');
  });

  it('rejects a file whose top level is a scalar', () => {
    const path = write('scalar.yaml', 'just some words\n');
    const err = failure(() => loadConfig({ file: path, env: {}, cwd: dir }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('top level must be a mapping');
  });

  it('rejects a named file that does not exist', () => {
    const err = failure(() => loadConfig({ file: 'missing.yaml', env: {}, cwd: dir }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toBe(`config file not found: ${join(dir, 'missing.yaml')}`);
  });

  it('rejects a file named by CLAWMESH_CONFIG that does not exist', () => {
    const err = failure(() => loadConfig({ env: { CLAWMESH_CONFIG: 'gone.yaml' }, cwd: dir }));
    expect(err.message).toContain(join(dir, 'gone.yaml'));
  });

  it('names the dotted key and the file of a bad value', () => {
    const path = write('bad.yaml', 'gateway:\n  port: high\n  rateLimit:\n    points: 0\n');
    const err = failure(() => loadConfig({ file: path, env: {}, cwd: dir }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain(`invalid configuration in ${path}`);
    expect(err.message).toMatch(/^ {2}gateway\.port: /m);
    expect(err.message).toMatch(/^ {2}gateway\.rateLimit\.points: /m);
    expect(err.message).not.toContain('set by');
    expect(err.details).toEqual({ keys: ['gateway.port', 'gateway.rateLimit.points'] });
  });

  it('names the index of a bad list item', () => {
    const path = write('agents.yaml', 'agents:\n  - id: ok\n  - id: "not ok!"\n');
    const err = failure(() => loadConfig({ file: path, env: {}, cwd: dir }));
    expect(err.message).toContain('agents.1.id: must be 1-64 letters, digits or . _ -');
  });
});

describe('loadConfig environment shortcuts', () => {
  it('sets the gateway port from PORT', () => {
    expect(loadConfig({ env: { PORT: '9000' }, cwd: dir }).config.gateway.port).toBe(9000);
  });

  it('ignores a variable set to the empty string', () => {
    expect(loadConfig({ env: { PORT: '' }, cwd: dir }).config.gateway.port).toBe(8080);
  });

  it('reads CLAWMESH_API_KEYS as a comma list, trimming blanks', () => {
    const env = { CLAWMESH_API_KEYS: ' key-one-123, key-two-456 ,,' };
    expect(loadConfig({ env, cwd: dir }).config.gateway.apiKeys).toEqual(['key-one-123', 'key-two-456']);
  });

  it('appends CLAWMESH_PLUGINS to the plugins of the file', () => {
    write(
      DEFAULT_CONFIG_FILE,
      'plugins:\n  - ./plugins/audit.js\n  - path: ./plugins/mod.js\n    priority: 5\n',
    );
    const env = { CLAWMESH_PLUGINS: 'clawmesh-moderation,./plugins/extra.js' };
    expect(loadConfig({ env, cwd: dir }).config.plugins).toEqual([
      './plugins/audit.js',
      { path: './plugins/mod.js', priority: 5 },
      'clawmesh-moderation',
      './plugins/extra.js',
    ]);
  });

  it('sets the store kind from CLAWMESH_STORE and the log level from LOG_LEVEL', () => {
    const { config } = loadConfig({ env: { CLAWMESH_STORE: 'memory', LOG_LEVEL: 'debug' }, cwd: dir });
    expect(config.store.kind).toBe('memory');
    expect(config.log.level).toBe('debug');
  });

  it('makes openai the default model when OPENAI_API_KEY is set', () => {
    const { config } = loadConfig({ env: { OPENAI_API_KEY: 'sk-test-abc' }, cwd: dir });
    expect(config.models.openai.apiKey).toBe('sk-test-abc');
    expect(config.models.default).toBe('openai/gpt-4o-mini');
  });

  it('uses OPENAI_MODEL and OPENAI_BASE_URL in the openai settings', () => {
    const env = {
      OPENAI_API_KEY: 'sk-test-abc',
      OPENAI_MODEL: 'gpt-4o',
      OPENAI_BASE_URL: 'http://127.0.0.1:9999/v1',
    };
    const { config } = loadConfig({ env, cwd: dir });
    expect(config.models.default).toBe('openai/gpt-4o');
    expect(config.models.openai).toMatchObject({ model: 'gpt-4o', baseUrl: 'http://127.0.0.1:9999/v1' });
  });

  it('keeps models.default from the file when OPENAI_API_KEY is set', () => {
    write(DEFAULT_CONFIG_FILE, 'models:\n  default: local\n');
    const { config } = loadConfig({ env: { OPENAI_API_KEY: 'sk-test-abc' }, cwd: dir });
    expect(config.models.default).toBe('local');
  });

  it('names the shortcut variable that set a bad value', () => {
    const err = failure(() => loadConfig({ env: { PORT: '70000' }, cwd: dir }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(/gateway\.port: .*\(set by PORT\)/);
  });

  it('names CLAWMESH_API_KEYS for a key that is too short', () => {
    const err = failure(() => loadConfig({ env: { CLAWMESH_API_KEYS: 'long-enough-key,short' }, cwd: dir }));
    expect(err.message).toContain(
      'gateway.apiKeys.1: an API key needs at least 8 characters (set by CLAWMESH_API_KEYS)',
    );
  });

  it('names OPENAI_BASE_URL when it is not a URL', () => {
    const err = failure(() => loadConfig({ env: { OPENAI_BASE_URL: 'not a url' }, cwd: dir }));
    expect(err.message).toMatch(/models\.openai\.baseUrl: .*\(set by OPENAI_BASE_URL\)/);
  });
});

describe('loadConfig generic environment keys', () => {
  it('sets a nested key from CLAWMESH_<PATH> with __ between levels', () => {
    const { config } = loadConfig({ env: { CLAWMESH_GATEWAY__RATE_LIMIT__POINTS: '5' }, cwd: dir });
    expect(config.gateway.rateLimit).toEqual({ points: 5, durationSeconds: 60 });
  });

  it('sets a field of a list item by its index, keeping the rest of the item', () => {
    write(DEFAULT_CONFIG_FILE, 'agents:\n  - id: first\n    maxSteps: 3\n  - id: second\n');
    const { config } = loadConfig({ env: { CLAWMESH_AGENTS__0__MODEL: 'x' }, cwd: dir });
    expect(config.agents[0]).toMatchObject({ id: 'first', model: 'x', maxSteps: 3 });
    expect(config.agents[1]?.model).toBeUndefined();
  });

  it('parses numbers, booleans and arrays as JSON and keeps other values as strings', () => {
    const env = {
      CLAWMESH_GATEWAY__BODY_LIMIT_BYTES: '1024',
      CLAWMESH_AUDIT__ENABLED: 'false',
      CLAWMESH_SKILLS__LOAD: '["inventory","./skills/weather.js"]',
      CLAWMESH_GATEWAY__HOST: '127.0.0.1',
      CLAWMESH_DEFAULT_AGENT: 'default',
    };
    const { config } = loadConfig({ env, cwd: dir });
    expect(config.gateway.bodyLimitBytes).toBe(1024);
    expect(config.audit.enabled).toBe(false);
    expect(config.skills.load).toEqual(['inventory', './skills/weather.js']);
    expect(config.gateway.host).toBe('127.0.0.1');
    expect(config.defaultAgent).toBe('default');
  });

  it('overrides a value of the file', () => {
    write(DEFAULT_CONFIG_FILE, 'gateway:\n  port: 9100\n  host: 127.0.0.1\n');
    const { config } = loadConfig({ env: { CLAWMESH_GATEWAY__PORT: '9200' }, cwd: dir });
    expect(config.gateway).toMatchObject({ port: 9200, host: '127.0.0.1' });
  });

  it('names the environment variable that set a bad key', () => {
    const err = failure(() => loadConfig({ env: { CLAWMESH_GATEWAY__PORT: 'abc' }, cwd: dir }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(/gateway\.port: .*\(set by CLAWMESH_GATEWAY__PORT\)/);
    expect(err.details).toEqual({ keys: ['gateway.port'] });
  });

  it('names the variable that set a whole subtree when a key inside it is bad', () => {
    const env = { CLAWMESH_GATEWAY__RATE_LIMIT: '{"points":-1}' };
    const err = failure(() => loadConfig({ env, cwd: dir }));
    expect(err.message).toMatch(/gateway\.rateLimit\.points: .*\(set by CLAWMESH_GATEWAY__RATE_LIMIT\)/);
  });

  it('does not read CLAWMESH_CONFIG or unknown CLAWMESH_ variables as config keys', () => {
    const { tree, sources } = applyEnvOverrides({}, { CLAWMESH_CONFIG: 'x.yaml', CLAWMESH_FROBNICATE: 'on' });
    expect(tree).toEqual({});
    expect(sources.size).toBe(0);
  });

  it('reads the topology shortcuts: transport, roles and server URLs', () => {
    const { tree, sources } = applyEnvOverrides(
      {},
      {
        CLAWMESH_TRANSPORT: 'nats',
        CLAWMESH_ROLES: 'gateway, models',
        NATS_URL: 'nats://n:4222',
        REDIS_URL: 'redis://r:6379',
        DATABASE_URL: 'postgres://p/db',
        RABBITMQ_URL: 'amqp://q',
      },
    );
    expect(tree).toEqual({
      transport: { kind: 'nats' },
      roles: ['gateway', 'models'],
      nats: { url: 'nats://n:4222' },
      redis: { url: 'redis://r:6379' },
      postgres: { url: 'postgres://p/db' },
      rabbitmq: { url: 'amqp://q' },
    });
    expect(sources.get('transport.kind')).toBe('CLAWMESH_TRANSPORT');
  });

  it('names the variable of an unknown role or transport', () => {
    const err = failure(() =>
      loadConfig({ env: { CLAWMESH_TRANSPORT: 'carrier-pigeon', CLAWMESH_ROLES: 'cook' }, cwd: dir }),
    );
    expect(err.message).toMatch(/transport\.kind: .*\(set by CLAWMESH_TRANSPORT\)/);
    expect(err.message).toMatch(/roles\.0: .*\(set by CLAWMESH_ROLES\)/);
  });

  it('leaves the raw tree it was given unchanged', () => {
    const raw = { gateway: { port: 1 } };
    const { tree, sources } = applyEnvOverrides(raw, { CLAWMESH_GATEWAY__PORT: '2' });
    expect(raw).toEqual({ gateway: { port: 1 } });
    expect(tree).toEqual({ gateway: { port: 2 } });
    expect(sources.get('gateway.port')).toBe('CLAWMESH_GATEWAY__PORT');
  });
});

describe('loadConfig cross-key checks and overrides', () => {
  it('rejects duplicate agent ids naming the key', () => {
    write(DEFAULT_CONFIG_FILE, 'agents:\n  - id: a\n  - id: b\n  - id: a\n');
    const err = failure(() => loadConfig({ env: {}, cwd: dir }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('agents.2.id: duplicate agent id "a"');
  });

  it('rejects a defaultAgent that no agent has, naming the key and the agents', () => {
    write(DEFAULT_CONFIG_FILE, 'defaultAgent: nobody\nagents:\n  - id: a\n  - id: b\n');
    const err = failure(() => loadConfig({ env: {}, cwd: dir }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('defaultAgent: no agent has id "nobody" (agents: a, b)');
  });

  it('accepts a defaultAgent that names an agent', () => {
    write(DEFAULT_CONFIG_FILE, 'defaultAgent: b\nagents:\n  - id: a\n  - id: b\n');
    expect(loadConfig({ env: {}, cwd: dir }).config.defaultAgent).toBe('b');
  });

  it('lets overrides win over the file and the environment, merging nested keys', () => {
    write(DEFAULT_CONFIG_FILE, 'gateway:\n  port: 9000\n  host: 127.0.0.1\n');
    const { config } = loadConfig({
      env: { PORT: '9001', LOG_LEVEL: 'debug' },
      cwd: dir,
      overrides: { gateway: { port: 0 }, store: { kind: 'memory' } },
    });
    expect(config.gateway.port).toBe(0);
    expect(config.gateway.host).toBe('127.0.0.1');
    expect(config.store.kind).toBe('memory');
    expect(config.log.level).toBe('debug');
  });

  it('validates overrides like any other value', () => {
    const err = failure(() => loadConfig({ env: {}, cwd: dir, overrides: { log: { level: 'loud' } } }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('log.level');
  });
});

describe('environment overrides, edge cases', () => {
  it('keeps a numeric-looking API key a string', () => {
    const { config } = loadConfig({ env: { OPENAI_API_KEY: '12345678' }, cwd: tmpdir() });
    expect(config.models.openai.apiKey).toBe('12345678');
  });

  it('sets a skill secret by its declared name', () => {
    const { config } = loadConfig({
      env: { CLAWMESH_SKILLS__SECRETS__INVENTORY__STORE_API_KEY: 'k-1' },
      cwd: tmpdir(),
    });
    expect(config.skills.secrets).toEqual({ inventory: { STORE_API_KEY: 'k-1' } });
  });

  it('overrides a field of the default agent when the file has no agents', () => {
    const { config } = loadConfig({ env: { CLAWMESH_AGENTS__0__MODEL: 'openai/gpt-4o' }, cwd: tmpdir() });
    expect(config.agents[0]).toMatchObject({ id: 'default', model: 'openai/gpt-4o' });
  });
});

describe('unknown keys', () => {
  it('stops on a misspelt key, naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clawmesh-typo-'));
    writeFileSync(join(dir, DEFAULT_CONFIG_FILE), 'gatway:\n  port: 9000\n');
    expect(() => loadConfig({ env: {}, cwd: dir })).toThrow(/gatway/);
  });

  it('ignores CLAWMESH_ variables that name no config key', () => {
    const { config } = loadConfig({ env: { CLAWMESH_API_KEY: 'for-the-chat-client' }, cwd: tmpdir() });
    expect(config.gateway.apiKeys).toEqual([]);
  });
});

describe('keys set by environment variables, named in errors', () => {
  it('names the variable of an unknown key, without blaming the file', () => {
    write(DEFAULT_CONFIG_FILE, 'gateway:\n  port: 9000\n');
    const err = failure(() => loadConfig({ env: { CLAWMESH_GATEWAY__PROT: '1' }, cwd: dir }));
    expect(err.message).toBe(
      'invalid configuration:\n  gateway: Unrecognized key: "prot" (set by CLAWMESH_GATEWAY__PROT)',
    );
  });

  it('names the file for its own unknown key and the variable for the other', () => {
    const path = write(DEFAULT_CONFIG_FILE, 'gateway:\n  hots: x\n');
    const err = failure(() => loadConfig({ env: { CLAWMESH_GATEWAY__PROT: '1' }, cwd: dir }));
    expect(err.message).toContain(`invalid configuration in ${path}:`);
    expect(err.message).toMatch(/^ {2}gateway: Unrecognized key: "hots"$/m);
    expect(err.message).toMatch(/^ {2}gateway: Unrecognized key: "prot" \(set by CLAWMESH_GATEWAY__PROT\)$/m);
  });

  it('names the variable of an unknown key inside a subtree it set as JSON', () => {
    const err = failure(() => loadConfig({ env: { CLAWMESH_GATEWAY: '{"prot":1}' }, cwd: dir }));
    expect(err.message).toContain('gateway: Unrecognized key: "prot" (set by CLAWMESH_GATEWAY)');
  });

  it('names the variable of a list index past the end of the list, and the missing entries', () => {
    const err = failure(() => loadConfig({ env: { CLAWMESH_AGENTS__3__ID: 'x' }, cwd: dir }));
    expect(err.message).toBe(
      'invalid configuration:\n  agents.3: list index 3 given, but agents.1, agents.2 are missing: ' +
        "a list's entries are numbered from 0 without gaps (set by CLAWMESH_AGENTS__3__ID)",
    );
    expect(err.details).toEqual({ keys: ['agents.3'] });
  });

  it("names a gap after the file's own list entries", () => {
    write(DEFAULT_CONFIG_FILE, 'agents:\n  - id: a\n');
    const err = failure(() => loadConfig({ env: { CLAWMESH_AGENTS__2__ID: 'c' }, cwd: dir }));
    expect(err.message).toMatch(
      /agents\.2: list index 2 given, but agents\.1 is missing: .*CLAWMESH_AGENTS__2__ID/,
    );
    expect(err.message).not.toMatch(/expected object/);
  });

  it('accepts list entries set by variables in any order, when none is missing', () => {
    const env = { CLAWMESH_AGENTS__2__ID: 'c', CLAWMESH_AGENTS__1__ID: 'b' };
    const { config } = loadConfig({ env, cwd: dir });
    expect(config.agents.map((agent) => agent.id)).toEqual(['default', 'b', 'c']);
  });

  it('names the variable of a duplicate agent id and of an unknown defaultAgent', () => {
    const duplicate = failure(() => loadConfig({ env: { CLAWMESH_AGENTS__1__ID: 'default' }, cwd: dir }));
    expect(duplicate.message).toContain(
      'agents.1.id: duplicate agent id "default" (set by CLAWMESH_AGENTS__1__ID)',
    );
    const unknown = failure(() => loadConfig({ env: { CLAWMESH_DEFAULT_AGENT: 'x' }, cwd: dir }));
    expect(unknown.message).toContain(
      'defaultAgent: no agent has id "x" (agents: default) (set by CLAWMESH_DEFAULT_AGENT)',
    );
  });
});

describe('config file problems', () => {
  it('says in its details what is wrong with the file itself', () => {
    const cases: Array<[string, string]> = [
      [join(dir, 'missing.yaml'), 'not-found'],
      [dir, 'unreadable'],
      [write('bad.yaml', 'gateway: [\n'), 'not-yaml'],
      [write('list.yaml', '- a\n'), 'not-a-mapping'],
    ];
    for (const [file, fileProblem] of cases) {
      const err = failure(() => loadConfig({ file, env: {}, cwd: dir }));
      expect(err.details).toEqual({ file, fileProblem });
      expect(err.message).toContain(file);
    }
  });
});
