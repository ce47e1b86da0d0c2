import { stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ClawmeshError } from '../core/errors.ts';
import { resolvePackage } from '../core/resolve-package.ts';
import { isSkill, type Skill } from './define.ts';

/** Where {@link loadSkills} looks. */
export interface LoadSkillsOptions {
  /** Relative paths and package names resolve from here (usually the config file's folder). */
  baseDir: string;
  /** The folder of the built-in skills: `<builtinDir>/<name>/index.js` (or `index.ts`). */
  builtinDir: string;
}

/** File names tried in a skill's folder, compiled JavaScript first. */
const INDEX_FILES = ['index.js', 'index.mjs', 'index.ts'];
const BUILTIN_NAME = /^[a-z][a-z0-9-]*$/;

/**
 * Loads skills from specifiers, in order: a built-in name (`inventory`, `support`), a path
 * (relative to `baseDir`; a folder means its index file) or a package name. A module exports a
 * skill made by `defineSkill` as its default or as `skill`, or an array of them as its default.
 *
 * @example
 * const skills = await loadSkills(['inventory', './skills/weather', '@acme/clawmesh-crm'], {
 *   baseDir: process.cwd(),
 *   builtinDir: fileURLToPath(new URL('../../examples/skills', import.meta.url)),
 * });
 */
export async function loadSkills(
  specifiers: readonly string[],
  options: LoadSkillsOptions,
): Promise<Skill[]> {
  const skills: Skill[] = [];
  for (const specifier of specifiers) {
    for (const skill of await loadOne(specifier, options)) {
      if (!skills.includes(skill)) skills.push(skill);
    }
  }
  return skills;
}

async function loadOne(specifier: string, options: LoadSkillsOptions): Promise<Skill[]> {
  if (typeof specifier !== 'string' || specifier.trim() === '') {
    throw new ClawmeshError('INVALID_ARGUMENT', `skill specifier ${JSON.stringify(specifier)} is empty`);
  }
  const file = await locate(specifier, options);
  let mod: Record<string, unknown>;
  try {
    mod = await import(file.url);
  } catch (err) {
    if (file.kind === 'package' && isNotFound(err) && !file.resolved) {
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `skill "${specifier}": no built-in skill, file or package by that name`,
        {
          cause: err,
        },
      );
    }
    const reason = err instanceof Error ? err.message : String(err);
    throw new ClawmeshError('INVALID_ARGUMENT', `skill "${specifier}": failed to load: ${reason}`, {
      cause: err,
    });
  }
  return skillsOf(specifier, mod);
}

type Located = { kind: 'file'; url: string } | { kind: 'package'; url: string; resolved: boolean };

async function locate(specifier: string, { baseDir, builtinDir }: LoadSkillsOptions): Promise<Located> {
  if (BUILTIN_NAME.test(specifier)) {
    const index = await indexFileIn(join(builtinDir, specifier));
    if (index) return { kind: 'file', url: pathToFileURL(index).href };
  }
  const isPath = specifier.startsWith('.') || isAbsolute(specifier) || specifier.startsWith('file:');
  if (!isPath) {
    // Resolve from baseDir first (the user's project); fall back to resolution from Clawmesh itself.
    try {
      const path = resolvePackage(specifier, baseDir);
      return { kind: 'package', url: pathToFileURL(path).href, resolved: true };
    } catch {
      return { kind: 'package', url: specifier, resolved: false };
    }
  }
  const path = specifier.startsWith('file:') ? fileURLToPath(specifier) : resolve(baseDir, specifier);
  const info = await stat(path).catch(() => undefined);
  if (info?.isFile()) return { kind: 'file', url: pathToFileURL(path).href };
  const index = info?.isDirectory() ? await indexFileIn(path) : undefined;
  if (index) return { kind: 'file', url: pathToFileURL(index).href };
  const looked = info?.isDirectory()
    ? ` (no ${INDEX_FILES.join(' / ')} in ${path})`
    : ` (${path} does not exist)`;
  throw new ClawmeshError('INVALID_ARGUMENT', `skill "${specifier}": not found${looked}`);
}

async function indexFileIn(dir: string): Promise<string | undefined> {
  for (const name of INDEX_FILES) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile()) return path;
  }
  return undefined;
}

function skillsOf(specifier: string, mod: Record<string, unknown>): Skill[] {
  let exported = mod.default ?? mod.skill;
  // A CommonJS module compiled from ESM puts its default export under `default` again.
  if (
    !isSkill(exported) &&
    !Array.isArray(exported) &&
    isRecord(exported) &&
    exported.default !== undefined
  ) {
    exported = exported.default;
  }
  if (isSkill(exported)) return [exported];
  if (Array.isArray(exported) && exported.length > 0 && exported.every(isSkill)) return exported;
  const found =
    exported === undefined ? 'it has no default or `skill` export' : 'its export was not made by defineSkill';
  throw new ClawmeshError(
    'INVALID_ARGUMENT',
    `skill "${specifier}": expected a skill made by defineSkill (or an array of them) as the default export; ${found}`,
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function isNotFound(err: unknown): boolean {
  const code = isRecord(err) ? err.code : undefined;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}
