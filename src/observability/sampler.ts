import type { Attributes, SpanContext } from '@opentelemetry/api';
import type { Sampler } from '@opentelemetry/sdk-trace-base';
import { SAMPLING_DECISION, SPAN_KIND, TRACE_FLAGS } from './otel-constants.ts';
import type { FixedAttributes } from './span-record.ts';

/** The samplers of `OTEL_TRACES_SAMPLER` that Clawmesh understands (the specification's built-in ones). */
export const SAMPLER_NAMES = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;

/** The sampler's settings from the standard variables, checked. */
export interface SamplerChoice {
  name: (typeof SAMPLER_NAMES)[number];
  ratio: number;
  /** Why a value was not used, to log once. */
  warning?: string;
}

/**
 * Reads `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` as the OpenTelemetry specification
 * defines them: `parentbased_always_on` by default; a ratio in [0, 1] (default 1). An unknown
 * sampler or a bad ratio falls back to the default, with a warning.
 */
export function samplerChoiceFromEnv(env: NodeJS.ProcessEnv = process.env): SamplerChoice {
  const raw = env.OTEL_TRACES_SAMPLER?.trim().toLowerCase();
  const choice: SamplerChoice = { name: 'parentbased_always_on', ratio: 1 };
  if (raw) {
    if ((SAMPLER_NAMES as readonly string[]).includes(raw)) choice.name = raw as SamplerChoice['name'];
    else
      choice.warning = `OTEL_TRACES_SAMPLER="${raw}" is not one of ${SAMPLER_NAMES.join(', ')}: using parentbased_always_on`;
  }
  if (choice.name.endsWith('traceidratio')) {
    const arg = env.OTEL_TRACES_SAMPLER_ARG?.trim();
    const ratio = arg ? Number(arg) : 1;
    if (Number.isFinite(ratio) && ratio >= 0 && ratio <= 1) choice.ratio = ratio;
    else choice.warning = `OTEL_TRACES_SAMPLER_ARG="${arg}" is not a ratio between 0 and 1: using 1`;
  }
  return choice;
}

/** The SDK's sampler for a choice: it decides for the spans that start a trace or continue a remote one. */
export async function samplerOf(choice: SamplerChoice): Promise<Sampler> {
  const { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, TraceIdRatioBasedSampler } = await import(
    '@opentelemetry/sdk-trace-base'
  );
  const root =
    choice.name === 'always_on' || choice.name === 'parentbased_always_on'
      ? new AlwaysOnSampler()
      : choice.name === 'always_off' || choice.name === 'parentbased_always_off'
        ? new AlwaysOffSampler()
        : new TraceIdRatioBasedSampler(choice.ratio);
  return choice.name.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root;
}

/** The caller's span an edge continues: its id, and whether the caller sampled the trace. */
export interface EdgeParent {
  readonly spanId: string;
  readonly sampled: boolean;
}

/**
 * Whether the span that starts this process's part of a trace (an edge) is recorded: `parent` is
 * the caller's span, if any; `own` and `fixed` are the span's attributes.
 */
export type EdgeDecision = (
  name: string,
  parent: EdgeParent | undefined,
  traceId: string,
  own: Attributes,
  fixed: FixedAttributes | undefined,
) => boolean;

/**
 * The edge decision of a choice, made once at start-up. The default samplers need no call into
 * the SDK's: `parentbased_always_on` samples every new trace and a caller's as the caller decided
 * (what ParentBasedSampler over AlwaysOnSampler answers), `always_on` samples every trace. The
 * others ask the SDK's sampler, which needs the OpenTelemetry API's context.
 */
export async function edgeDecisionOf(choice: SamplerChoice): Promise<EdgeDecision> {
  if (choice.name === 'parentbased_always_on') return (_name, parent) => (parent ? parent.sampled : true);
  if (choice.name === 'always_on') return () => true;
  const [sampler, otel] = await Promise.all([samplerOf(choice), import('@opentelemetry/api')]);
  return (name, parent, traceId, own, fixed) => {
    const context = parent
      ? otel.trace.setSpanContext(otel.ROOT_CONTEXT, {
          traceId,
          spanId: parent.spanId,
          traceFlags: parent.sampled ? TRACE_FLAGS.SAMPLED : TRACE_FLAGS.NONE,
          isRemote: true,
        } satisfies SpanContext)
      : otel.ROOT_CONTEXT;
    const attributes = fixed ? { ...fixed.attributes, ...own } : own;
    const { decision } = sampler.shouldSample(context, traceId, name, SPAN_KIND.SERVER, attributes, []);
    return decision === SAMPLING_DECISION.RECORD_AND_SAMPLED;
  };
}
