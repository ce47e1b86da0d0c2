import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { ClawmeshError } from '../../src/core/errors.ts';

/** A directory for config files, made afresh before each test of the file and removed after it. */
export interface ConfigDir {
  /** The directory of the running test. */
  readonly path: string;
  /** Writes a file under the directory (making its parents); returns its absolute path. */
  write(name: string, text: string): string;
}

/** Registers the hooks of a {@link ConfigDir}; call it once at the top of a test file. */
export function configDirPerTest(): ConfigDir {
  let current = '';
  beforeEach(() => {
    current = mkdtempSync(join(tmpdir(), 'clawmesh-config-'));
  });
  afterEach(() => {
    rmSync(current, { recursive: true, force: true });
  });
  return {
    get path() {
      return current;
    },
    write(name, text) {
      const path = join(current, name);
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, text);
      return path;
    },
  };
}

/** The ClawmeshError `run` throws; fails the test when it returns. */
export function failure(run: () => unknown): ClawmeshError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ClawmeshError);
    return err as ClawmeshError;
  }
  throw new Error('expected loadConfig to throw');
}
