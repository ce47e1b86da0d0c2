import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnCli } from '../../test/support/process.ts';

/*
 * `clawmesh doctor` as an operator runs it (the built CLI) on a config that does not load: the
 * `fix:` line under `✗ config` fits what went wrong.
 */

/**
 * Runs `clawmesh doctor <args>` in a fresh directory; resolves with its exit code, its first line
 * and the `fix:` line.
 */
async function doctor(args: string[], env: Record<string, string> = {}, cwd = tempDir()) {
  const p = spawnCli(['doctor', ...args], { cwd, env });
  const code = await p.exited;
  const lines = p.stdout().split('\n');
  return { code, line: lines[0], lines, fix: lines.find((line) => line.startsWith('    fix: ')) };
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'clawmesh-doctor-cli-'));
}

describe('clawmesh doctor on a config that does not load', () => {
  it('tells to create the file or correct CLAWMESH_CONFIG when the file it names is missing', async () => {
    const missing = join(tempDir(), 'nope.yaml');
    const { code, line, fix } = await doctor([], { CLAWMESH_CONFIG: missing });
    expect(code).toBe(1);
    expect(line).toBe(`✗ config: config file not found: ${missing}`);
    expect(fix).toBe(
      `    fix: create ${missing}, set CLAWMESH_CONFIG to an existing config file, ` +
        'or unset it to use ./clawmesh.config.yaml or the defaults',
    );
  });

  it('tells to create the file or pass another --config when the file it names is missing', async () => {
    const dir = tempDir();
    const { code, fix } = await doctor(['--config', 'missing.yaml'], {}, dir);
    expect(code).toBe(1);
    expect(fix).toBe(
      `    fix: create ${join(dir, 'missing.yaml')}, or pass --config the path of an existing config file`,
    );
  });

  it('points at the YAML syntax of a file that does not parse', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'clawmesh.config.yaml'), 'gateway: [\n');
    const { code, line, fix } = await doctor([], {}, dir);
    expect(code).toBe(1);
    expect(line).toMatch(/is not valid YAML/);
    expect(fix).toBe(
      `    fix: correct the YAML syntax of ${join(dir, 'clawmesh.config.yaml')} at the line and column named above`,
    );
  });

  it('still points at the key, and names its variable, when a key is wrong', async () => {
    const { code, lines, fix } = await doctor([], { CLAWMESH_GATEWAY__PROT: '1' });
    expect(code).toBe(1);
    expect(lines.slice(0, 2)).toEqual([
      '✗ config: invalid configuration:',
      '  gateway: Unrecognized key: "prot" (set by CLAWMESH_GATEWAY__PROT)',
    ]);
    expect(fix).toBe('    fix: correct the key named above in the config file or its variable');
  });
});

describe('clawmesh doctor on skills that load but that start refuses', () => {
  /** A directory with a config loading `skills`, each a module written from the source given. */
  function withSkills(skills: Record<string, string>): string {
    const dir = tempDir();
    const entry = new URL('../../dist/src/skill.js', import.meta.url).href;
    for (const [file, body] of Object.entries(skills)) {
      writeFileSync(join(dir, file), `import { defineSkill, z } from ${JSON.stringify(entry)};\n${body}\n`);
    }
    const load = Object.keys(skills).map((file) => `./${file}`);
    writeFileSync(
      join(dir, 'clawmesh.config.yaml'),
      `store: { kind: memory }\nskills: { load: ${JSON.stringify(load)} }\n`,
    );
    return dir;
  }
  const tool = `{ a: { description: 'a tool', input: z.object({}), run: () => 1 } }`;

  it('fails the skills line for two skills of one name, as start does with exit code 2', async () => {
    const dir = withSkills({
      'one.mjs': `export default defineSkill({ name: 'weather', version: '1', tools: ${tool} });`,
      'two.mjs': `export default defineSkill({ name: 'weather', version: '2', tools: ${tool} });`,
    });
    const { code, lines } = await doctor([], {}, dir);
    expect(code).toBe(1);
    expect(lines).toContain('✗ skills: two skills are named "weather"; a host serves each name once');
    const start = spawnCli(['start'], { cwd: dir });
    expect(await start.exited).toBe(2);
  });

  it('fails the skills line for a tool whose input is not an object schema', async () => {
    const dir = withSkills({
      'text.mjs': `export default defineSkill({ name: 'text', version: '1', tools: { a: { description: 'a tool', input: z.string(), run: () => 1 } } });`,
    });
    const { code, lines } = await doctor([], {}, dir);
    expect(code).toBe(1);
    expect(lines).toContain('✗ skills: text__a: input must be an object schema (z.object({...}))');
  });
});
