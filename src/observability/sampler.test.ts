import { randomBytes } from 'node:crypto';
import { type Context, ROOT_CONTEXT, SamplingDecision, SpanKind, trace } from '@opentelemetry/api';
import type { Sampler } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it, vi } from 'vitest';
import {
  edgeDecisionOf,
  SAMPLER_NAMES,
  type SamplerChoice,
  samplerChoiceFromEnv,
  samplerOf,
} from './sampler.ts';

/** A random, valid W3C trace id (32 lowercase hex digits). */
const randomTraceId = (): string => randomBytes(16).toString('hex');
const randomSpanId = (): string => randomBytes(8).toString('hex');

/** The decision of a sampler for a span named `x` in `context`. */
const decide = (sampler: Sampler, context: Context = ROOT_CONTEXT, traceId = randomTraceId()) =>
  sampler.shouldSample(context, traceId, 'x', SpanKind.SERVER, {}, []).decision;

/** A context whose active span is a remote parent, sampled or not. */
const remoteParent = (sampled: boolean): Context =>
  trace.setSpanContext(ROOT_CONTEXT, {
    traceId: randomTraceId(),
    spanId: randomSpanId(),
    traceFlags: sampled ? 1 : 0,
    isRemote: true,
  });

describe('samplerChoiceFromEnv', () => {
  it('defaults to parentbased_always_on at ratio 1, without a warning', () => {
    const choice = samplerChoiceFromEnv({});
    expect(choice).toEqual({ name: 'parentbased_always_on', ratio: 1 });
    expect(choice.warning).toBeUndefined();
    // An empty or blank value is unset too.
    expect(samplerChoiceFromEnv({ OTEL_TRACES_SAMPLER: '' })).toEqual({
      name: 'parentbased_always_on',
      ratio: 1,
    });
    expect(samplerChoiceFromEnv({ OTEL_TRACES_SAMPLER: '   ' })).toEqual({
      name: 'parentbased_always_on',
      ratio: 1,
    });
  });

  it('reads process.env when no env is given', () => {
    vi.stubEnv('OTEL_TRACES_SAMPLER', 'traceidratio');
    vi.stubEnv('OTEL_TRACES_SAMPLER_ARG', '0.5');
    try {
      expect(samplerChoiceFromEnv()).toEqual({ name: 'traceidratio', ratio: 0.5 });
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it.each(SAMPLER_NAMES)('accepts %s, whatever its case and surrounding whitespace', (name) => {
    for (const raw of [name, name.toUpperCase(), `  ${name}\t`, ` ${name.replace(/^a/, 'A')} `]) {
      const choice = samplerChoiceFromEnv({ OTEL_TRACES_SAMPLER: raw });
      expect(choice.name).toBe(name);
      expect(choice.ratio).toBe(1);
      expect(choice.warning).toBeUndefined();
    }
  });

  it('lists exactly the six samplers of the specification', () => {
    expect([...SAMPLER_NAMES].sort()).toEqual([
      'always_off',
      'always_on',
      'parentbased_always_off',
      'parentbased_always_on',
      'parentbased_traceidratio',
      'traceidratio',
    ]);
  });

  it('falls back to parentbased_always_on on an unknown sampler, with a warning naming it', () => {
    const choice = samplerChoiceFromEnv({ OTEL_TRACES_SAMPLER: 'jaeger_remote' });
    expect(choice.name).toBe('parentbased_always_on');
    expect(choice.ratio).toBe(1);
    expect(choice.warning).toContain('OTEL_TRACES_SAMPLER');
    expect(choice.warning).toContain('"jaeger_remote"');
    expect(choice.warning).toContain('parentbased_always_on');

    const typo = samplerChoiceFromEnv({ OTEL_TRACES_SAMPLER: 'always-on' });
    expect(typo.name).toBe('parentbased_always_on');
    expect(typo.warning).toContain('always-on');
  });

  it('ignores OTEL_TRACES_SAMPLER_ARG for samplers that take no ratio', () => {
    for (const name of ['always_on', 'always_off', 'parentbased_always_on', 'parentbased_always_off']) {
      const choice = samplerChoiceFromEnv({ OTEL_TRACES_SAMPLER: name, OTEL_TRACES_SAMPLER_ARG: 'abc' });
      expect(choice).toEqual({ name, ratio: 1 });
    }
    expect(samplerChoiceFromEnv({ OTEL_TRACES_SAMPLER_ARG: '0.5' })).toEqual({
      name: 'parentbased_always_on',
      ratio: 1,
    });
  });

  it.each(['traceidratio', 'parentbased_traceidratio'] as const)(
    '%s reads its ratio from OTEL_TRACES_SAMPLER_ARG, 1 when unset',
    (name) => {
      expect(samplerChoiceFromEnv({ OTEL_TRACES_SAMPLER: name, OTEL_TRACES_SAMPLER_ARG: '0.25' })).toEqual({
        name,
        ratio: 0.25,
      });
      expect(samplerChoiceFromEnv({ OTEL_TRACES_SAMPLER: name, OTEL_TRACES_SAMPLER_ARG: ' 0 ' })).toEqual({
        name,
        ratio: 0,
      });
      expect(samplerChoiceFromEnv({ OTEL_TRACES_SAMPLER: name, OTEL_TRACES_SAMPLER_ARG: '1' })).toEqual({
        name,
        ratio: 1,
      });
      expect(samplerChoiceFromEnv({ OTEL_TRACES_SAMPLER: name })).toEqual({ name, ratio: 1 });
      expect(samplerChoiceFromEnv({ OTEL_TRACES_SAMPLER: name, OTEL_TRACES_SAMPLER_ARG: '' })).toEqual({
        name,
        ratio: 1,
      });
    },
  );

  it.each(['2', '-1', 'abc', 'Infinity', '1.0001'])(
    'gives ratio 1 and a warning for the bad ratio %j',
    (arg) => {
      for (const name of ['traceidratio', 'parentbased_traceidratio'] as const) {
        const choice = samplerChoiceFromEnv({ OTEL_TRACES_SAMPLER: name, OTEL_TRACES_SAMPLER_ARG: arg });
        expect(choice.name).toBe(name);
        expect(choice.ratio).toBe(1);
        expect(choice.warning).toContain('OTEL_TRACES_SAMPLER_ARG');
        expect(choice.warning).toContain(`"${arg}"`);
      }
    },
  );
});

describe('samplerOf', () => {
  const sampler = (name: SamplerChoice['name'], ratio = 1) => samplerOf({ name, ratio });

  it('always_off never records and always_on always samples', async () => {
    const off = await sampler('always_off');
    const on = await sampler('always_on');
    for (let i = 0; i < 5; i++) {
      expect(decide(off)).toBe(SamplingDecision.NOT_RECORD);
      expect(decide(on)).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    }
  });

  it('always_on and always_off ignore the parent', async () => {
    expect(decide(await sampler('always_off'), remoteParent(true))).toBe(SamplingDecision.NOT_RECORD);
    expect(decide(await sampler('always_on'), remoteParent(false))).toBe(SamplingDecision.RECORD_AND_SAMPLED);
  });

  it('traceidratio 0 never samples and traceidratio 1 always does', async () => {
    const never = await sampler('traceidratio', 0);
    const always = await sampler('traceidratio', 1);
    for (let i = 0; i < 20; i++) {
      const traceId = randomTraceId();
      expect(decide(never, ROOT_CONTEXT, traceId)).toBe(SamplingDecision.NOT_RECORD);
      expect(decide(always, ROOT_CONTEXT, traceId)).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    }
    // The extremes of the trace id space too.
    expect(decide(always, ROOT_CONTEXT, 'f'.repeat(32))).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    expect(decide(never, ROOT_CONTEXT, `${'0'.repeat(31)}1`)).toBe(SamplingDecision.NOT_RECORD);
  });

  it('traceidratio decides by the trace id: the same id, the same decision', async () => {
    const half = await sampler('traceidratio', 0.5);
    const decisions = new Set<SamplingDecision>();
    for (let i = 0; i < 200; i++) {
      const traceId = randomTraceId();
      const first = decide(half, ROOT_CONTEXT, traceId);
      expect(decide(half, ROOT_CONTEXT, traceId)).toBe(first);
      decisions.add(first);
    }
    // 200 random ids at one half: both decisions (the odds of one only are 2^-199).
    expect(decisions).toEqual(new Set([SamplingDecision.NOT_RECORD, SamplingDecision.RECORD_AND_SAMPLED]));
  });

  it('parentbased_always_off samples under a sampled remote parent, and not at a root', async () => {
    const parentBased = await sampler('parentbased_always_off');
    expect(decide(parentBased, remoteParent(true))).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    expect(decide(parentBased, ROOT_CONTEXT)).toBe(SamplingDecision.NOT_RECORD);
    expect(decide(parentBased, remoteParent(false))).toBe(SamplingDecision.NOT_RECORD);
  });

  it('parentbased_always_on samples at a root and follows an unsampled remote parent', async () => {
    const parentBased = await sampler('parentbased_always_on');
    expect(decide(parentBased, ROOT_CONTEXT)).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    expect(decide(parentBased, remoteParent(true))).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    expect(decide(parentBased, remoteParent(false))).toBe(SamplingDecision.NOT_RECORD);
  });

  it('parentbased_traceidratio uses the ratio only at a root', async () => {
    const parentBased = await sampler('parentbased_traceidratio', 0);
    expect(decide(parentBased, ROOT_CONTEXT)).toBe(SamplingDecision.NOT_RECORD);
    expect(decide(parentBased, remoteParent(true))).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    const full = await sampler('parentbased_traceidratio', 1);
    expect(decide(full, ROOT_CONTEXT)).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    expect(decide(full, remoteParent(false))).toBe(SamplingDecision.NOT_RECORD);
  });

  it('builds the sampler the choice names', async () => {
    expect((await sampler('always_on')).toString()).toBe('AlwaysOnSampler');
    expect((await sampler('always_off')).toString()).toBe('AlwaysOffSampler');
    expect((await sampler('traceidratio', 0.25)).toString()).toBe('TraceIdRatioBased{0.25}');
    expect((await sampler('parentbased_always_on')).toString()).toMatch(
      /^ParentBased\{root=AlwaysOnSampler,/,
    );
    expect((await sampler('parentbased_always_off')).toString()).toMatch(
      /^ParentBased\{root=AlwaysOffSampler,/,
    );
    expect((await sampler('parentbased_traceidratio', 0.25)).toString()).toMatch(
      /^ParentBased\{root=TraceIdRatioBased\{0\.25\},/,
    );
  });

  it('turns what the env chose into a working sampler', async () => {
    const choice = samplerChoiceFromEnv({
      OTEL_TRACES_SAMPLER: 'TraceIdRatio',
      OTEL_TRACES_SAMPLER_ARG: '0',
    });
    const fromEnv = await samplerOf(choice);
    expect(decide(fromEnv)).toBe(SamplingDecision.NOT_RECORD);
  });
});

describe('edgeDecisionOf', () => {
  it("decides as the SDK's sampler does for every sampler: a new trace, a sampled caller, an unsampled one", async () => {
    const cases = [
      ['new trace', undefined],
      ['sampled caller', { spanId: randomSpanId(), sampled: true }],
      ['unsampled caller', { spanId: randomSpanId(), sampled: false }],
    ] as const;
    for (const name of SAMPLER_NAMES) {
      for (const ratio of name.endsWith('traceidratio') ? [0, 1] : [1]) {
        const choice = { name, ratio };
        const edge = await edgeDecisionOf(choice);
        const sdk = await samplerOf(choice);
        for (const [what, parent] of cases) {
          const traceId = randomTraceId();
          const context = parent
            ? trace.setSpanContext(ROOT_CONTEXT, {
                traceId,
                spanId: parent.spanId,
                traceFlags: parent.sampled ? 1 : 0,
                isRemote: true,
              })
            : ROOT_CONTEXT;
          expect(edge('x', parent, traceId, {}, undefined), `${name} ${ratio}, ${what}`).toBe(
            decide(sdk, context, traceId) === SamplingDecision.RECORD_AND_SAMPLED,
          );
        }
      }
    }
  });
});
