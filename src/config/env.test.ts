import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { configDirPerTest, failure } from '../../test/support/config-dir.ts';
import { applyEnvOverrides } from './env.ts';
import { DEFAULT_CONFIG_FILE, loadConfig } from './load.ts';

// The configuration set from the environment: the shortcut variables, CLAWMESH_<PATH> keys, and
// errors that name the variable a bad value came from.
const tmp = configDirPerTest();
const write = tmp.write;

describe('loadConfig environment shortcuts', () => {
  it('sets the gateway port from PORT', () => {
    expect(loadConfig({ env: { PORT: '9000' }, cwd: tmp.path }).config.gateway.port).toBe(9000);
  });

  it('ignores a variable set to the empty string', () => {
    expect(loadConfig({ env: { PORT: '' }, cwd: tmp.path }).config.gateway.port).toBe(8080);
  });

  it('reads CLAWMESH_API_KEYS as a comma list, trimming blanks', () => {
    const env = { CLAWMESH_API_KEYS: ' key-one-123, key-two-456 ,,' };
    expect(loadConfig({ env, cwd: tmp.path }).config.gateway.apiKeys).toEqual(['key-one-123', 'key-two-456']);
  });

  it('appends CLAWMESH_PLUGINS to the plugins of the file', () => {
    write(
      DEFAULT_CONFIG_FILE,
      'plugins:\n  - ./plugins/audit.js\n  - path: ./plugins/mod.js\n    priority: 5\n',
    );
    const env = { CLAWMESH_PLUGINS: 'clawmesh-moderation,./plugins/extra.js' };
    expect(loadConfig({ env, cwd: tmp.path }).config.plugins).toEqual([
      './plugins/audit.js',
      { path: './plugins/mod.js', priority: 5 },
      'clawmesh-moderation',
      './plugins/extra.js',
    ]);
  });

  it('sets the store kind from CLAWMESH_STORE and the log level from LOG_LEVEL', () => {
    const { config } = loadConfig({ env: { CLAWMESH_STORE: 'memory', LOG_LEVEL: 'debug' }, cwd: tmp.path });
    expect(config.store.kind).toBe('memory');
    expect(config.log.level).toBe('debug');
  });

  it('makes openai the default model when OPENAI_API_KEY is set', () => {
    const { config } = loadConfig({ env: { OPENAI_API_KEY: 'sk-test-abc' }, cwd: tmp.path });
    expect(config.models.openai.apiKey).toBe('sk-test-abc');
    expect(config.models.default).toBe('openai/gpt-4o-mini');
  });

  it('uses OPENAI_MODEL and OPENAI_BASE_URL in the openai settings', () => {
    const env = {
      OPENAI_API_KEY: 'sk-test-abc',
      OPENAI_MODEL: 'gpt-4o',
      OPENAI_BASE_URL: 'http://127.0.0.1:9999/v1',
    };
    const { config } = loadConfig({ env, cwd: tmp.path });
    expect(config.models.default).toBe('openai/gpt-4o');
    expect(config.models.openai).toMatchObject({ model: 'gpt-4o', baseUrl: 'http://127.0.0.1:9999/v1' });
  });

  it('keeps models.default from the file when OPENAI_API_KEY is set', () => {
    write(DEFAULT_CONFIG_FILE, 'models:\n  default: local\n');
    const { config } = loadConfig({ env: { OPENAI_API_KEY: 'sk-test-abc' }, cwd: tmp.path });
    expect(config.models.default).toBe('local');
  });

  it('names the shortcut variable that set a bad value', () => {
    const err = failure(() => loadConfig({ env: { PORT: '70000' }, cwd: tmp.path }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(/gateway\.port: .*\(set by PORT\)/);
  });

  it('names CLAWMESH_API_KEYS for a key that is too short', () => {
    const err = failure(() =>
      loadConfig({ env: { CLAWMESH_API_KEYS: 'long-enough-key,short' }, cwd: tmp.path }),
    );
    expect(err.message).toContain(
      'gateway.apiKeys.1: an API key needs at least 8 characters (set by CLAWMESH_API_KEYS)',
    );
  });

  it('names OPENAI_BASE_URL when it is not a URL', () => {
    const err = failure(() => loadConfig({ env: { OPENAI_BASE_URL: 'not a url' }, cwd: tmp.path }));
    expect(err.message).toMatch(/models\.openai\.baseUrl: .*\(set by OPENAI_BASE_URL\)/);
  });
});

describe('loadConfig generic environment keys', () => {
  it('sets a nested key from CLAWMESH_<PATH> with __ between levels', () => {
    const { config } = loadConfig({ env: { CLAWMESH_GATEWAY__RATE_LIMIT__POINTS: '5' }, cwd: tmp.path });
    expect(config.gateway.rateLimit).toEqual({ points: 5, durationSeconds: 60 });
  });

  it('sets a field of a list item by its index, keeping the rest of the item', () => {
    write(DEFAULT_CONFIG_FILE, 'agents:\n  - id: first\n    maxSteps: 3\n  - id: second\n');
    const { config } = loadConfig({ env: { CLAWMESH_AGENTS__0__MODEL: 'x' }, cwd: tmp.path });
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
    const { config } = loadConfig({ env, cwd: tmp.path });
    expect(config.gateway.bodyLimitBytes).toBe(1024);
    expect(config.audit.enabled).toBe(false);
    expect(config.skills.load).toEqual(['inventory', './skills/weather.js']);
    expect(config.gateway.host).toBe('127.0.0.1');
    expect(config.defaultAgent).toBe('default');
  });

  it('overrides a value of the file', () => {
    write(DEFAULT_CONFIG_FILE, 'gateway:\n  port: 9100\n  host: 127.0.0.1\n');
    const { config } = loadConfig({ env: { CLAWMESH_GATEWAY__PORT: '9200' }, cwd: tmp.path });
    expect(config.gateway).toMatchObject({ port: 9200, host: '127.0.0.1' });
  });

  it('names the environment variable that set a bad key', () => {
    const err = failure(() => loadConfig({ env: { CLAWMESH_GATEWAY__PORT: 'abc' }, cwd: tmp.path }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(/gateway\.port: .*\(set by CLAWMESH_GATEWAY__PORT\)/);
    expect(err.details).toEqual({ keys: ['gateway.port'] });
  });

  it('names the variable that set a whole subtree when a key inside it is bad', () => {
    const env = { CLAWMESH_GATEWAY__RATE_LIMIT: '{"points":-1}' };
    const err = failure(() => loadConfig({ env, cwd: tmp.path }));
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
      loadConfig({ env: { CLAWMESH_TRANSPORT: 'carrier-pigeon', CLAWMESH_ROLES: 'cook' }, cwd: tmp.path }),
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

describe('keys set by environment variables, named in errors', () => {
  it('names the variable of an unknown key, without blaming the file', () => {
    write(DEFAULT_CONFIG_FILE, 'gateway:\n  port: 9000\n');
    const err = failure(() => loadConfig({ env: { CLAWMESH_GATEWAY__PROT: '1' }, cwd: tmp.path }));
    expect(err.message).toBe(
      'invalid configuration:\n  gateway: Unrecognized key: "prot" (set by CLAWMESH_GATEWAY__PROT)',
    );
  });

  it('names the file for its own unknown key and the variable for the other', () => {
    const path = write(DEFAULT_CONFIG_FILE, 'gateway:\n  hots: x\n');
    const err = failure(() => loadConfig({ env: { CLAWMESH_GATEWAY__PROT: '1' }, cwd: tmp.path }));
    expect(err.message).toContain(`invalid configuration in ${path}:`);
    expect(err.message).toMatch(/^ {2}gateway: Unrecognized key: "hots"$/m);
    expect(err.message).toMatch(/^ {2}gateway: Unrecognized key: "prot" \(set by CLAWMESH_GATEWAY__PROT\)$/m);
  });

  it('names the variable of an unknown key inside a subtree it set as JSON', () => {
    const err = failure(() => loadConfig({ env: { CLAWMESH_GATEWAY: '{"prot":1}' }, cwd: tmp.path }));
    expect(err.message).toContain('gateway: Unrecognized key: "prot" (set by CLAWMESH_GATEWAY)');
  });

  it('names the variable of a list index past the end of the list, and the missing entries', () => {
    const err = failure(() => loadConfig({ env: { CLAWMESH_AGENTS__3__ID: 'x' }, cwd: tmp.path }));
    expect(err.message).toBe(
      'invalid configuration:\n  agents.3: list index 3 given, but agents.1, agents.2 are missing: ' +
        "a list's entries are numbered from 0 without gaps (set by CLAWMESH_AGENTS__3__ID)",
    );
    expect(err.details).toEqual({ keys: ['agents.3'] });
  });

  it("names a gap after the file's own list entries", () => {
    write(DEFAULT_CONFIG_FILE, 'agents:\n  - id: a\n');
    const err = failure(() => loadConfig({ env: { CLAWMESH_AGENTS__2__ID: 'c' }, cwd: tmp.path }));
    expect(err.message).toMatch(
      /agents\.2: list index 2 given, but agents\.1 is missing: .*CLAWMESH_AGENTS__2__ID/,
    );
    expect(err.message).not.toMatch(/expected object/);
  });

  it('names a variable that gives a list entry by name instead of its number', () => {
    write(DEFAULT_CONFIG_FILE, 'agents:\n  - id: shop\n');
    const err = failure(() => loadConfig({ env: { CLAWMESH_AGENTS__SHOP__MODEL: 'local' }, cwd: tmp.path }));
    expect(err.message).toBe(
      'invalid configuration:\n  agents.shop: agents is a list: "shop" is not an entry\'s number (0 for the first) ' +
        '(set by CLAWMESH_AGENTS__SHOP__MODEL)',
    );
    // Without a file, the default agent's list is there to be given by name too.
    const bare = failure(() =>
      loadConfig({ env: { CLAWMESH_AGENTS__DEFAULT__MODEL: 'local' }, cwd: tmpdir() }),
    );
    expect(bare.message).toContain('agents.default: agents is a list');
  });

  it('names a variable with an empty level instead of dropping it', () => {
    const err = failure(() => loadConfig({ env: { CLAWMESH_GATEWAY____PORT: '9000' }, cwd: tmpdir() }));
    expect(err.message).toBe(
      'invalid configuration:\n  gateway: the variable has an empty level: levels are separated by exactly ' +
        'two underscores (__) (set by CLAWMESH_GATEWAY____PORT)',
    );
    const trailing = failure(() => loadConfig({ env: { CLAWMESH_LOG__: 'debug' }, cwd: tmpdir() }));
    expect(trailing.message).toContain('(set by CLAWMESH_LOG__)');
  });

  it('accepts list entries set by variables in any order, when none is missing', () => {
    const env = { CLAWMESH_AGENTS__2__ID: 'c', CLAWMESH_AGENTS__1__ID: 'b' };
    const { config } = loadConfig({ env, cwd: tmp.path });
    expect(config.agents.map((agent) => agent.id)).toEqual(['default', 'b', 'c']);
  });

  it('names the variable of a duplicate agent id and of an unknown defaultAgent', () => {
    const duplicate = failure(() =>
      loadConfig({ env: { CLAWMESH_AGENTS__1__ID: 'default' }, cwd: tmp.path }),
    );
    expect(duplicate.message).toContain(
      'agents.1.id: duplicate agent id "default" (set by CLAWMESH_AGENTS__1__ID)',
    );
    const unknown = failure(() => loadConfig({ env: { CLAWMESH_DEFAULT_AGENT: 'x' }, cwd: tmp.path }));
    expect(unknown.message).toContain(
      'defaultAgent: no agent has id "x" (agents: default) (set by CLAWMESH_DEFAULT_AGENT)',
    );
  });
});

describe('CLAWMESH_<PATH> values read as written when JSON gives the wrong type', () => {
  it('keeps digits as a text where the key is a text (a WhatsApp phone number id)', () => {
    const env = { CLAWMESH_CHANNELS__WHATSAPP__PHONE_NUMBER_ID: '106540352242922' };
    expect(loadConfig({ env, cwd: tmp.path }).config.channels.whatsapp?.phoneNumberId).toBe(
      '106540352242922',
    );
  });

  it('keeps the digits exactly, past what a JSON number holds', () => {
    const env = { CLAWMESH_CHANNELS__DISCORD__APPLICATION_ID: '1234567890123456789' };
    expect(loadConfig({ env, cwd: tmp.path }).config.channels.discord?.applicationId).toBe(
      '1234567890123456789',
    );
  });

  it('reads a list key given a plain text as its comma-separated items', () => {
    const env = {
      CLAWMESH_CHANNELS__TELEGRAM__ALLOWLIST: '12345, 67890',
      CLAWMESH_CHANNELS__SLACK__ALLOWLIST: 'U123',
      CLAWMESH_CHANNELS__WHATSAPP__ALLOWLIST: '15551234567',
    };
    const { channels } = loadConfig({ env, cwd: tmp.path }).config;
    expect(channels.telegram?.allowlist).toEqual(['12345', '67890']);
    expect(channels.slack?.allowlist).toEqual(['U123']);
    expect(channels.whatsapp?.allowlist).toEqual(['15551234567']);
  });

  it('makes numbers inside a JSON list texts where the list holds texts', () => {
    const env = { CLAWMESH_CHANNELS__TELEGRAM__ALLOWLIST: '[12345, "67890"]' };
    expect(loadConfig({ env, cwd: tmp.path }).config.channels.telegram?.allowlist).toEqual([
      '12345',
      '67890',
    ]);
  });

  it('refuses a Discord public key that is not 64 hex digits, naming its variable', () => {
    const bad = failure(() => loadConfig({ env: { DISCORD_PUBLIC_KEY: 'abc' }, cwd: tmp.path }));
    expect(bad.message).toMatch(
      /channels\.discord\.publicKey: must be 64 hex digits .*\(set by DISCORD_PUBLIC_KEY\)/,
    );
    const key = 'a'.repeat(64);
    expect(
      loadConfig({ env: { DISCORD_PUBLIC_KEY: key }, cwd: tmp.path }).config.channels.discord?.publicKey,
    ).toBe(key);
  });

  it('still reads numbers as numbers, and still names a value of no use', () => {
    const env = { CLAWMESH_GATEWAY__RATE_LIMIT__POINTS: '10' };
    expect(loadConfig({ env, cwd: tmp.path }).config.gateway.rateLimit.points).toBe(10);
    const bad = failure(() =>
      loadConfig({ env: { CLAWMESH_GATEWAY__RATE_LIMIT__POINTS: 'ten' }, cwd: tmp.path }),
    );
    expect(bad.message).toMatch(
      /gateway\.rateLimit\.points: .*\(set by CLAWMESH_GATEWAY__RATE_LIMIT__POINTS\)/,
    );
  });
});
