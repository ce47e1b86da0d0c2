import type { FastifyInstance } from 'fastify';
import { settlesWithin } from '../core/wait.ts';
import { type Metrics, processMetricsOf } from '../observability/metrics.ts';

/** A dependency `/readyz` checks: a name and a probe that rejects when it does not answer. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
  /**
   * Reported, but a failure does not make the process unready: a messaging channel whose
   * platform cannot be reached yet, while the HTTP API serves.
   */
  optional?: boolean;
}

/** The outcome of one readiness check, as `/readyz` reports it. */
export interface CheckResult {
  name: string;
  status: 'ok' | 'failed';
  /** The same as `status === 'ok'`. */
  ok: boolean;
  /** How long the probe took (or waited before giving up), in milliseconds. */
  latencyMs: number;
  error?: string;
  /** Present (`true`) on a check whose failure leaves the process ready. */
  optional?: true;
}

/** Who answers `/healthz`. */
export interface ProcessIdentity {
  service: string;
  instance: string;
  roles: readonly string[];
}

/** Options of {@link registerOpsRoutes}. */
export interface OpsRoutesOptions {
  metrics: Metrics;
  checks: readonly ReadinessCheck[];
  identity?: ProcessIdentity;
  /** The longest wait for one check, in milliseconds (default 2000). */
  checkTimeoutMs?: number;
  /** Serve only the process metrics on `/metrics` (`metrics.enabled: false`: nothing else records). */
  processMetricsOnly?: boolean;
}

/** Runs every check at once, each within `timeoutMs`; never rejects. */
export async function runChecks(checks: readonly ReadinessCheck[], timeoutMs = 2000): Promise<CheckResult[]> {
  return Promise.all(
    checks.map(async ({ name, check, optional }): Promise<CheckResult> => {
      const started = performance.now();
      const latency = () => Math.round((performance.now() - started) * 100) / 100;
      const flag = optional ? { optional: true as const } : {};
      try {
        if (!(await settlesWithin(check(), timeoutMs))) throw new Error(`no answer within ${timeoutMs} ms`);
        return { name, status: 'ok', ok: true, latencyMs: latency(), ...flag };
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        return { name, status: 'failed', ok: false, latencyMs: latency(), error, ...flag };
      }
    }),
  );
}

/**
 * `GET /healthz` (the process is alive), `GET /readyz` (every dependency of its roles answers —
 * store, bus, connections, the services it calls —, 503 when one does not; the body names each
 * check with its status and latency, optional ones too, which never make it 503) and
 * `GET /metrics` (Prometheus; the process metrics alone with `processMetricsOnly`).
 */
export function registerOpsRoutes(app: FastifyInstance, options: OpsRoutesOptions): void {
  const started = Date.now();
  const identity = options.identity;
  app.get('/healthz', async () => ({
    status: 'ok',
    ...(identity
      ? { service: identity.service, instance: identity.instance, roles: [...identity.roles] }
      : {}),
    uptimeSeconds: Math.round((Date.now() - started) / 1000),
  }));
  app.get('/readyz', async (_request, reply) => {
    const checks = await runChecks(options.checks, options.checkTimeoutMs);
    const ready = checks.every((result) => result.ok || result.optional);
    return reply.status(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not ready',
      ...(identity ? { service: identity.service, instance: identity.instance } : {}),
      checks,
    });
  });
  const registry = options.processMetricsOnly
    ? processMetricsOf(options.metrics.registry)
    : options.metrics.registry;
  app.get('/metrics', async (_request, reply) => {
    const body = await registry.metrics();
    return reply.header('content-type', registry.contentType).send(body);
  });
}
