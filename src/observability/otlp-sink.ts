import type { Attributes } from '@opentelemetry/api';
import { encodeRequest, type PackedSpans } from './otlp-json.ts';

/** Where packed spans go: OpenTelemetry's OTLP/HTTP export, in this thread or the export worker. */
export interface SpanSink {
  /** Sends one batch; resolves true when the endpoint took it. Never rejects. */
  export(batch: PackedSpans): Promise<boolean>;
  shutdown(): Promise<void>;
}

/** What an OTLP sink needs: the traces URL and the resource attributes of every span. */
export interface OtlpSinkOptions {
  url: string;
  resource: Attributes;
}

/**
 * An OTLP/HTTP JSON sink on OpenTelemetry's export delegate (`@opentelemetry/otlp-exporter-base`,
 * the transport of the official OTLP exporters): its retries with backoff, timeout, keep-alive,
 * compression and headers from the standard `OTEL_EXPORTER_OTLP_*` variables. Only the encoding
 * is Clawmesh's ({@link encodeRequest}).
 */
export async function createOtlpSink(options: OtlpSinkOptions): Promise<SpanSink> {
  const [{ OTLPExporterBase }, { convertLegacyHttpOptions, createOtlpHttpExportDelegate }] =
    await Promise.all([
      import('@opentelemetry/otlp-exporter-base'),
      import('@opentelemetry/otlp-exporter-base/node-http'),
    ]);
  const serializer = {
    serializeRequest: (batch: PackedSpans) => encodeRequest(options.resource, batch.data),
    deserializeResponse: (data: Uint8Array): unknown => {
      try {
        return data.length === 0 ? {} : JSON.parse(Buffer.from(data).toString('utf8'));
      } catch {
        return {};
      }
    },
  };
  const exporter = new OTLPExporterBase<PackedSpans>(
    createOtlpHttpExportDelegate(
      // The same configuration the official OTLP trace exporter builds: URL, then the
      // OTEL_EXPORTER_OTLP_(TRACES_)* variables.
      convertLegacyHttpOptions({ url: options.url }, 'TRACES', 'v1/traces', {
        'Content-Type': 'application/json',
      }),
      serializer,
      'otlp_http_span_exporter',
      { name: 'span', countItems: (batch: PackedSpans) => batch.count },
      undefined,
    ),
  );
  return {
    export: (batch) =>
      new Promise<boolean>((resolve) => {
        try {
          exporter.export(batch, (result) => resolve(result.code === 0));
        } catch {
          resolve(false);
        }
      }),
    shutdown: () => exporter.shutdown(),
  };
}
