import type { Sampler } from '@opentelemetry/sdk-trace-base';

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
