import { parentPort, workerData } from 'node:worker_threads';
import { ClawmeshError } from '../../core/errors.ts';
import { openSqlite, type SqliteDatabase } from '../sqlite.ts';
import { createSqliteConversationStore } from '../sqlite-conversations.ts';
import { createSqliteDedupeStore } from '../sqlite-dedupe.ts';
import type { ThreadData, ThreadRequest, ThreadResponse } from './protocol.ts';

// The SQLite thread: owns the database connection and runs the stores' calls, so the main
// thread never blocks on SQLite. Calls that arrive together share a group commit. A `close`
// call waits for the calls before it, closes the database and ends the thread.
type Methods = Record<string, (...args: unknown[]) => Promise<unknown>>;

const port = parentPort!;
const { path } = workerData as ThreadData;
let db: SqliteDatabase | undefined;
let stores: Record<ThreadRequest['store'], Methods> | undefined;
let openError: ClawmeshError | undefined;
try {
  db = openSqlite(path);
  stores = {
    conversations: createSqliteConversationStore({ db }) as unknown as Methods,
    dedupe: createSqliteDedupeStore({ db }) as unknown as Methods,
  };
} catch (err) {
  openError = ClawmeshError.from(err, 'UNAVAILABLE');
}

let inFlight = 0;
let drained: (() => void) | undefined;
const reply = (response: ThreadResponse) => port.postMessage(response);
const fail = (id: number, err: unknown) => reply({ id, ok: false, error: ClawmeshError.from(err).toJSON() });

async function close(id: number): Promise<void> {
  if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
  try {
    await stores?.conversations.close?.();
    await stores?.dedupe.close?.();
    if (db?.open) db.close();
    reply({ id, ok: true, value: null });
  } catch (err) {
    fail(id, err);
  }
  port.close();
}

port.on('message', (request: ThreadRequest) => {
  if (request.method === 'close') {
    void close(request.id);
    return;
  }
  if (!stores) return fail(request.id, openError);
  const method = stores[request.store][request.method];
  if (typeof method !== 'function')
    return fail(request.id, new ClawmeshError('INTERNAL', `no store method ${request.method}`));
  inFlight += 1;
  method(...request.args)
    .then(
      (value) => reply({ id: request.id, ok: true, value }),
      (err: unknown) => fail(request.id, err),
    )
    .finally(() => {
      inFlight -= 1;
      if (inFlight === 0) drained?.();
    });
});
