import type { Counter, Histogram } from 'prom-client';
import type { CallContext } from '../core/context.ts';
import type { CallMiddleware, Contract, Handlers } from '../core/contract.ts';
import { ClawmeshError } from '../core/errors.ts';
import type { Transport } from '../transport/types.ts';
import {
  type FastCounterChild,
  type FastHistogramChild,
  fastCounter,
  fastHistogram,
} from './fast-metrics.ts';
import type { Metrics } from './metrics.ts';

type Label = 'service' | 'method' | 'transport';
type Side = {
  requests: Counter<Label>;
  duration: Histogram<Label>;
  errors: Counter<Label | 'code'>;
};

/** Requests, errors and duration of one service's methods, with the series found once per method. */
function meter(side: Side, service: string, transport: string) {
  const children = new Map<string, { requests: FastCounterChild; duration: FastHistogramChild }>();
  const of = (method: string) => {
    let child = children.get(method);
    if (!child) {
      const labels = { service, method, transport };
      child = {
        requests: fastCounter(side.requests, labels),
        duration: fastHistogram(side.duration, labels),
      };
      children.set(method, child);
    }
    return child;
  };
  return async <T>(method: string, call: () => Promise<T>): Promise<T> => {
    const child = of(method);
    child.requests.inc();
    const started = performance.now();
    try {
      return await call();
    } catch (err) {
      side.errors.inc({ service, method, transport, code: ClawmeshError.from(err).code });
      throw err;
    } finally {
      child.duration.observe((performance.now() - started) / 1000);
    }
  };
}

/**
 * Counts every call a client makes and records its duration, per service, method and transport
 * (the hop), with failures counted per error code.
 */
export function rpcMetrics(metrics: Metrics, transport = 'local'): CallMiddleware {
  const side = { requests: metrics.rpcRequests, duration: metrics.rpcDuration, errors: metrics.rpcErrors };
  return (service, next) => {
    const measure = meter(side, service, transport);
    return (method, input, ctx) => measure(method, () => next(method, input, ctx));
  };
}

type AnyHandler = (input: unknown, ctx: CallContext) => Promise<unknown>;

/** A contract's handlers, each counted and timed as a call this process handled. */
export function meterHandlers<C extends Contract>(
  metrics: Metrics,
  transport: string,
  contract: C,
  handlers: Handlers<C>,
): Handlers<C> {
  const side = {
    requests: metrics.rpcServerRequests,
    duration: metrics.rpcServerDuration,
    errors: metrics.rpcServerErrors,
  };
  const measure = meter(side, contract.name, transport);
  const metered: Record<string, AnyHandler> = {};
  for (const [method, handler] of Object.entries(handlers as Record<string, AnyHandler>)) {
    metered[method] = (input, ctx) => measure(method, () => handler(input, ctx));
  }
  return metered as Handlers<C>;
}

/**
 * Meters the server side of a remote transport (http, nats): every contract it serves is
 * counted and timed per method ({@link meterHandlers}). Clients are metered by
 * {@link rpcMetrics}, given where they are made. Over `local` the transport is left as it is.
 */
export function meterTransport<T extends Transport>(transport: T, metrics: Metrics): T {
  // Over the local transport a call is a function call: the caller's side records it once.
  if (transport.kind === 'local') return transport;
  const serve = transport.serve.bind(transport);
  Object.assign(transport, {
    serve: <C extends Contract>(contract: C, handlers: Handlers<C>) =>
      serve(contract, meterHandlers(metrics, transport.kind, contract, handlers)),
  });
  return transport;
}
