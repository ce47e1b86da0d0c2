/** A problem a check found, with what to do about it. */
export class Problem extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
  }
}

/** One line of the report: a name, and a probe that resolves with what it found or throws a {@link Problem}. */
export type Check = { name: string; run: () => Promise<string> };

/** The message of anything thrown. */
export function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The outcome of one check, as `clawmesh doctor --json` prints it. */
export interface CheckResult {
  name: string;
  /** `off`: not in use (a channel without its variables, tracing without an endpoint). */
  status: 'ok' | 'off' | 'failed';
  /** What the check found, or what is wrong. */
  detail: string;
  /** What to set or start, for a failed check. */
  fix?: string;
}

/** The outcome of a check that threw. */
export function failedResult(name: string, err: unknown, fix?: string): CheckResult {
  const found = fix ?? (err instanceof Problem ? err.fix : undefined);
  return { name, status: 'failed', detail: reason(err), ...(found ? { fix: found } : {}) };
}

/**
 * Prints doctor's report: one line per check (`✓`, `-` or `✗` with a `fix:` line under it) and a
 * summary, or with `json` one object `{ ok, failed, roles, checks }`. Returns the exit code: 1
 * when a check failed.
 */
export function printReport(results: CheckResult[], options: { json: boolean; roles?: string[] }): number {
  const failed = results.filter((result) => result.status === 'failed').length;
  if (options.json) {
    const report = {
      ok: failed === 0,
      failed,
      ...(options.roles ? { roles: options.roles } : {}),
      checks: results,
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return failed === 0 ? 0 : 1;
  }
  const mark = { ok: '✓', off: '-', failed: '✗' } as const;
  for (const [index, result] of results.entries()) {
    process.stdout.write(`${mark[result.status]} ${result.name}: ${result.detail}\n`);
    if (result.fix) process.stdout.write(`    fix: ${result.fix}\n`);
    // Under the config line: the roles checked, when not all four.
    if (index === 0 && result.name === 'config' && options.roles && options.roles.length < 4) {
      process.stdout.write(`  roles: ${options.roles.join(', ')}\n`);
    }
  }
  process.stdout.write(failed === 0 ? 'all checks passed\n' : `${failed} check(s) failed\n`);
  return failed === 0 ? 0 : 1;
}
