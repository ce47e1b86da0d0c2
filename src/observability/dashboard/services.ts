import { hostname } from 'node:os';
import { elapsedMs } from '../../core/context.ts';
import { settlesWithin } from '../../core/wait.ts';
import type { ReadinessCheck } from '../../http/ops-routes.ts';
import type { ServiceInstance } from '../../transport/nats-discovery.ts';
import type { CheckView, InstanceView, ServicesView } from './views.ts';

/** What {@link createServicesView} shows. */
export interface ServicesViewOptions {
  /** The process serving the dashboard. */
  process: {
    name?: string;
    /** This process's instance id, as in logs and traces (default `hostname:pid`). */
    instance?: string;
    version: string;
    roles: readonly string[];
    transport: string;
  };
  /** Its readiness checks, run each time the view is asked for. */
  checks: readonly ReadinessCheck[];
  /** Finds the deployment's running instances (NATS `$SRV`), when it can be discovered. */
  discover?: { kind: string; instances(): Promise<ServiceInstance[]>; localIds?(): readonly string[] };
  /** The longest wait for one check, milliseconds (default 2000). */
  checkTimeoutMs?: number;
  /** How long a discovery answer is reused, so several open pages cost one round (default 2000 ms). */
  discoveryCacheMs?: number;
}

/**
 * The `services()` of the dashboard: this process (roles, readiness checks run live) and, when
 * the deployment can be discovered, every instance that answered, with its endpoints' counters.
 */
export function createServicesView(options: ServicesViewOptions): () => Promise<ServicesView> {
  const started = Date.now();
  const instance = options.process.instance ?? `${hostname()}:${process.pid}`;
  const timeoutMs = options.checkTimeoutMs ?? 2000;
  const discovery = options.discover ? cached(options.discover, options.discoveryCacheMs ?? 2000) : undefined;
  return async () => {
    const [checks, discovered] = await Promise.all([
      Promise.all(options.checks.map((check) => runCheck(check, timeoutMs))),
      discovery?.(),
    ]);
    const view: ServicesView = {
      process: {
        name: options.process.name ?? 'clawmesh',
        version: options.process.version,
        instance,
        roles: [...options.process.roles],
        transport: options.process.transport,
        startedAt: new Date(started).toISOString(),
        uptimeSeconds: Math.round((Date.now() - started) / 1000),
        status: checks.every((check) => check.ok || check.optional) ? 'ready' : 'not ready',
        checks,
      },
    };
    if (discovered) view.discovery = discovered;
    return view;
  };
}

async function runCheck({ name, check, optional }: ReadinessCheck, timeoutMs: number): Promise<CheckView> {
  const started = performance.now();
  const flag = optional ? { optional: true as const } : {};
  try {
    if (!(await settlesWithin(check(), timeoutMs))) throw new Error(`no answer within ${timeoutMs} ms`);
    return { name, ok: true, durationMs: elapsedMs(started), ...flag };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    return { name, ok: false, error, durationMs: elapsedMs(started), ...flag };
  }
}

type Discovery = NonNullable<ServicesView['discovery']>;

/** One discovery round at a time, its answer reused for `ttlMs`. */
function cached(
  discover: NonNullable<ServicesViewOptions['discover']>,
  ttlMs: number,
): () => Promise<Discovery> {
  let last: { at: number; result: Promise<Discovery> } | undefined;
  return () => {
    if (last && Date.now() - last.at < ttlMs) return last.result;
    const result = discover.instances().then(
      (instances): Discovery => {
        const local = new Set(discover.localIds?.() ?? []);
        return { kind: discover.kind, ok: true, instances: instances.map((i) => instanceView(i, local)) };
      },
      (err: unknown): Discovery => ({
        kind: discover.kind,
        ok: false,
        error: err instanceof Error ? err.message : String(err),
      }),
    );
    last = { at: Date.now(), result };
    // The wait starts once the answer is in, so a slow round is not repeated at once.
    void result.then(() => {
      if (last?.result === result) last.at = Date.now();
    });
    return result;
  };
}

function instanceView(instance: ServiceInstance, local: ReadonlySet<string>): InstanceView {
  const view: InstanceView = {
    name: instance.name,
    id: instance.id,
    version: instance.version,
    local: local.has(instance.id),
    requests: 0,
    errors: 0,
    endpoints: instance.endpoints.map((endpoint) => ({
      name: endpoint.name,
      subject: endpoint.subject,
      requests: endpoint.requests,
      errors: endpoint.errors,
      averageMs: endpoint.averageMs,
      ...(endpoint.lastError ? { lastError: endpoint.lastError } : {}),
    })),
  };
  if (instance.contract) view.contract = instance.contract;
  const { instance: processId, hostname: host, pid } = instance.metadata;
  if (processId) view.process = processId;
  if (host) view.host = pid ? `${host}:${pid}` : host;
  if (instance.started) view.started = instance.started;
  for (const endpoint of view.endpoints) {
    view.requests += endpoint.requests;
    view.errors += endpoint.errors;
    if (endpoint.lastError) view.lastError = endpoint.lastError;
  }
  return view;
}
