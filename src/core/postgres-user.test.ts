import { userInfo } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import { silentLogger } from '../observability/logger.ts';
import { probePostgres } from '../observability/probes.ts';
import { createConnections } from '../runtime/connections.ts';
import { defaultPostgresUser } from './postgres-user.ts';

/** The test server, without a user in the URL: the case under test. */
const HOST_URL = (() => {
  const url = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
  url.username = '';
  url.password = '';
  return url.toString();
})();

describe('a DATABASE_URL that names no user', () => {
  const saved = { USER: process.env.USER, PGUSER: process.env.PGUSER };
  afterEach(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('logs in as the user running the process, as psql does, when neither PGUSER nor USER is set', async () => {
    // A container (Docker's USER node) or a service manager sets no USER variable.
    delete process.env.USER;
    delete process.env.PGUSER;
    const { config } = loadConfig({ env: { DATABASE_URL: HOST_URL }, cwd: process.cwd() });
    const connections = createConnections(config, silentLogger());
    try {
      const pool = await connections.postgres();
      const { rows } = await pool.query<{ user: string }>('select current_user as user');
      expect(rows[0]?.user).toBe(userInfo().username);
    } finally {
      await connections.close();
    }
    // clawmesh doctor's probe too.
    await expect(probePostgres(HOST_URL)).resolves.toMatch(/PostgreSQL/);
  });

  it('leaves the user to the URL, PGUSER or USER when one names it', () => {
    const me = userInfo().username;
    expect(defaultPostgresUser('postgres://127.0.0.1:5432/db', {})).toBe(me);
    expect(defaultPostgresUser('postgres://app@127.0.0.1:5432/db', {})).toBeUndefined();
    expect(defaultPostgresUser('postgres://127.0.0.1:5432/db', { PGUSER: 'app' })).toBeUndefined();
    expect(defaultPostgresUser('postgres://127.0.0.1:5432/db', { USER: 'app' })).toBeUndefined();
    expect(defaultPostgresUser('not a url', {})).toBeUndefined();
  });
});
