import { probeHttp } from '../observability/probes.ts';
import { redact } from '../runtime/connections.ts';

/** A service of an http deployment, as `clawmesh status` finds it at its URL. */
export interface HttpServiceStatus {
  /** The service, from its variable: `CONVERSATION_SERVICE_URL` → `conversation`, `SKILLS_INVENTORY_…` → `skills.inventory`. */
  service: string;
  /** Its URL, with any password masked. */
  url: string;
  /** Whether `/healthz` answered. */
  reachable: boolean;
  /** Whether `/readyz` answered 200. */
  ready: boolean;
  /** The instance and roles `/healthz` named. */
  instance?: string;
  roles?: string[];
  uptimeSeconds?: number;
  /** The readiness checks that failed, with why. */
  failing?: { name: string; error?: string }[];
  /** Why the service could not be reached. */
  error?: string;
}

const SERVICE_URL = /^([A-Z0-9_]+)_SERVICE_URL$/;

/**
 * The `<SERVICE>_SERVICE_URL` variables of an environment, by service name, sorted: one entry per
 * URL, since a comma-separated value lists a service's replicas (as the http transport reads it).
 */
export function serviceUrlsOf(env: Record<string, string | undefined>): [service: string, url: string][] {
  const found: [string, string][] = [];
  for (const [key, value] of Object.entries(env)) {
    const match = SERVICE_URL.exec(key);
    if (!match || !value) continue;
    const words = match[1]!.toLowerCase().split('_');
    const service =
      words[0] === 'skills' && words.length > 1 ? `skills.${words.slice(1).join('_')}` : words.join('_');
    for (const url of value.split(',')) {
      if (url.trim()) found.push([service, url.trim()]);
    }
  }
  // Stable: a service's replicas keep the order the variable gives them.
  return found.sort(([a], [b]) => a.localeCompare(b));
}

/** GETs a JSON document (credentials in the URL go as a Basic header); the status and the parsed body. */
async function getJson(url: string, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  const { status, body } = await probeHttp(url, { timeoutMs });
  try {
    return { status, body: JSON.parse(body) };
  } catch {
    return { status, body: undefined };
  }
}

/** Asks one service for its `/healthz` and `/readyz`; never rejects. */
export async function probeService(
  service: string,
  url: string,
  timeoutMs = 3000,
): Promise<HttpServiceStatus> {
  const base = url.replace(/\/+$/, '');
  const shown = redact(url).replace(/\/$/, '');
  try {
    const health = await getJson(`${base}/healthz`, timeoutMs);
    const identity = (health.body ?? {}) as { instance?: unknown; roles?: unknown; uptimeSeconds?: unknown };
    const readiness = await getJson(`${base}/readyz`, timeoutMs);
    const checks = ((readiness.body as { checks?: unknown } | undefined)?.checks ?? []) as {
      name?: unknown;
      ok?: unknown;
      error?: unknown;
    }[];
    const failing = Array.isArray(checks)
      ? checks
          .filter((check) => check.ok === false)
          .map((check) => ({
            name: String(check.name),
            ...(typeof check.error === 'string' ? { error: check.error } : {}),
          }))
      : [];
    return {
      service,
      url: shown,
      reachable: health.status === 200,
      ready: readiness.status === 200,
      ...(typeof identity.instance === 'string' ? { instance: identity.instance } : {}),
      ...(Array.isArray(identity.roles) ? { roles: identity.roles.map(String) } : {}),
      ...(typeof identity.uptimeSeconds === 'number' ? { uptimeSeconds: identity.uptimeSeconds } : {}),
      ...(failing.length > 0 ? { failing } : {}),
      ...(health.status === 200 ? {} : { error: `/healthz answered ${health.status}` }),
    };
  } catch (err) {
    // probeHttp's errors are the network's code (ECONNREFUSED) or the timeout, never the URL.
    return { service, url: shown, reachable: false, ready: false, error: (err as Error).message };
  }
}

/** The services as a table, and a summary line. */
export function formatHttpStatus(services: readonly HttpServiceStatus[]): string {
  const header = ['SERVICE', 'URL', 'INSTANCE', 'ROLES', 'UPTIME S', 'STATE'];
  const rows = services.map((s) => [
    s.service,
    s.url,
    s.instance ?? '-',
    s.roles?.join(',') ?? '-',
    s.uptimeSeconds === undefined ? '-' : String(s.uptimeSeconds),
    !s.reachable
      ? `unreachable: ${s.error}`
      : s.ready
        ? 'ready'
        : `not ready: ${(s.failing ?? []).map((f) => (f.error ? `${f.name} (${f.error})` : f.name)).join('; ')}`,
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd();
  const ready = services.filter((s) => s.ready).length;
  const down = services.filter((s) => !s.reachable).length;
  const names = new Set(services.map((s) => s.service)).size;
  // Replicas (a comma-separated URL) have a row each: count the services and their URLs.
  const urls = names === services.length ? '' : `, ${services.length} URLs`;
  const summary = `${names} service${names === 1 ? '' : 's'}${urls} over http: ${ready} ready, ${down} unreachable`;
  return `${[line(header), ...rows.map(line)].join('\n')}\n\n${summary}\n`;
}
