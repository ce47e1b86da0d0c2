import type { Attributes } from '@opentelemetry/api';
import { redactUrl } from '../core/redact-url.ts';

/**
 * What the standard OpenTelemetry variables ask of tracing, as the specification defines them
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/ and the
 * OTLP exporter's): where spans go, whether tracing is switched off, and the resource.
 */
export interface OtelTracingEnv {
  /**
   * The URL spans are posted to: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given, else
   * `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces` added. `undefined` when neither is set or
   * tracing is switched off.
   */
  url?: string;
  /** The variable that named {@link url}. */
  variable?: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' | 'OTEL_EXPORTER_OTLP_ENDPOINT';
  /** Why no spans are exported although an endpoint is set (`OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`). */
  off?: string;
  /**
   * Why the endpoint set cannot be used (it is not an http(s) URL): tracing is off, and this is
   * also among the {@link warnings}.
   */
  invalid?: string;
  /** Resource attributes of `OTEL_RESOURCE_ATTRIBUTES`, then `service.name` of `OTEL_SERVICE_NAME`. */
  resource: Attributes;
  /** Values that were not used, each saying why: to log once. */
  warnings: string[];
}

/** The URL spans are posted to for a base endpoint: its `/v1/traces` (an endpoint already ending in it is used as given). */
export function tracesUrlOf(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, '');
  return base.endsWith('/v1/traces') ? base : `${base}/v1/traces`;
}

/**
 * Reads the tracing variables: `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER`, the OTLP endpoints,
 * `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`.
 *
 * @example
 * tracingEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://otlp.example.com/api/traces' }).url
 * // 'https://otlp.example.com/api/traces' (a per-signal endpoint is used as given)
 */
export function tracingEnv(env: NodeJS.ProcessEnv = process.env): OtelTracingEnv {
  const warnings: string[] = [];
  const resource = resourceFromEnv(env, warnings);
  const specific = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!specific && !base) return { resource, warnings };
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') {
    return { off: 'OTEL_SDK_DISABLED=true', resource, warnings };
  }
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  if (exporters.includes('none')) return { off: 'OTEL_TRACES_EXPORTER=none', resource, warnings };
  const others = exporters.filter((name) => name !== 'otlp');
  if (others.length > 0) {
    warnings.push(
      `OTEL_TRACES_EXPORTER="${env.OTEL_TRACES_EXPORTER}": only otlp is supported (or none): exporting spans over OTLP`,
    );
  }
  const variable = specific ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT';
  const given = (specific || base)!;
  if (!isHttpUrl(given)) {
    // `otel-collector:4318` parses as a URL of the scheme `otel-collector:`: every export would fail.
    const invalid = `${variable}="${redactUrl(given)}" is not an http(s) URL such as http://otel-collector:4318: tracing is off`;
    warnings.push(invalid);
    return { variable, invalid, resource, warnings };
  }
  otlpHeadersFromEnv(env, warnings); // only its warnings: a header the exporter would skip
  return { url: specific ? given : tracesUrlOf(given), variable, resource, warnings };
}

function isHttpUrl(value: string): boolean {
  try {
    const { protocol, hostname } = new URL(value);
    return (protocol === 'http:' || protocol === 'https:') && hostname !== '';
  } catch {
    return false;
  }
}

/**
 * `OTEL_RESOURCE_ATTRIBUTES` (`key=value` pairs, comma-separated, values percent-encoded), then
 * `OTEL_SERVICE_NAME` as `service.name`, which wins. A malformed list is dropped whole, with a
 * warning, as the specification asks.
 */
function resourceFromEnv(env: NodeJS.ProcessEnv, warnings: string[]): Attributes {
  const resource: Attributes = {};
  const raw = env.OTEL_RESOURCE_ATTRIBUTES?.trim();
  if (raw) {
    const parsed: Attributes = {};
    let bad: string | undefined;
    for (const pair of raw.split(',')) {
      if (!pair.trim()) continue;
      const at = pair.indexOf('=');
      const key = at > 0 ? pair.slice(0, at).trim() : '';
      let value: string | undefined;
      try {
        value = at > 0 ? decodeURIComponent(pair.slice(at + 1).trim()) : undefined;
      } catch {
        value = undefined;
      }
      if (!key || value === undefined) {
        bad = pair;
        break;
      }
      parsed[key] = value;
    }
    if (bad === undefined) Object.assign(resource, parsed);
    else
      warnings.push(
        `OTEL_RESOURCE_ATTRIBUTES: "${bad}" is not key=value (values percent-encoded): ignoring the variable`,
      );
  }
  const serviceName = env.OTEL_SERVICE_NAME?.trim();
  if (serviceName) resource['service.name'] = serviceName;
  return resource;
}

/**
 * The headers the OTLP exporter sends: `OTEL_EXPORTER_OTLP_HEADERS`, then
 * `OTEL_EXPORTER_OTLP_TRACES_HEADERS` over it (`key=value` pairs, comma-separated, values
 * percent-encoded), as OpenTelemetry's exporter reads them. A pair it cannot read is skipped,
 * and said in `warnings` when given (naming the header, never its value: it is often a key).
 */
export function otlpHeadersFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  warnings?: string[],
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    for (const pair of (env[name] ?? '').split(',')) {
      if (pair.trim() === '') continue;
      const at = pair.indexOf('=');
      const key = pair.slice(0, at).trim();
      const skipped = (why: string) =>
        warnings?.push(
          `${name}: the header "${headerNameOf(pair)}" is not sent: ${why} (write key=value pairs, values percent-encoded, such as authorization=Bearer%20<token>)`,
        );
      if (at <= 0 || !key) {
        skipped('it is not key=value');
        continue;
      }
      try {
        headers[key.toLowerCase()] = decodeURIComponent(pair.slice(at + 1).trim());
      } catch {
        // As the exporter does: an undecodable value is left out.
        skipped('its value is not percent-encoded');
      }
    }
  }
  return headers;
}

/** What a header pair names, without its value: the text before its first `=`, `:` or space. */
function headerNameOf(pair: string): string {
  const name = pair.trim().split(/[=:\s]/, 1)[0] ?? '';
  return name.length > 40 ? `${name.slice(0, 40)}…` : name;
}
