import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configDirPerTest, failure } from '../../test/support/config-dir.ts';
import { DEFAULT_CONFIG_FILE, loadConfig } from './load.ts';
import { ConfigSchema } from './schema.ts';

const tmp = configDirPerTest();
const write = tmp.write;

describe('loadConfig defaults', () => {
  it('returns the schema defaults with no file and an empty environment', () => {
    const { config, file, baseDir } = loadConfig({ env: {}, cwd: tmp.path });
    expect(file).toBeUndefined();
    expect(baseDir).toBe(tmp.path);
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
    expect(config.bus).toEqual({ kind: 'memory', maxAttempts: 5, spoolDir: './data/spool' });
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
    const { config, file, baseDir } = loadConfig({ file: 'conf/custom.yaml', env: {}, cwd: tmp.path });
    expect(file).toBe(path);
    expect(baseDir).toBe(join(tmp.path, 'conf'));
    expect(config.gateway.port).toBe(9100);
    expect(config.gateway.host).toBe('0.0.0.0');
    expect(config.log.level).toBe('warn');
  });

  it('reads the file named by CLAWMESH_CONFIG', () => {
    const path = write('from-env.yaml', 'store:\n  kind: memory\n');
    const { config, file } = loadConfig({ env: { CLAWMESH_CONFIG: 'from-env.yaml' }, cwd: tmp.path });
    expect(file).toBe(path);
    expect(config.store.kind).toBe('memory');
  });

  it('prefers the explicit file over CLAWMESH_CONFIG', () => {
    write('explicit.yaml', 'gateway:\n  port: 1111\n');
    write('from-env.yaml', 'gateway:\n  port: 2222\n');
    const { config } = loadConfig({
      file: 'explicit.yaml',
      env: { CLAWMESH_CONFIG: 'from-env.yaml' },
      cwd: tmp.path,
    });
    expect(config.gateway.port).toBe(1111);
  });

  it(`finds ./${DEFAULT_CONFIG_FILE} in cwd when no file is named`, () => {
    const path = write(DEFAULT_CONFIG_FILE, 'agents:\n  - id: helper\n    model: local\n');
    const { config, file, baseDir } = loadConfig({ env: {}, cwd: tmp.path });
    expect(file).toBe(path);
    expect(baseDir).toBe(tmp.path);
    expect(config.agents.map((agent) => agent.id)).toEqual(['helper']);
    expect(config.agents[0]?.name).toBe('Clawmesh');
  });

  it('treats an empty file as all defaults', () => {
    write(DEFAULT_CONFIG_FILE, '# nothing set yet\n');
    expect(loadConfig({ env: {}, cwd: tmp.path }).config.gateway.port).toBe(8080);
  });

  it('rejects a file that is not valid YAML with INVALID_ARGUMENT naming the file', () => {
    const path = write('broken.yaml', 'gateway:\n  port: [8080\n');
    const err = failure(() => loadConfig({ file: path, env: {}, cwd: tmp.path }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain(path);
    expect(err.message).toContain('not valid YAML');
    expect(err.cause).toBeDefined();
  });

  it('rejects a file whose top level is a list', () => {
    const path = write('list.yaml', '- gateway\n- agents\n');
    const err = failure(() => loadConfig({ file: path, env: {}, cwd: tmp.path }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain(path);
    expect(err.message).toContain('top level must be a mapping');
  });

  it('rejects a file whose top level is a scalar', () => {
    const path = write('scalar.yaml', 'just some words\n');
    const err = failure(() => loadConfig({ file: path, env: {}, cwd: tmp.path }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('top level must be a mapping');
  });

  it('rejects a named file that does not exist', () => {
    const err = failure(() => loadConfig({ file: 'missing.yaml', env: {}, cwd: tmp.path }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toBe(`config file not found: ${join(tmp.path, 'missing.yaml')}`);
  });

  it('rejects a file named by CLAWMESH_CONFIG that does not exist', () => {
    const err = failure(() => loadConfig({ env: { CLAWMESH_CONFIG: 'gone.yaml' }, cwd: tmp.path }));
    expect(err.message).toContain(join(tmp.path, 'gone.yaml'));
  });

  it('names the dotted key and the file of a bad value', () => {
    const path = write('bad.yaml', 'gateway:\n  port: high\n  rateLimit:\n    points: 0\n');
    const err = failure(() => loadConfig({ file: path, env: {}, cwd: tmp.path }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain(`invalid configuration in ${path}`);
    expect(err.message).toMatch(/^ {2}gateway\.port: /m);
    expect(err.message).toMatch(/^ {2}gateway\.rateLimit\.points: /m);
    expect(err.message).not.toContain('set by');
    expect(err.details).toEqual({ keys: ['gateway.port', 'gateway.rateLimit.points'] });
  });

  it('names the index of a bad list item', () => {
    const path = write('agents.yaml', 'agents:\n  - id: ok\n  - id: "not ok!"\n');
    const err = failure(() => loadConfig({ file: path, env: {}, cwd: tmp.path }));
    expect(err.message).toContain('agents.1.id: must be 1-64 letters, digits or . _ -');
  });
});

describe('loadConfig cross-key checks and overrides', () => {
  it('rejects duplicate agent ids naming the key', () => {
    write(DEFAULT_CONFIG_FILE, 'agents:\n  - id: a\n  - id: b\n  - id: a\n');
    const err = failure(() => loadConfig({ env: {}, cwd: tmp.path }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('agents.2.id: duplicate agent id "a"');
  });

  it('rejects a defaultAgent that no agent has, naming the key and the agents', () => {
    write(DEFAULT_CONFIG_FILE, 'defaultAgent: nobody\nagents:\n  - id: a\n  - id: b\n');
    const err = failure(() => loadConfig({ env: {}, cwd: tmp.path }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('defaultAgent: no agent has id "nobody" (agents: a, b)');
  });

  it('accepts a defaultAgent that names an agent', () => {
    write(DEFAULT_CONFIG_FILE, 'defaultAgent: b\nagents:\n  - id: a\n  - id: b\n');
    expect(loadConfig({ env: {}, cwd: tmp.path }).config.defaultAgent).toBe('b');
  });

  it('lets overrides win over the file and the environment, merging nested keys', () => {
    write(DEFAULT_CONFIG_FILE, 'gateway:\n  port: 9000\n  host: 127.0.0.1\n');
    const { config } = loadConfig({
      env: { PORT: '9001', LOG_LEVEL: 'debug' },
      cwd: tmp.path,
      overrides: { gateway: { port: 0 }, store: { kind: 'memory' } },
    });
    expect(config.gateway.port).toBe(0);
    expect(config.gateway.host).toBe('127.0.0.1');
    expect(config.store.kind).toBe('memory');
    expect(config.log.level).toBe('debug');
  });

  it('validates overrides like any other value', () => {
    const err = failure(() => loadConfig({ env: {}, cwd: tmp.path, overrides: { log: { level: 'loud' } } }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('log.level');
  });
});

describe('unknown keys', () => {
  it('stops on a misspelt key, naming it', () => {
    write(DEFAULT_CONFIG_FILE, 'gatway:\n  port: 9000\n');
    expect(() => loadConfig({ env: {}, cwd: tmp.path })).toThrow(/gatway/);
  });

  it('ignores CLAWMESH_ variables that name no config key', () => {
    const { config } = loadConfig({ env: { CLAWMESH_API_KEY: 'for-the-chat-client' }, cwd: tmpdir() });
    expect(config.gateway.apiKeys).toEqual([]);
  });
});

describe('config file problems', () => {
  it('says in its details what is wrong with the file itself', () => {
    const cases: Array<[string, string]> = [
      [join(tmp.path, 'missing.yaml'), 'not-found'],
      [tmp.path, 'unreadable'],
      [write('bad.yaml', 'gateway: [\n'), 'not-yaml'],
      [write('list.yaml', '- a\n'), 'not-a-mapping'],
    ];
    for (const [file, fileProblem] of cases) {
      const err = failure(() => loadConfig({ file, env: {}, cwd: tmp.path }));
      expect(err.details).toEqual({ file, fileProblem });
      expect(err.message).toContain(file);
    }
  });
});

describe('the PostgreSQL URL', () => {
  const shape = 'is not a PostgreSQL URL such as postgres://user:password@host:5432/database';

  it.each([
    ['notaurl', '"notaurl"'],
    ['mysql://shop:s3cret@db:3306/shop', '"mysql://shop:***@db:3306/shop"'],
    ['shop:s3cret@db:5432/shop', '"shop:***@db:5432/shop"'],
    ['127.0.0.1:5432', '"127.0.0.1:5432"'],
  ])('stops a PostgreSQL store on DATABASE_URL=%s, naming the variable and the shape', (url, shown) => {
    const err = failure(() =>
      loadConfig({ env: { CLAWMESH_STORE: 'postgres', DATABASE_URL: url }, cwd: tmp.path }),
    );
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toBe(
      `invalid configuration:\n  postgres.url: ${shown} ${shape} (set by DATABASE_URL)`,
    );
    expect(err.message).not.toContain('s3cret');
  });

  it('names the key and the variable when the config file holds it', () => {
    write(DEFAULT_CONFIG_FILE, 'store:\n  kind: postgres\npostgres:\n  url: localhost/shop\n');
    const err = failure(() => loadConfig({ env: {}, cwd: tmp.path }));
    expect(err.message).toContain(`postgres.url: "localhost/shop" ${shape} (or set DATABASE_URL)`);
  });

  it('takes postgres:// and postgresql:// URLs, and leaves DATABASE_URL alone when no store uses it', () => {
    for (const url of ['postgres://u:p@db:5432/shop', 'postgresql://db/shop']) {
      const { config } = loadConfig({
        env: { CLAWMESH_STORE: 'postgres', DATABASE_URL: url },
        cwd: tmp.path,
      });
      expect(config.postgres.url).toBe(url);
    }
    expect(loadConfig({ env: { DATABASE_URL: 'notaurl' }, cwd: tmp.path }).config.store.kind).toBe('sqlite');
  });
});

describe('the URLs of Redis, RabbitMQ and NATS', () => {
  it.each([
    [
      { CLAWMESH_STORE: 'redis', REDIS_URL: 'notaurl' },
      'redis.url: "notaurl" is not a Redis URL such as redis://host:6379 (set by REDIS_URL)',
    ],
    [
      { CLAWMESH_BUS: 'redis', REDIS_URL: 'http://user:s3cret@127.0.0.1:6379' },
      'redis.url: "http://user:***@127.0.0.1:6379/" is not a Redis URL',
    ],
    [
      { CLAWMESH_TRANSPORT: 'nats', REDIS_URL: 'localhost:6379' },
      'redis.url: "localhost:6379" is not a Redis URL',
    ],
    [
      { CLAWMESH_BUS: 'rabbitmq', RABBITMQ_URL: 'guest:guest@127.0.0.1:5672' },
      'rabbitmq.url: "guest:***@127.0.0.1:5672" is not a RabbitMQ URL such as amqp://user:password@host:5672 (set by RABBITMQ_URL)',
    ],
    [
      { CLAWMESH_TRANSPORT: 'nats', NATS_URL: 'http://127.0.0.1:4222' },
      'nats.url: "http://127.0.0.1:4222/" is not a NATS URL such as nats://host:4222 (set by NATS_URL)',
    ],
    [
      { CLAWMESH_BUS: 'nats', NATS_URL: 'nats://a:4222, ftp://b:4222' },
      'nats.url: "nats://a:4222, ftp://b:4222" is not a NATS URL',
    ],
  ])('stops when a server in use has a URL its client cannot read (%o)', (env, message) => {
    const err = failure(() => loadConfig({ env, cwd: tmp.path }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain(message);
    expect(err.message).not.toContain('s3cret');
  });

  it('takes their usual forms, and leaves the variables of servers not in use alone', () => {
    const ok = [
      { CLAWMESH_STORE: 'redis', REDIS_URL: 'rediss://user:pw@cache.example:6380/2' },
      { CLAWMESH_BUS: 'rabbitmq', RABBITMQ_URL: 'amqps://u:p@mq.example:5671/vhost' },
      {
        CLAWMESH_TRANSPORT: 'nats',
        NATS_URL: 'nats://a:4222,tls://b:4222,127.0.0.1:4223',
        REDIS_URL: 'redis://r:6379',
      },
      { REDIS_URL: 'notaurl', NATS_URL: 'http://x', RABBITMQ_URL: 'nope' },
    ];
    for (const env of ok) expect(() => loadConfig({ env, cwd: tmp.path })).not.toThrow();
  });
});
