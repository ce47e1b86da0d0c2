import type { SqliteDatabase } from './sqlite.ts';

type Pending<I, O> = { item: I; resolve: (value: O) => void; reject: (err: unknown) => void };

/**
 * Group commit: writes that arrive in the same turn of the event loop share one SQLite
 * transaction (one WAL commit), each in its own savepoint so one failing write (a stale
 * fence, say) leaves the others whole. Each caller's promise settles after the commit.
 *
 * @param apply a `db.transaction(...)` function; called inside the outer one it nests as a savepoint.
 * @param guard maps a failure of the outer transaction (a busy database) to the error callers get.
 */
export function createGroupCommit<I, O>(
  db: SqliteDatabase,
  apply: (item: I) => O,
  guard: <T>(fn: () => T) => T,
): (item: I) => Promise<O> {
  let queue: Array<Pending<I, O>> = [];
  const commit = db.transaction((batch: Array<Pending<I, O>>) =>
    batch.map(({ item }) => {
      try {
        return { ok: true as const, value: apply(item) };
      } catch (error) {
        return { ok: false as const, error };
      }
    }),
  );
  const flush = () => {
    const batch = queue;
    queue = [];
    try {
      const results = guard(() => commit.immediate(batch));
      results.forEach((result, i) => {
        const pending = batch[i]!;
        if (result.ok) pending.resolve(result.value);
        else pending.reject(result.error);
      });
    } catch (err) {
      for (const pending of batch) pending.reject(err);
    }
  };
  return (item) =>
    new Promise<O>((resolve, reject) => {
      if (queue.length === 0) setImmediate(flush);
      queue.push({ item, resolve, reject });
    });
}
