import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolve as importResolve } from 'import-meta-resolve';

/**
 * Resolves a package name (`pkg`, `@scope/pkg`, `pkg/sub`) from `baseDir` to a file, as
 * `require.resolve` does there, and as `import()` would for an ESM-only package: one whose
 * `exports` has an `import` condition and no `require` one, which `require.resolve` refuses with
 * `ERR_PACKAGE_PATH_NOT_EXPORTED`. Throws `require.resolve`'s error when neither finds it.
 *
 * Node 20 cannot run `import()`'s resolution from another directory than the calling module's
 * (`import.meta.resolve(spec, parent)` is behind a flag), and a plugin or skill package is
 * installed in the user's project, not beside Clawmesh: import-meta-resolve runs Node's ESM
 * resolution from there.
 *
 * @example
 * const file = resolvePackage('clawmesh-plugin-acme', '/srv/app'); // '/srv/app/node_modules/clawmesh-plugin-acme/index.js'
 */
export function resolvePackage(spec: string, baseDir: string): string {
  const from = join(resolve(baseDir), 'noop.js');
  try {
    return createRequire(from).resolve(spec);
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') throw err;
    try {
      return fileURLToPath(importResolve(spec, pathToFileURL(from).href));
    } catch {
      throw err;
    }
  }
}
