import type {
  Attributes,
  AttributeValue,
  Exception,
  Link,
  Span,
  SpanContext,
  SpanKind,
  SpanStatus,
  TimeInput,
} from '@opentelemetry/api';
import { SPAN_STATUS } from './otel-constants.ts';
import type { SpanRecord, SpanRecordEvent } from './span-record.ts';

/** Epoch milliseconds now, with a fraction (the monotonic clock from the process's time origin). */
const nowMs = (): number => performance.timeOrigin + performance.now();

/** A `TimeInput` of the OpenTelemetry API as epoch milliseconds. */
function epochMsOf(time: TimeInput | undefined): number {
  if (time === undefined) return nowMs();
  if (typeof time === 'number') {
    // The API takes epoch or performance-relative milliseconds alike.
    return time < performance.timeOrigin ? performance.timeOrigin + time : time;
  }
  if (time instanceof Date) return time.getTime();
  return time[0] * 1000 + time[1] / 1e6;
}

/** Where a parent span lives, for a recording span's `parentSpanId`. */
export interface SpanParent {
  spanId: string;
  isRemote: boolean;
}

/**
 * A span that records itself as a {@link SpanRecord} when it ends, and nothing more: the
 * OpenTelemetry API's `Span`, without the SDK's per-span machinery (attribute sanitizing on
 * every call, span limits, processors, metrics about spans). Attributes are kept as given;
 * callers pass fresh objects of primitive values.
 */
export class RecordingSpan implements Span {
  private ended = false;
  private readonly startMs = nowMs();
  private status: SpanStatus = { code: SPAN_STATUS.UNSET };
  private events: SpanRecordEvent[] | undefined;

  constructor(
    private name: string,
    private readonly kind: SpanKind,
    private readonly context: SpanContext,
    private readonly parent: SpanParent | undefined,
    private readonly attributes: Attributes,
    private readonly onEnd: (record: SpanRecord) => void,
  ) {}

  spanContext(): SpanContext {
    return this.context;
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (!this.ended && value !== undefined && value !== null) this.attributes[key] = value;
    return this;
  }

  setAttributes(attributes: Attributes): this {
    for (const [key, value] of Object.entries(attributes))
      if (value !== undefined) this.setAttribute(key, value);
    return this;
  }

  addEvent(name: string, attributesOrTime?: Attributes | TimeInput, time?: TimeInput): this {
    if (this.ended) return this;
    const isTime =
      typeof attributesOrTime === 'number' ||
      attributesOrTime instanceof Date ||
      Array.isArray(attributesOrTime);
    const event: SpanRecordEvent = {
      name,
      timeMs: epochMsOf(isTime ? (attributesOrTime as TimeInput) : time),
    };
    if (attributesOrTime && !isTime) event.attributes = { ...(attributesOrTime as Attributes) };
    if (this.events) this.events.push(event);
    else this.events = [event];
    return this;
  }

  /** Links are not recorded: Clawmesh makes none (a span's trace is its parent's). */
  addLink(_link: Link): this {
    return this;
  }

  addLinks(_links: Link[]): this {
    return this;
  }

  setStatus(status: SpanStatus): this {
    // OK is final; UNSET never replaces a status (the API's rules).
    if (!this.ended && this.status.code !== SPAN_STATUS.OK && status.code !== SPAN_STATUS.UNSET)
      this.status = { ...status };
    return this;
  }

  updateName(name: string): this {
    if (!this.ended) this.name = name;
    return this;
  }

  end(endTime?: TimeInput): void {
    if (this.ended) return;
    this.ended = true;
    const record: SpanRecord = {
      name: this.name,
      kind: this.kind,
      traceId: this.context.traceId,
      spanId: this.context.spanId,
      traceFlags: this.context.traceFlags,
      startMs: this.startMs,
      endMs: Math.max(this.startMs, epochMsOf(endTime)),
      attributes: this.attributes,
      status: this.status,
      events: this.events ?? [],
    };
    if (this.parent) {
      record.parentSpanId = this.parent.spanId;
      if (this.parent.isRemote) record.parentIsRemote = true;
    }
    this.onEnd(record);
  }

  isRecording(): boolean {
    return !this.ended;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: Attributes = {};
    if (typeof exception === 'string') attributes['exception.message'] = exception;
    else {
      if (exception.name) attributes['exception.type'] = exception.name;
      else if (exception.code !== undefined) attributes['exception.type'] = String(exception.code);
      if (exception.message) attributes['exception.message'] = exception.message;
      if (exception.stack) attributes['exception.stacktrace'] = exception.stack;
    }
    this.addEvent('exception', attributes, time);
  }
}
