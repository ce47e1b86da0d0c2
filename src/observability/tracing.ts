import {
  type Attributes,
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { CallContext } from '../core/context.ts';
import { ClawmeshError } from '../core/errors.ts';

/** What a process traces with; `enabled` is false (and every helper a no-op) without an exporter. */
export interface Tracing {
  readonly enabled: boolean;
  readonly tracer: Tracer | undefined;
  /** Sends the spans still buffered. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

const DISABLED: Tracing = {
  enabled: false,
  tracer: undefined,
  flush: async () => undefined,
  shutdown: async () => undefined,
};

/** Options of {@link initTracing}. */
export interface TracingOptions {
  /** `service.name` of the spans: `clawmesh-<roles>`. */
  serviceName: string;
  /** `service.instance.id`. */
  instanceId: string;
  /** The OTLP/HTTP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`); tracing is off without one. */
  endpoint?: string | undefined;
  /** How long spans are batched before export, in milliseconds (default 500). */
  flushDelayMs?: number;
}

let active: Tracing = DISABLED;

/** The tracing of this process (disabled until {@link initTracing} starts it). */
export function tracing(): Tracing {
  return active;
}

/**
 * Starts exporting spans over OTLP/HTTP (JSON) when an endpoint is set; otherwise tracing stays
 * off and costs nothing. The SDK loads only when tracing is on.
 */
export async function initTracing(options: TracingOptions): Promise<Tracing> {
  if (!options.endpoint) return DISABLED;
  if (active.enabled) return active;
  const [{ BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] =
    await Promise.all([
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
    ]);
  const base = options.endpoint.replace(/\/+$/, '');
  const exporter = new OTLPTraceExporter({ url: base.endsWith('/v1/traces') ? base : `${base}/v1/traces` });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': options.serviceName,
      'service.instance.id': options.instanceId,
      'service.namespace': 'clawmesh',
    }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: options.flushDelayMs ?? 500 })],
  });
  const tracer = provider.getTracer('clawmesh');
  active = {
    enabled: true,
    tracer,
    flush: () => provider.forceFlush(),
    async shutdown() {
      await provider.shutdown();
      active = DISABLED;
    },
  };
  return active;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The OpenTelemetry context whose remote parent is the call context's `traceparent`. */
export function parentOf(ctx: Pick<CallContext, 'traceparent'>): Context {
  const match = TRACEPARENT.exec(ctx.traceparent);
  if (!match) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: match[1]!,
    spanId: match[2]!,
    traceFlags: Number.parseInt(match[3]!, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  });
}

/** The call context continued inside `span`: its `traceparent` names the span. */
export function contextIn(ctx: CallContext, span: Span): CallContext {
  const { traceId, spanId, traceFlags } = span.spanContext();
  return { ...ctx, traceparent: `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, '0')}` };
}

/** The kinds of span Clawmesh makes. */
export type SpanRole = 'client' | 'server' | 'internal' | 'producer' | 'consumer';
const KINDS: Record<SpanRole, SpanKind> = {
  client: SpanKind.CLIENT,
  server: SpanKind.SERVER,
  internal: SpanKind.INTERNAL,
  producer: SpanKind.PRODUCER,
  consumer: SpanKind.CONSUMER,
};

/**
 * Whether a `traceparent` may have recorded children: false only for a well-formed one whose
 * sampled flag is off. Children follow their parent's decision (the default `parentbased_*`
 * samplers), so no span is even started under an unsampled parent: that is what keeps the cost
 * of tracing low when only some traces are sampled.
 */
export function sampledParent(traceparent: string | undefined): boolean {
  // Call contexts only ever hold well-formed values (the edges replace any other): the sampled
  // bit is the low bit of the last hex digit. Anything else is left to the sampler.
  if (traceparent?.length !== 55) return true;
  const digit = traceparent.charCodeAt(54);
  return ((digit <= 57 ? digit - 48 : digit - 87) & 1) === 1;
}

/** A span's attributes, or a function making them only when the span is recorded. */
export type LazyAttributes = Attributes | (() => Attributes);

const attributesOf = (attributes: LazyAttributes): Attributes =>
  typeof attributes === 'function' ? attributes() : attributes;

/**
 * Runs `work` in a span that is a child of the call context's trace, passing it the context
 * continued inside the span; records the outcome. Without tracing, or under a parent that was
 * not sampled, it just runs `work(ctx)`.
 */
export function inSpan<T>(
  name: string,
  ctx: CallContext,
  role: SpanRole,
  attributes: LazyAttributes,
  work: (ctx: CallContext, span: Span | undefined) => Promise<T>,
): Promise<T> {
  const tracer = active.tracer;
  if (!tracer || !sampledParent(ctx.traceparent)) return work(ctx, undefined);
  const span = tracer.startSpan(
    name,
    { kind: KINDS[role], attributes: attributesOf(attributes) },
    parentOf(ctx),
  );
  return runIn(span, () => work(contextIn(ctx, span), span));
}

/**
 * Runs `work` in the root span of a message entering the platform (an HTTP request, a channel
 * update): a child of `incoming` (the request's own `traceparent` header) when there is one,
 * else the first span of a new trace — never a child of the random parent a fresh call context
 * starts with, which no span has. Without tracing it just runs `work(ctx)`.
 */
export function inEdgeSpan<T>(
  name: string,
  ctx: CallContext,
  attributes: LazyAttributes,
  work: (ctx: CallContext) => Promise<T>,
  incoming?: string,
): Promise<T> {
  const tracer = active.tracer;
  if (!tracer) return work(ctx);
  const parent = incoming ? parentOf({ traceparent: incoming }) : ROOT_CONTEXT;
  const span = tracer.startSpan(
    name,
    { kind: SpanKind.SERVER, attributes: attributesOf(attributes) },
    parent,
  );
  return runIn(span, () => work(contextIn(ctx, span)));
}

/**
 * Runs an event consumer's `work` in a span whose parent is the event's `traceparent` (the span
 * of the turn that published it), so asynchronous work joins the message's trace.
 */
export function inEventSpan<T>(
  name: string,
  traceparent: string | undefined,
  attributes: LazyAttributes,
  work: () => Promise<T> | T,
): Promise<T> | T {
  const tracer = active.tracer;
  if (!tracer || !sampledParent(traceparent)) return work();
  const parent = traceparent ? parentOf({ traceparent }) : ROOT_CONTEXT;
  const span = tracer.startSpan(
    name,
    { kind: SpanKind.CONSUMER, attributes: attributesOf(attributes) },
    parent,
  );
  return runIn(span, work);
}

/** The span id a `traceparent` names (the span its holder works in), or `undefined` when malformed. */
export function spanIdOf(traceparent: string): string | undefined {
  return TRACEPARENT.exec(traceparent)?.[2];
}

/**
 * Ends `span` once `work` settles; a failure sets the error status and code (success leaves the
 * status unset, as OpenTelemetry asks of instrumentation).
 */
async function runIn<T>(span: Span, work: () => Promise<T> | T): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const error = ClawmeshError.from(err);
    span.setAttribute('clawmesh.error.code', error.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    throw err;
  } finally {
    span.end();
  }
}
