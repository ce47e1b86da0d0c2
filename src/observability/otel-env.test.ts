import { describe, expect, it } from 'vitest';
import { tracingEnv } from './otel-env.ts';

describe('tracingEnv', () => {
  it('prefers the per-signal endpoint, used as given, to the base endpoint with /v1/traces', () => {
    expect(tracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }).url).toBe('http://c:4318/v1/traces');
    expect(
      tracingEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://otlp.example.com/api/traces',
      }),
    ).toMatchObject({
      url: 'https://otlp.example.com/api/traces',
      variable: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
    });
    expect(tracingEnv({}).url).toBeUndefined();
  });

  it('drops a malformed OTEL_RESOURCE_ATTRIBUTES whole, with a warning, and keeps OTEL_SERVICE_NAME', () => {
    const env = tracingEnv({ OTEL_RESOURCE_ATTRIBUTES: 'a=1,broken,b=%ZZ', OTEL_SERVICE_NAME: 'bot' });
    expect(env.resource).toEqual({ 'service.name': 'bot' });
    expect(env.warnings).toEqual([
      'OTEL_RESOURCE_ATTRIBUTES: "broken" is not key=value (values percent-encoded): ignoring the variable',
    ]);
    expect(tracingEnv({ OTEL_RESOURCE_ATTRIBUTES: 'k=a%2Cb' }).resource).toEqual({ k: 'a,b' });
  });

  it('is off with OTEL_SDK_DISABLED=true only, whatever the case', () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    expect(tracingEnv({ ...base, OTEL_SDK_DISABLED: 'True' }).off).toBe('OTEL_SDK_DISABLED=true');
    expect(tracingEnv({ ...base, OTEL_SDK_DISABLED: 'false' }).url).toBe('http://c:4318/v1/traces');
    expect(tracingEnv({ ...base, OTEL_TRACES_EXPORTER: 'otlp' }).warnings).toEqual([]);
  });

  it('refuses an endpoint that is not an http(s) URL, such as one without its scheme', () => {
    const env = tracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'otel-collector:4318' });
    expect(env.url).toBeUndefined();
    expect(env.invalid).toBe(
      'OTEL_EXPORTER_OTLP_ENDPOINT="otel-collector:4318" is not an http(s) URL such as http://otel-collector:4318: tracing is off',
    );
    expect(env.warnings).toEqual([env.invalid]);
    const traces = tracingEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'grpc://u:secret@c:4317' });
    expect(traces.invalid).toMatch(/^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="grpc:\/\/u:\*\*\*@c:4317" is not/);
  });

  it('warns of an OTLP header it cannot send, naming the header and never its value', () => {
    const env = tracingEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_EXPORTER_OTLP_HEADERS: 'Authorization: Bearer sk-secret-1,x-team=a%ZZb,x-ok=fine',
    });
    expect(env.url).toBe('http://c:4318/v1/traces');
    expect(env.warnings).toEqual([
      'OTEL_EXPORTER_OTLP_HEADERS: the header "Authorization" is not sent: it is not key=value (write key=value pairs, values percent-encoded, such as authorization=Bearer%20<token>)',
      'OTEL_EXPORTER_OTLP_HEADERS: the header "x-team" is not sent: its value is not percent-encoded (write key=value pairs, values percent-encoded, such as authorization=Bearer%20<token>)',
    ]);
    expect(env.warnings.join(' ')).not.toContain('sk-secret-1');
    expect(
      tracingEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20t, x-a=1',
      }).warnings,
    ).toEqual([]);
  });
});
