import { userInfo } from 'node:os';

/**
 * The user to log into PostgreSQL as when `url` names none, as `psql` and libpq do: `PGUSER`,
 * else the name of the user running the process. `undefined` when the URL names one, or when
 * `PGUSER` or `USER` is set (the `pg` driver reads those itself).
 *
 * `pg` alone takes only `PGUSER` and `USER`; a container (Docker's `USER node` sets no `USER`
 * variable) or a service manager leaves both unset, and a `DATABASE_URL` such as
 * `postgres://db:5432/clawmesh` then failed with "no PostgreSQL user name specified in startup
 * packet".
 *
 * @example
 * defaultPostgresUser('postgres://db:5432/clawmesh', {}); // 'node' in the Docker image
 */
export function defaultPostgresUser(url: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  let named = false;
  try {
    named = new URL(url).username !== '';
  } catch {
    // Not a URL pg parses as one (a socket path, key=value pairs): leave it to pg.
    return undefined;
  }
  if (named || env.PGUSER || env.USER) return undefined;
  try {
    return userInfo().username || undefined;
  } catch {
    // A uid with no passwd entry: nothing better than pg's own error.
    return undefined;
  }
}

/**
 * `url` with {@link defaultPostgresUser} written in when it finds one, else `url` unchanged. The
 * user goes into the URL because `pg` lets a connection string's (empty) user replace a `user`
 * option given beside it.
 *
 * @example
 * new pg.Pool({ connectionString: withDefaultPostgresUser(url) });
 */
export function withDefaultPostgresUser(url: string, env: NodeJS.ProcessEnv = process.env): string {
  const user = defaultPostgresUser(url, env);
  if (user === undefined) return url;
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(user);
  return parsed.toString();
}
