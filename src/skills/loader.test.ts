import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSkills } from './loader.ts';

const builtinDir = fileURLToPath(new URL('../../examples/skills', import.meta.url));
const defineUrl = pathToFileURL(fileURLToPath(new URL('./define.ts', import.meta.url))).href;
let baseDir = '';

const skillSource = (name: string) =>
  `defineSkill({ name: '${name}', version: '1.0.0', tools: { ping: { description: 'Pings', input: z.object({}), run: () => 'pong' } } })`;

beforeAll(async () => {
  baseDir = await mkdtemp(join(tmpdir(), 'clawmesh-loader-'));
  const header = `import { z } from 'zod';\nimport { defineSkill } from '${defineUrl}';\n`;
  await mkdir(join(baseDir, 'weather'));
  await writeFile(
    join(baseDir, 'weather', 'index.js'),
    `${header}export default ${skillSource('weather')};\n`,
  );
  await writeFile(join(baseDir, 'named.js'), `${header}export const skill = ${skillSource('named')};\n`);
  await writeFile(
    join(baseDir, 'pair.js'),
    `${header}export default [${skillSource('one')}, ${skillSource('two')}];\n`,
  );
  await writeFile(join(baseDir, 'plain.js'), `export default { name: 'plain', tools: {} };\n`);
  await writeFile(join(baseDir, 'broken.js'), `throw new Error('cannot start');\n`);
  await mkdir(join(baseDir, 'empty'));
  // An ESM-only package installed in the project: `exports` with `import` and no `require`.
  const pkg = join(baseDir, 'node_modules', '@acme', 'esm-only-skill');
  await mkdir(join(pkg, 'lib', 'extra'), { recursive: true });
  await writeFile(
    join(pkg, 'package.json'),
    JSON.stringify({
      name: '@acme/esm-only-skill',
      type: 'module',
      exports: {
        '.': { types: './x.d.ts', import: './lib/main.js' },
        './extra/*': { import: './lib/extra/*.js' },
      },
    }),
  );
  // Files under node_modules run in Node itself, untransformed: a skill branded as defineSkill brands it.
  const branded = (name: string) =>
    `const skill = { name: '${name}', version: '1.0.0', tools: {} };\n` +
    `Object.defineProperty(skill, Symbol.for('clawmesh.skill'), { value: true });\nexport default skill;\n`;
  await writeFile(join(pkg, 'lib', 'main.js'), branded('esmonly'));
  await writeFile(join(pkg, 'lib', 'extra', 'more.js'), branded('more'));
});

afterAll(async () => {
  await rm(baseDir, { recursive: true, force: true });
});

const load = (...specifiers: string[]) => loadSkills(specifiers, { baseDir, builtinDir });

describe('loadSkills', () => {
  it('loads the built-in skills by name', async () => {
    const skills = await load('inventory', 'support');
    expect(skills.map((s) => s.name)).toEqual(['inventory', 'support']);
    expect(Object.keys(skills[0]!.tools)).toEqual(['lookupStock', 'listItems']);
  });

  it('loads a folder by its index file, relative to baseDir', async () => {
    const [skill] = await load('./weather');
    expect(skill?.name).toBe('weather');
  });

  it('loads an absolute path, a named `skill` export and an array of skills', async () => {
    const skills = await load(join(baseDir, 'named.js'), './pair.js');
    expect(skills.map((s) => s.name)).toEqual(['named', 'one', 'two']);
  });

  it('loads the same module once when named twice', async () => {
    expect(await load('./weather', './weather/index.js')).toHaveLength(1);
  });

  it('names the specifier of a path that does not exist', async () => {
    await expect(load('./missing')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/^skill "\.\/missing": not found/),
    });
  });

  it('names the specifier of a folder with no index file', async () => {
    await expect(load('./empty')).rejects.toThrow(/skill "\.\/empty": not found \(no index\.js/);
  });

  it('refuses a module whose export was not made by defineSkill', async () => {
    await expect(load('./plain.js')).rejects.toThrow(
      /skill "\.\/plain\.js": expected a skill made by defineSkill/,
    );
  });

  it('loads an ESM-only package (and a subpath of it) installed in the project', async () => {
    const skills = await load('@acme/esm-only-skill', '@acme/esm-only-skill/extra/more');
    expect(skills.map((s) => s.name)).toEqual(['esmonly', 'more']);
  });

  it('refuses a package that exports no skill', async () => {
    await expect(load('zod')).rejects.toThrow(/skill "zod": expected a skill made by defineSkill/);
  });

  it('reports a module that throws while loading, with its cause', async () => {
    const err = await load('./broken.js').catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('failed to load: cannot start'),
    });
    expect((err as Error).cause).toBeInstanceOf(Error);
  });

  it('reports a name that is no built-in skill, file or package', async () => {
    await expect(load('no-such-skill-anywhere')).rejects.toThrow(
      /skill "no-such-skill-anywhere": no built-in skill, file or package by that name/,
    );
  });
});
