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
