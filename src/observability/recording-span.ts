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
import type { FixedAttributes, SpanRecord, SpanRecordEvent } from './span-record.ts';

/** When the process's monotonic clock started, in epoch milliseconds (a getter: read once). */
const TIME_ORIGIN = performance.timeOrigin;

/** Epoch milliseconds now, with a fraction (the monotonic clock from the process's time origin). */
const nowMs = (): number => TIME_ORIGIN + performance.now();

/** A `TimeInput` of the OpenTelemetry API as epoch milliseconds. */
function epochMsOf(time: TimeInput | undefined): number {
  if (time === undefined) return nowMs();
  if (typeof time === 'number') {
    // The API takes epoch or performance-relative milliseconds alike.
    return time < TIME_ORIGIN ? TIME_ORIGIN + time : time;
  }
  if (time instanceof Date) return time.getTime();
  return time[0] * 1000 + time[1] / 1e6;
}

/** Where a parent span lives, for a recording span's `parentSpanId`. */
export interface SpanParent {
  spanId: string;
  isRemote: boolean;
}

const UNSET_STATUS: SpanStatus = Object.freeze({ code: SPAN_STATUS.UNSET });
const NO_EVENTS: readonly SpanRecordEvent[] = Object.freeze([]);

/**
 * A span that is its own {@link SpanRecord}, handed to `onEnd` when it ends, and nothing more:
 * the OpenTelemetry API's `Span`, without the SDK's per-span machinery (attribute sanitizing on
 * every call, span limits, processors, metrics about spans). Attributes are kept as given;
 * callers pass fresh objects of primitive values. The exporter encodes the record as `onEnd`
 * is called and keeps nothing of it.
 */
export class RecordingSpan implements Span, SpanRecord {
  private ended = false;
  private context: SpanContext | undefined;
  readonly startMs = nowMs();
  endMs = 0;
  status: SpanStatus = UNSET_STATUS;
  events: readonly SpanRecordEvent[] = NO_EVENTS;
  late: (string | AttributeValue)[] | undefined;
  readonly parentSpanId: string | undefined;
  readonly parentIsRemote: boolean | undefined;

  /**
   * @param fixed attributes every span of its kind has (listed first); `attributes` are this
   *   span's own, in an object it may keep.
   */
  constructor(
    public name: string,
    readonly kind: SpanKind,
    readonly traceId: string,
    readonly spanId: string,
    readonly traceFlags: number,
    parent: SpanParent | undefined,
    public attributes: Attributes,
    public fixed: FixedAttributes | undefined,
    private readonly onEnd: (record: SpanRecord) => void,
  ) {
    if (parent) {
      this.parentSpanId = parent.spanId;
      if (parent.isRemote) this.parentIsRemote = true;
    }
  }

  spanContext(): SpanContext {
    this.context ??= { traceId: this.traceId, spanId: this.spanId, traceFlags: this.traceFlags };
    return this.context;
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (this.ended || value === undefined || value === null) return this;
    if (this.fixed && key in this.fixed.attributes) {
      // A fixed value replaced: this span's attributes become a copy of them all.
      this.attributes = { ...this.fixed.attributes, ...this.attributes };
      this.fixed = undefined;
    }
    if (key in this.attributes) {
      this.attributes[key] = value;
      return this;
    }
    // A new key goes to a list, not onto the object: adding properties to objects of many
    // shapes with keys known only here is the slow path of V8's stores.
    const late = this.late;
    if (!late) {
      this.late = [key, value];
      return this;
    }
    for (let i = 0; i < late.length; i += 2) {
      if (late[i] === key) {
        late[i + 1] = value;
        return this;
      }
    }
    late.push(key, value);
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
    if (this.events === NO_EVENTS) this.events = [event];
    else (this.events as SpanRecordEvent[]).push(event);
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
    this.endMs = Math.max(this.startMs, epochMsOf(endTime));
    this.onEnd(this);
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
