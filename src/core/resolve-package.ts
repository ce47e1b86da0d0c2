import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

/** The conditions of Node's ESM resolution (`import()`), in the order Node tries them. */
const IMPORT_CONDITIONS = new Set(['node', 'import', 'module-sync', 'default']);

/**
 * Resolves a package name (`pkg`, `@scope/pkg`, `pkg/sub`) from `baseDir` to a file, as
 * `require.resolve` does there, and as `import()` would for an ESM-only package: one whose
 * `exports` has an `import` condition and no `require` one, which `require.resolve` refuses with
 * `ERR_PACKAGE_PATH_NOT_EXPORTED`. Throws `require.resolve`'s error when neither finds it.
 *
 * Node 20 has no way to run `import()`'s resolution from another directory than the calling
 * module's (`import.meta.resolve(spec, parent)` is behind a flag), and a plugin or skill package
 * is installed in the user's project, not beside Clawmesh.
 *
 * @example
 * const file = resolvePackage('clawmesh-plugin-acme', '/srv/app'); // '/srv/app/node_modules/clawmesh-plugin-acme/index.js'
 */
export function resolvePackage(spec: string, baseDir: string): string {
  const require = createRequire(join(resolve(baseDir), 'noop.js'));
  try {
    return require.resolve(spec);
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') throw err;
    const found = resolveImportExports(spec, require.resolve.paths(spec) ?? []);
    if (found === undefined) throw err;
    return found;
  }
}

/** The file `import(spec)` would load, looking for the package in each `node_modules` folder of `paths`. */
function resolveImportExports(spec: string, paths: readonly string[]): string | undefined {
  const parts = spec.split('/');
  const nameLength = spec.startsWith('@') ? 2 : 1;
  const name = parts.slice(0, nameLength).join('/');
  const subpath = parts.length > nameLength ? `./${parts.slice(nameLength).join('/')}` : '.';
  for (const dir of paths) {
    const packageDir = join(dir, name);
    const manifest = join(packageDir, 'package.json');
    if (!existsSync(manifest)) continue;
    const { exports } = JSON.parse(readFileSync(manifest, 'utf8')) as { exports?: unknown };
    const target = targetOf(exports, subpath);
    return target === undefined ? undefined : resolve(packageDir, target);
  }
  return undefined;
}

/** The target of `subpath` in a package's `exports`, under the import conditions. */
function targetOf(exports: unknown, subpath: string): string | undefined {
  const isSubpathMap =
    typeof exports === 'object' &&
    exports !== null &&
    !Array.isArray(exports) &&
    Object.keys(exports).some((key) => key.startsWith('.'));
  const map = (isSubpathMap ? exports : { '.': exports }) as Record<string, unknown>;
  if (Object.hasOwn(map, subpath)) return conditional(map[subpath], '');
  for (const [key, value] of Object.entries(map)) {
    const star = key.indexOf('*');
    if (star < 0) continue;
    const before = key.slice(0, star);
    const after = key.slice(star + 1);
    if (subpath.startsWith(before) && subpath.endsWith(after) && subpath.length >= key.length - 1) {
      return conditional(value, subpath.slice(before.length, subpath.length - after.length));
    }
  }
  return undefined;
}

/** A target under the import conditions: the first matching condition, in the object's order. */
function conditional(target: unknown, star: string): string | undefined {
  if (typeof target === 'string') return target.startsWith('./') ? target.replaceAll('*', star) : undefined;
  if (Array.isArray(target)) {
    for (const item of target) {
      const found = conditional(item, star);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (typeof target === 'object' && target !== null) {
    for (const [condition, value] of Object.entries(target)) {
      if (!IMPORT_CONDITIONS.has(condition)) continue;
      const found = conditional(value, star);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}
