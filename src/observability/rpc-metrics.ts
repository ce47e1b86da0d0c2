import type { CallMiddleware } from '../core/contract.ts';
import { ClawmeshError } from '../core/errors.ts';
import type { Metrics } from './metrics.ts';

/** Records the duration and result code of every call a client makes, per service and method. */
export function rpcMetrics(metrics: Metrics): CallMiddleware {
  return (service, next) => async (method, input, ctx) => {
    const started = performance.now();
    try {
      const output = await next(method, input, ctx);
      metrics.rpcDuration.observe({ service, method, code: 'OK' }, (performance.now() - started) / 1000);
      return output;
    } catch (err) {
      const code = ClawmeshError.from(err).code;
      metrics.rpcDuration.observe({ service, method, code }, (performance.now() - started) / 1000);
      throw err;
    }
  };
}
