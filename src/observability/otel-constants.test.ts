import { SamplingDecision, SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { SAMPLING_DECISION, SPAN_KIND, SPAN_STATUS, TRACE_FLAGS } from './otel-constants.ts';

describe('the OpenTelemetry constants', () => {
  it('hold the API enums’ own values', () => {
    expect(SPAN_KIND).toEqual({
      INTERNAL: SpanKind.INTERNAL,
      SERVER: SpanKind.SERVER,
      CLIENT: SpanKind.CLIENT,
      PRODUCER: SpanKind.PRODUCER,
      CONSUMER: SpanKind.CONSUMER,
    });
    expect(SPAN_STATUS).toEqual({
      UNSET: SpanStatusCode.UNSET,
      OK: SpanStatusCode.OK,
      ERROR: SpanStatusCode.ERROR,
    });
    expect(TRACE_FLAGS).toEqual({ NONE: TraceFlags.NONE, SAMPLED: TraceFlags.SAMPLED });
    expect(SAMPLING_DECISION).toEqual({
      NOT_RECORD: SamplingDecision.NOT_RECORD,
      RECORD: SamplingDecision.RECORD,
      RECORD_AND_SAMPLED: SamplingDecision.RECORD_AND_SAMPLED,
    });
  });
});
