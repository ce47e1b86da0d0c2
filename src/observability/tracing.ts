import type { Attributes, Span, SpanKind } from '@opentelemetry/api';
import { type CallContext, isTraceparent, withContext } from '../core/context.ts';
import { ClawmeshError } from '../core/errors.ts';
import { randomHex } from '../core/ids.ts';
import { SPAN_KIND, SPAN_STATUS, TRACE_FLAGS } from './otel-constants.ts';
import type { OtlpProtocol } from './otlp-sink.ts';
import { RecordingSpan, type SpanParent } from './recording-span.ts';
import type { EdgeDecision } from './sampler.ts';
import type { SpanExport } from './span-export.ts';
import type { FixedAttributes } from './span-record.ts';

/** The parent of a span to start: its trace, and the parent span (`spanId` empty for a new trace's root). */
export type ParentSpan = SpanParent & { traceId: string };

/** Starts the spans of this process; `undefined` when tracing is off. */
export interface SpanStarter {
  /** `fixed`: attributes every span of its kind has, listed before `attributes`. */
  startSpan(
    name: string,
    kind: SpanKind,
    attributes: Attributes,
    parent: ParentSpan,
    fixed?: FixedAttributes,
  ): RecordingSpan;
}

/** What a process traces with; `enabled` is false (and every helper a no-op) without an exporter. */
export interface Tracing {
  readonly enabled: boolean;
  readonly tracer: SpanStarter | undefined;
  /** Where spans go and in which encoding, when tracing is on. */
  readonly export?: { url: string; protocol: OtlpProtocol };
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
  /** The URL spans are posted to, as given (`tracingEnv().url`); tracing is off without one. */
  url?: string | undefined;
  /** Resource attributes from the environment (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SERVICE_NAME`): they win over Clawmesh's. */
  resource?: Attributes;
  /** How long spans are batched before export, in milliseconds (default 500). */
  flushDelayMs?: number;
  /** Told once when a sampler variable is invalid and the default is used. */
  warn?: (message: string) => void;
  /** Told when exports start failing (why) and when they work again (`undefined`). */
  onExportState?: (failure: string | undefined) => void;
}

let active: Tracing = DISABLED;
/** Decides for the spans that start a trace or continue a caller's (the edges). */
let decideEdge: EdgeDecision | undefined;

/** The tracing of this process (disabled until {@link initTracing} starts it). */
export function tracing(): Tracing {
  return active;
}

/**
 * Starts exporting spans over OTLP/HTTP when an endpoint is set; otherwise tracing stays off and
 * costs nothing. The sampler follows `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG`, the
 * encoding `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` (`http/protobuf` by default, or `http/json`).
 *
 * Spans are OpenTelemetry API spans recorded by a lean recorder ({@link RecordingSpan}); an
 * export worker encodes them as OTLP and sends them over OpenTelemetry's OTLP/HTTP export
 * delegate (`span-export.ts`): the SDK's per-span pipeline cost about 11 µs a span on
 * the turn path, which made tracing every turn 20 % slower.
 */
