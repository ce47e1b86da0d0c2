import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/*
 * `definePlugin` exists for its types (docs/plugins.md): hook arguments are typed and a misspelt
 * hook name is a compile error. Checked with the TypeScript compiler on a plugin as a user
 * writes it.
 */

/** The type errors of `source`, a module that imports `definePlugin`, as `line: message`. */
function typeErrors(source: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'clawmesh-define-plugin-'));
  const file = join(dir, 'plugin.ts');
  const entry = fileURLToPath(new URL('./plugin.ts', import.meta.url));
  writeFileSync(file, `import { definePlugin } from ${JSON.stringify(entry)};\n${source}\n`);
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    allowImportingTsExtensions: true,
    skipLibCheck: true,
    types: [],
  });
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file?.fileName === file)
    .map((d) => {
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
      return `${line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
}

describe('definePlugin types', () => {
  it('refuses a misspelt hook name, and accepts hooks, other fields and typed hook arguments', () => {
    const errors = typeErrors(
      [
        "export const typo = definePlugin({ name: 'a', onMesageReceived() {} });",
        "export const fine = definePlugin({ name: 'b', priority: 5, once: 1, onlyAdmins: true, helper: () => 1,",
        '  onMessageReceived: (context, message) => context.userId + message.text,',
        "  onSkillCall: (context, call) => (call.skill === 'x' ? null : undefined),",
        '});',
        "export const wrong = definePlugin({ name: 'c', onResponseGenerated: (context, response) => response.nope });",
      ].join('\n'),
    );
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/^1: Type '\(\) => void' is not assignable to type 'never'/);
    expect(errors[1]).toMatch(/^6: Property 'nope' does not exist on type 'PluginResponse'/);
  });
});
