import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ClawmeshError } from '../core/errors.ts';
import { createLogger, silentLogger } from '../observability/logger.ts';
import { createHookRunner } from './hooks.ts';
import { loadPlugins, parsePluginList } from './loader.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const logger = silentLogger();
const dir = mkdtempSync(join(tmpdir(), 'clawmesh-plugins-'));
const turn = {
  requestId: 'req-1',
  traceId: 'trace-1',
  conversationId: 'conv-1',
  agentId: 'agent-1',
  channel: 'telegram',
  userId: 'user-1',
};
const message = {
  text: 'hello',
  userId: 'user-1',
  channel: 'telegram',
  agentId: 'agent-1',
  conversationId: 'conv-1',
};

/** Writes a plugin file in the temp directory and returns its absolute path. */
function write(name: string, source: string): string {
  const file = join(dir, name);
  writeFileSync(file, source);
  return file;
}

/** The ClawmeshError a load rejects with. */
async function loadError(entry: string): Promise<ClawmeshError> {
  const err = await loadPlugins([entry], { baseDir: dir, logger }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ClawmeshError);
  return err as ClawmeshError;
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadPlugins', () => {
  const savedAuditFile = process.env.AUDIT_LOG_FILE;
  afterEach(() => {
    if (savedAuditFile === undefined) delete process.env.AUDIT_LOG_FILE;
    else process.env.AUDIT_LOG_FILE = savedAuditFile;
  });

  it('loads the CommonJS audit-logger and the ESM moderation examples', async () => {
    const plugins = await loadPlugins(
      ['examples/plugins/audit-logger.js', 'examples/plugins/moderation.mjs'],
      {
        baseDir: repoRoot,
        logger,
      },
    );
    expect(plugins.map((p) => [p.name, p.version, p.priority])).toEqual([
      ['audit-logger', '1.0.0', undefined],
      ['moderation', '1.0.0', 10],
    ]);
    expect(typeof plugins[0]?.onMessageReceived).toBe('function');
    expect(typeof plugins[0]?.onResponseGenerated).toBe('function');
  });

  it('runs the audit-logger through the hook runner, appending one line per message and response', async () => {
    const auditFile = join(dir, 'audit', 'log.jsonl');
    process.env.AUDIT_LOG_FILE = auditFile;
    const plugins = await loadPlugins([join(repoRoot, 'examples/plugins/audit-logger.js')], {
      baseDir: dir,
      logger,
    });
    const runner = createHookRunner({ plugins, logger });
    expect(await runner.run('onMessageReceived', turn, message)).toEqual(message);
    await runner.run('onResponseGenerated', turn, {
      text: 'hi there',
      conversationId: 'conv-1',
      toolCalls: [],
    });
    const lines = readFileSync(auditFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      expect.objectContaining({
        conversationId: 'conv-1',
        userId: 'user-1',
        channel: 'telegram',
        direction: 'in',
        text: 'hello',
      }),
      expect.objectContaining({ direction: 'out', text: 'hi there' }),
    ]);
    expect(typeof lines[0].time).toBe('string');
  });

  it('drops a message with a blocked word through the moderation example', async () => {
    const plugins = await loadPlugins(['examples/plugins/moderation.mjs'], { baseDir: repoRoot, logger });
    const runner = createHookRunner({ plugins, logger });
    expect(
      await runner.run('onMessageReceived', turn, { ...message, text: 'this is Forbidden.' }),
    ).toBeNull();
    expect(
      await runner.run('onMessageReceived', turn, { ...message, text: 'unforbiddenness' }),
    ).not.toBeNull();
  });

  it('loads CommonJS, ESM and factory plugins from relative paths, with entry overrides', async () => {
    write('cjs.cjs', "module.exports = { name: 'cjs', priority: 5, onMessageReceived: () => undefined };\n");
    write('esm.mjs', "export default { name: 'esm', timeoutMs: 200, onSkillCall: (c, call) => call };\n");
    write(
      'factory.mjs',
      "export default async (options) => ({ name: 'factory-' + options.suffix, onError() {} });\n",
    );
    write('named.mjs', "export const name = 'named';\nexport function onModelCall() {}\n");
    const plugins = await loadPlugins(
      [
        './cjs.cjs',
        { path: 'esm.mjs', priority: 1, timeoutMs: 20 },
        { path: './factory.mjs', options: { suffix: 'x' } },
        './named.mjs',
      ],
      { baseDir: dir, logger },
    );
    expect(plugins.map((p) => [p.name, p.priority, p.timeoutMs])).toEqual([
      ['cjs', 5, undefined],
      ['esm', 1, 20],
      ['factory-x', undefined, undefined],
      ['named', undefined, undefined],
    ]);
    expect(typeof plugins[1]?.onSkillCall).toBe('function');
  });

  it('loads an ESM-only package (exports with `import` only) installed in the project', async () => {
    const pkg = join(dir, 'node_modules', 'clawmesh-plugin-esm-only');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({ name: 'clawmesh-plugin-esm-only', type: 'module', exports: { import: './main.js' } }),
    );
    writeFileSync(join(pkg, 'main.js'), "export default { name: 'esm-only', onError() {} };\n");
    const plugins = await loadPlugins(['clawmesh-plugin-esm-only'], { baseDir: dir, logger });
    expect(plugins.map((p) => p.name)).toEqual(['esm-only']);
  });

  it('rejects a package that does not exist with INVALID_ARGUMENT naming it', async () => {
    const err = await loadError('clawmesh-plugin-that-does-not-exist');
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('clawmesh-plugin-that-does-not-exist');
    expect(err.cause).toBeDefined();
  });

  it('rejects a missing file with INVALID_ARGUMENT naming the path', async () => {
    const err = await loadError('./missing.js');
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(/plugin \.\/missing\.js: could not be loaded/);
  });

  it('rejects a plugin without a name, saying so', async () => {
    const file = write('nameless.cjs', 'module.exports = { onMessageReceived() {} };\n');
    const err = await loadError(file);
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain(file);
    expect(err.message).toContain('"name" must be a non-empty string');
  });

  it('rejects a hook that is not a function and an unsupported extension', async () => {
    const file = write('bad-hook.mjs', "export default { name: 'bad', onMessageReceived: 'yes' };\n");
    expect((await loadError(file)).message).toContain('"onMessageReceived" must be a function');
    expect((await loadError('./plugin.ts')).message).toContain('use a .js, .cjs or .mjs file');
  });

  it('warns about an on… function that is no hook, naming it, and still loads the plugin', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const recording = createLogger({
      level: 'info',
      destination: { write: (s: string) => lines.push(JSON.parse(s)) },
    });
    const file = write(
      'typo.cjs',
      "module.exports = { name: 'typo', onMesageReceived(c, m) { return null; }, onError() {} };",
    );
    const [plugin] = await loadPlugins([file], { baseDir: dir, logger: recording });
    expect(plugin?.name).toBe('typo');
    const warning = lines.find((line) => line.level === 40);
    expect(warning).toMatchObject({ plugin: 'typo', unknown: ['onMesageReceived'] });
    expect(String(warning?.msg)).toContain('check the spelling');
  });

  it('wraps a throwing factory', async () => {
    const file = write('bad-factory.mjs', "export default () => { throw new Error('no config'); };\n");
    expect((await loadError(file)).message).toContain('its factory threw: no config');
  });
});

describe('parsePluginList', () => {
  it('splits on commas, trims and skips empty parts', () => {
    expect(parsePluginList(' ./a.js, ,clawmesh-b ,,/abs/c.mjs ')).toEqual([
      './a.js',
      'clawmesh-b',
      '/abs/c.mjs',
    ]);
    expect(parsePluginList(undefined)).toEqual([]);
    expect(parsePluginList('')).toEqual([]);
  });
});
