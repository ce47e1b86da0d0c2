import { ClawmeshError } from '../core/errors.ts';
import type { SqliteDatabase } from './sqlite.ts';

type Pending<I, O> = { item: I; resolve: (value: O) => void; reject: (err: unknown) => void };
type Outcome<O> = { ok: true; value: O } | { ok: false; error: unknown };

/**
 * Group commit: writes that arrive in the same turn of the event loop share one SQLite
 * transaction (one WAL commit). `apply` must do all its checks before its first write and
 * throw a `ClawmeshError` when one fails: that write is refused and the others commit. Any
 * other failure rolls the batch back, and each write is then retried in a transaction of its
 * own, so one broken write never takes the others with it. Each promise settles after commit.
 *
 * @param guard maps a failure of the transaction itself (a busy database) to the error callers get.
 * @param rolledBack called when a transaction of the batch was rolled back, so state kept beside
 *   the database for what `apply` wrote can be dropped.
 */
export function createGroupCommit<I, O>(
  db: SqliteDatabase,
  apply: (item: I) => O,
  guard: <T>(fn: () => T) => T,
  rolledBack: () => void = () => {},
): (item: I) => Promise<O> {
  let queue: Array<Pending<I, O>> = [];
  const applyRefusable = (item: I): Outcome<O> => {
    try {
      return { ok: true, value: apply(item) };
    } catch (error) {
      if (error instanceof ClawmeshError) return { ok: false, error };
      throw error;
    }
  };
  const commitBatch = db.transaction((batch: Array<Pending<I, O>>) =>
    batch.map(({ item }) => applyRefusable(item)),
  );
  const commitOne = db.transaction((item: I) => applyRefusable(item));
  const settle = (pending: Pending<I, O>, outcome: Outcome<O>) =>
    outcome.ok ? pending.resolve(outcome.value) : pending.reject(outcome.error);

  const flush = () => {
    const batch = queue;
    queue = [];
    let outcomes: Array<Outcome<O>> | undefined;
    try {
      outcomes = guard(() => commitBatch.immediate(batch));
    } catch {
      // Rolled back: find the broken write by committing each on its own.
      rolledBack();
    }
    batch.forEach((pending, i) => {
      if (outcomes) {
        settle(pending, outcomes[i]!);
        return;
      }
      try {
        settle(
          pending,
          guard(() => commitOne.immediate(pending.item)),
        );
      } catch (err) {
        rolledBack();
        pending.reject(err);
      }
    });
  };
  return (item) =>
    new Promise<O>((resolve, reject) => {
      if (queue.length === 0) setImmediate(flush);
      queue.push({ item, resolve, reject });
    });
}
