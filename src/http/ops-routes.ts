import type { FastifyInstance } from 'fastify';
import { settlesWithin } from '../core/wait.ts';
import type { Metrics } from '../observability/metrics.ts';

/** A dependency `/readyz` checks: a name and a probe that rejects when it does not answer. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

/**
 * `GET /healthz` (the process is alive), `GET /readyz` (its dependencies answer, 503 when one
 * does not, naming it) and `GET /metrics` (Prometheus).
 */
export function registerOpsRoutes(
  app: FastifyInstance,
  options: { metrics: Metrics; checks: ReadinessCheck[] },
): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const results = await Promise.all(
      options.checks.map(async ({ name, check }) => {
        try {
          if (!(await settlesWithin(check(), 2000))) throw new Error('no answer within 2000 ms');
          return { name, ok: true as const };
        } catch (err) {
          return { name, ok: false as const, error: err instanceof Error ? err.message : String(err) };
        }
      }),
    );
    const ready = results.every((result) => result.ok);
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks: results });
  });
  app.get('/metrics', async (_request, reply) => {
    const body = await options.metrics.registry.metrics();
    return reply.header('content-type', options.metrics.registry.contentType).send(body);
  });
}