export async function initTracing(options: TracingOptions): Promise<Tracing> {
  const url = options.url;
  if (!url) return DISABLED;
  if (active.enabled) return active;
  const [{ createSpanExport }, { samplerChoiceFromEnv, edgeDecisionOf }, { otlpProtocolFromEnv }] =
    await Promise.all([import('./span-export.ts'), import('./sampler.ts'), import('./otlp-sink.ts')]);
  const choice = samplerChoiceFromEnv();
  if (choice.warning) options.warn?.(choice.warning);
  const { protocol, warning } = otlpProtocolFromEnv();
  if (warning) options.warn?.(warning);
  decideEdge = await edgeDecisionOf(choice);
  const spans: SpanExport = await createSpanExport({
    url,
    resource: {
      'service.name': options.serviceName,
      'service.instance.id': options.instanceId,
      'service.namespace': 'clawmesh',
      ...options.resource,
    },
    protocol,
    flushDelayMs: options.flushDelayMs ?? 500,
    ...(options.onExportState ? { onExportState: options.onExportState } : {}),
  });
  const tracer: SpanStarter = {
    startSpan: (name, kind, attributes, parent, fixed) =>
      new RecordingSpan(
        name,
        kind,
        parent.traceId,
        randomHex(8),
        TRACE_FLAGS.SAMPLED,
        parent.spanId ? parent : undefined,
        attributes,
        fixed,
        spans.record,
      ),
  };
  active = {
    enabled: true,
    tracer,
    export: { url, protocol },
    flush: () => spans.flush(),
    async shutdown() {
      active = DISABLED;
      decideEdge = undefined;
      await spans.shutdown();
    },
  };
  return active;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The span a `traceparent` names, as the parent of a span of this process; `undefined` when malformed. */
function parentIn(traceparent: string): (ParentSpan & { sampled: boolean }) | undefined {
  if (!isTraceparent(traceparent)) return undefined;
  return {
    traceId: traceparent.slice(3, 35),
    spanId: traceparent.slice(36, 52),
    // Call contexts cross processes: their parent is treated as remote, as OTel propagation does.
    isRemote: true,
    sampled: sampledParent(traceparent),
  };
}

/**
 * The span a call context's `traceparent` names. Call contexts only ever hold well-formed values
 * (the edges and the transports check what comes in and replace anything else), so this only
 * slices; a span under it is a child across a hop, as OTel propagation treats it.
 */
function contextParent(traceparent: string): ParentSpan {
  if (traceparent.length !== 55) return newTrace();
  return { traceId: traceparent.slice(3, 35), spanId: traceparent.slice(36, 52), isRemote: true };
}

/** A new trace: no parent span, a fresh trace id. */
const newTrace = (): ParentSpan => ({
  traceId: randomHex(16),
  spanId: '',
  isRemote: false,
});

/** The call context continued inside `span`: its `traceparent` names the span. */
export function contextIn(ctx: CallContext, span: Span): CallContext {
  const { traceId, spanId, traceFlags } = span instanceof RecordingSpan ? span : span.spanContext();
  // withContext, not a spread: contexts come in many shapes, and a spread of them is V8's slow path.
  return withContext(ctx, { traceparent: `00-${traceId}-${spanId}-${traceFlags === 1 ? '01' : '00'}` });
}

/** The kinds of span Clawmesh makes. */
export type SpanRole = 'client' | 'server' | 'internal' | 'producer' | 'consumer';
const KINDS: Record<SpanRole, SpanKind> = {
  client: SPAN_KIND.CLIENT,
  server: SPAN_KIND.SERVER,
  internal: SPAN_KIND.INTERNAL,
  producer: SPAN_KIND.PRODUCER,
  consumer: SPAN_KIND.CONSUMER,
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

/** No attributes of a span's own (all of them fixed): a fresh empty object each time it is recorded. */
export const NO_ATTRIBUTES: LazyAttributes = () => ({});

const attributesOf = (attributes: LazyAttributes): Attributes =>
  typeof attributes === 'function' ? attributes() : { ...attributes };

/**
 * Runs `work` in a span that is a child of the call context's trace, passing it the context
 * continued inside the span; records the outcome. Without tracing, or under a parent that was
 * not sampled, it just runs `work(ctx)`. `attributes`: the span's own, an object it keeps (pass
 * a fresh one) or a function making them only when the span is recorded. `fixed`: attributes
 * every span of its kind has ({@link fixedAttributes}), before `attributes`.
 */
export function inSpan<T>(
  name: string,
  ctx: CallContext,
  role: SpanRole,
  attributes: LazyAttributes,
  work: (ctx: CallContext, span: Span | undefined) => Promise<T>,
  fixed?: FixedAttributes,
): Promise<T> {
  const tracer = active.tracer;
  if (!tracer || !sampledParent(ctx.traceparent)) return work(ctx, undefined);
  const span = tracer.startSpan(
    name,
    KINDS[role],
    typeof attributes === 'function' ? attributes() : attributes,
    contextParent(ctx.traceparent),
    fixed,
  );
  return runIn(span, () => work(contextIn(ctx, span), span));
}

/**
 * Runs `work` in the root span of a message entering the platform (an HTTP request, a channel
 * update): a child of `incoming` (the request's own `traceparent` header) when there is one,
 * else the first span of a new trace — never a child of the random parent a fresh call context
 * starts with, which no span has. The sampler decides here; a trace it does not sample goes on
 * with an unsampled `traceparent`, so nothing under it records. Without tracing it just runs
 * `work(ctx)`. `fixed`: attributes every span of its kind has, before `attributes`.
 */
export function inEdgeSpan<T>(
  name: string,
  ctx: CallContext,
  attributes: LazyAttributes,
  work: (ctx: CallContext) => Promise<T>,
  incoming?: string,
  fixed?: FixedAttributes,
): Promise<T> {
  const tracer = active.tracer;
  if (!tracer) return work(ctx);
  const remote = incoming ? parentIn(incoming) : undefined;
  const parent = remote ?? newTrace();
  const recorded = attributesOf(attributes);
  if (decideEdge && !decideEdge(name, remote, parent.traceId, recorded, fixed)) {
    return work(withContext(ctx, { traceparent: `00-${parent.traceId}-${randomHex(8)}-00` }));
  }
  const span = tracer.startSpan(name, SPAN_KIND.SERVER, recorded, parent, fixed);
  const http =
    'http.request.method' in recorded || (fixed !== undefined && 'http.request.method' in fixed.attributes);
  return runIn(span, () => work(contextIn(ctx, span)), http);
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
  const parent = (traceparent ? parentIn(traceparent) : undefined) ?? newTrace();
  const span = tracer.startSpan(name, SPAN_KIND.CONSUMER, attributesOf(attributes), parent);
  return runIn(span, work);
}

/** The span id a `traceparent` names (the span its holder works in), or `undefined` when malformed. */
export function spanIdOf(traceparent: string): string | undefined {
  return TRACEPARENT.exec(traceparent)?.[2];
}

/**
 * Records a failure on a span: its code, and the status `ERROR` with the message. An HTTP server
 * span (`http`) also gets `http.response.status_code`, and keeps its status unset for a 4xx
 * answer: the client's mistake, not the server's, as OpenTelemetry's HTTP conventions ask of
 * server spans (backends count spans with status `ERROR` as server errors).
 */
function failed(span: Span, err: unknown, http: boolean): void {
  const error = ClawmeshError.from(err);
  span.setAttribute('clawmesh.error.code', error.code);
  if (http) {
    const sent = sentStatusOf(err);
    span.setAttribute('http.response.status_code', sent ?? error.httpStatus);
    if (sent === undefined && error.httpStatus < 500) return;
  }
  span.setStatus({ code: SPAN_STATUS.ERROR, message: error.message });
}

/** The status an HTTP response had already been sent with when it failed (see {@link afterHeaders}). */
const SENT_STATUS = Symbol('clawmesh.sentStatus');

function sentStatusOf(err: unknown): number | undefined {
  const sent = (err as { [SENT_STATUS]?: unknown } | null)?.[SENT_STATUS];
  return typeof sent === 'number' ? sent : undefined;
}

/**
 * Marks a failure that came after the response's headers went out (a stream that broke after its
 * 200): the HTTP server span records the status the client got, with the error as its status.
 */
export function afterHeaders<E>(err: E, status: number): E {
  if (typeof err === 'object' && err !== null) Object.defineProperty(err, SENT_STATUS, { value: status });
  return err;
}

/**
 * Ends `span` once `work` settles; a failure sets the error status and code (success leaves the
 * status unset, as OpenTelemetry asks of instrumentation). `http`: an HTTP server span, which
 * answers 200 on success.
 */
function runIn<T>(span: Span, work: () => Promise<T> | T, http = false): Promise<T> {
  let result: Promise<T> | T;
  try {
    result = work();
  } catch (err) {
    failed(span, err, http);
    span.end();
    return Promise.reject(err);
  }
  return Promise.resolve(result).then(
    (value) => {
      if (http) span.setAttribute('http.response.status_code', 200);
      span.end();
      return value;
    },
    (err: unknown) => {
      failed(span, err, http);
      span.end();
      throw err;
    },
  );
}
