import { extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ClawmeshError } from '../core/errors.ts';
import { resolvePackage } from '../core/resolve-package.ts';
import type { Logger } from '../observability/logger.ts';
import type { ClawmeshPlugin } from './types.ts';

/** Where a plugin comes from, with settings that win over the plugin's own. */
export interface PluginEntryObject {
  /** A file (`.js`, `.cjs`, `.mjs`; relative to `baseDir` or absolute) or a package name. */
  path: string;
  /** Overrides the plugin's `priority`. */
  priority?: number;
  /** Overrides the plugin's `timeoutMs`. */
  timeoutMs?: number;
  /** Passed to a factory default export. */
  options?: Record<string, unknown>;
}

/** A plugin entry: a file path or package name, or the same with settings. */
export type PluginEntry = string | PluginEntryObject;

/** Options of {@link loadPlugins}. */
export interface LoadPluginsOptions {
  /** The directory relative paths and package names resolve from. */
  baseDir: string;
  logger: Logger;
}

const FILE_EXTENSIONS = new Set(['.js', '.cjs', '.mjs']);
const HOOK_NAMES = [
  'onMessageReceived',
  'onResponseGenerated',
  'onSkillCall',
  'onModelCall',
  'onError',
] as const;

/**
 * Loads plugins, CommonJS or ESM, in entry order. A plugin may be the default export, the
 * `module.exports` object, or a factory (default export) called with the entry's `options`.
 * A bad path or shape throws `INVALID_ARGUMENT` naming the entry: startup should fail loudly.
 *
 * @example
 * const plugins = await loadPlugins(['./plugins/audit-logger.js', { path: 'clawmesh-moderation', priority: 5 }], {
 *   baseDir: process.cwd(),
 *   logger,
 * });
 */
export async function loadPlugins(
  entries: PluginEntry[],
  options: LoadPluginsOptions,
): Promise<ClawmeshPlugin[]> {
  const plugins: ClawmeshPlugin[] = [];
  const names = new Set<string>();
  for (const entry of entries) {
    const plugin = await loadOne(typeof entry === 'string' ? { path: entry } : entry, options.baseDir);
    if (names.has(plugin.name)) options.logger.warn({ plugin: plugin.name }, 'two plugins share a name');
    names.add(plugin.name);
    const unknown = unknownHooks(plugin);
    if (unknown.length > 0) {
      // A misspelt hook never runs: a moderation plugin would let every message through unseen.
      options.logger.warn(
        { plugin: plugin.name, unknown, hooks: HOOK_NAMES },
        `plugin ${plugin.name} has ${unknown.map((name) => `"${name}"`).join(', ')}, which no hook is called: check the spelling (hooks: ${HOOK_NAMES.join(', ')})`,
      );
    }
    options.logger.info({ plugin: plugin.name, version: plugin.version }, 'plugin loaded');
    plugins.push(plugin);
  }
  return plugins;
}

/**
 * Splits the `CLAWMESH_PLUGINS` variable: comma-separated, trimmed, empty parts skipped.
 *
 * @example
 * parsePluginList(' ./a.js, ,b ') // ['./a.js', 'b']
 */
export function parsePluginList(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
}

async function loadOne(entry: PluginEntryObject, baseDir: string): Promise<ClawmeshPlugin> {
  const invalid = (problem: string, cause?: unknown) =>
    new ClawmeshError('INVALID_ARGUMENT', `plugin ${entry.path}: ${problem}`, {
      cause,
      details: { entry: entry.path, problem },
    });
  if (typeof entry.path !== 'string' || entry.path.trim() === '') throw invalid('the path is empty');
  let exported: unknown;
  try {
    exported = pickExport(await importEntry(entry.path, baseDir));
  } catch (err) {
    if (err instanceof ClawmeshError) throw err;
    throw invalid(`could not be loaded: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  if (typeof exported === 'function') {
    try {
      exported = await exported(entry.options ?? {});
    } catch (err) {
      throw invalid(`its factory threw: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  }
  const problem = shapeProblem(exported);
  if (problem) throw invalid(problem);
  const plugin = exported as ClawmeshPlugin;
  const overrides: Partial<ClawmeshPlugin> = {};
  if (entry.priority !== undefined) overrides.priority = entry.priority;
  if (entry.timeoutMs !== undefined) overrides.timeoutMs = entry.timeoutMs;
  const overrideProblem = shapeProblem({ name: plugin.name, ...overrides });
  if (overrideProblem) throw invalid(`entry ${overrideProblem}`);
  if (Object.keys(overrides).length === 0) return plugin;
  // A layer over the export: the module's object stays untouched, and a class-based plugin
  // keeps its methods and `this`.
  return Object.assign(Object.create(plugin) as ClawmeshPlugin, overrides);
}

/** Imports a file (relative to `baseDir` or absolute) or a package resolved from `baseDir`. */
async function importEntry(spec: string, baseDir: string): Promise<unknown> {
  const isFile = isAbsolute(spec) || spec.startsWith('.') || FILE_EXTENSIONS.has(extname(spec));
  if (isFile) {
    const ext = extname(spec);
    if (!FILE_EXTENSIONS.has(ext)) {
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `plugin ${spec}: use a .js, .cjs or .mjs file (got "${ext}")`,
        {
          details: { entry: spec, problem: 'unsupported file extension' },
        },
      );
    }
    return import(pathToFileURL(resolve(baseDir, spec)).href);
  }
  // From baseDir (the user's project), an ESM-only package too.
  return import(pathToFileURL(resolvePackage(spec, baseDir)).href);
}

/** The plugin a module provides: its default export (unwrapping transpiled CJS), else the module. */
function pickExport(namespace: unknown): unknown {
  const mod = namespace as Record<string, unknown>;
  if (mod.default === undefined) return { ...mod };
  const value = mod.default;
  // CommonJS compiled from ESM: module.exports = { __esModule: true, default: plugin }.
  if (typeof value === 'object' && value !== null && '__esModule' in value && 'default' in value) {
    return (value as { default: unknown }).default;
  }
  return value;
}

/** The plugin's `on…` functions that are not hooks (a typo such as `onMesageReceived`). */
function unknownHooks(plugin: ClawmeshPlugin): string[] {
  const known: ReadonlySet<string> = new Set(HOOK_NAMES);
  return Object.keys(plugin).filter(
    (key) =>
      /^on[A-Z]/.test(key) &&
      !known.has(key) &&
      typeof (plugin as unknown as Record<string, unknown>)[key] === 'function',
  );
}

/** What is wrong with a would-be plugin, or undefined when it has the right shape. */
function shapeProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null)
    return `exports ${value === null ? 'null' : typeof value}, not a plugin object`;
  const plugin = value as Record<string, unknown>;
  if (typeof plugin.name !== 'string' || plugin.name.trim() === '')
    return '"name" must be a non-empty string';
  for (const hook of HOOK_NAMES) {
    if (plugin[hook] !== undefined && typeof plugin[hook] !== 'function')
      return `"${hook}" must be a function`;
  }
  if (plugin.priority !== undefined && !Number.isFinite(plugin.priority))
    return '"priority" must be a finite number';
  const timeout = plugin.timeoutMs;
  if (timeout !== undefined && !(typeof timeout === 'number' && Number.isFinite(timeout) && timeout > 0)) {
    return '"timeoutMs" must be a positive number';
  }
  return undefined;
}
