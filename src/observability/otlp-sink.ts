import type { Attributes } from '@opentelemetry/api';
import { encodeJsonRequest } from './otlp-json.ts';
import type { PackedSpans } from './otlp-packed.ts';
import { type EncodedSpans, encodeProtoEnvelope } from './otlp-proto.ts';

/**
 * A batch of finished spans: encoded as protobuf as they ended (`http/protobuf`), or packed as
 * primitives for the JSON encoding (`http/json`).
 */
export type SpanBatch = EncodedSpans | PackedSpans;

/** Where packed spans go: OpenTelemetry's OTLP/HTTP export, in this thread or the export worker. */
export interface SpanSink {
  /** Sends one batch; resolves `undefined` when the endpoint took it, else why not. Never rejects. */
  export(batch: SpanBatch): Promise<string | undefined>;
  shutdown(): Promise<void>;
}

/** The OTLP/HTTP encodings, by their `OTEL_EXPORTER_OTLP_PROTOCOL` names. */
export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** What an OTLP sink needs: the traces URL, the resource attributes of every span, the encoding. */
export interface OtlpSinkOptions {
  url: string;
  resource: Attributes;
  protocol: OtlpProtocol;
}

/** The content type of each encoding, as the sink sends it (and `clawmesh doctor` probes with). */
export const OTLP_CONTENT_TYPES = {
  'http/protobuf': 'application/x-protobuf',
  'http/json': 'application/json',
} as const satisfies Record<OtlpProtocol, string>;

/** The request of a batch: its encoded spans in their envelope, or its packed spans as JSON. */
function serializeBatch(resource: Attributes, batch: SpanBatch): Uint8Array {
  return 'bytes' in batch
    ? encodeProtoEnvelope(resource, batch.bytes)
    : encodeJsonRequest(resource, batch.data, batch.count);
}

/**
 * An OTLP/HTTP sink (protobuf or JSON) on OpenTelemetry's export delegate
 * (`@opentelemetry/otlp-exporter-base`, the transport of the official OTLP exporters): its
 * retries with backoff, timeout, keep-alive, compression and headers from the standard
 * `OTEL_EXPORTER_OTLP_*` variables. Only the encoding is Clawmesh's (`otlp-proto.ts`,
 * `otlp-json.ts`).
 */
export async function createOtlpSink(options: OtlpSinkOptions): Promise<SpanSink> {
  const [{ OTLPExporterBase }, { convertLegacyHttpOptions, createOtlpHttpExportDelegate }] =
    await Promise.all([
      import('@opentelemetry/otlp-exporter-base'),
      import('@opentelemetry/otlp-exporter-base/node-http'),
    ]);
  const contentType = OTLP_CONTENT_TYPES[options.protocol];
  const serializer = {
    serializeRequest: (batch: SpanBatch) => serializeBatch(options.resource, batch),
    deserializeResponse: (data: Uint8Array): unknown => {
      try {
        return data.length === 0 ? {} : JSON.parse(Buffer.from(data).toString('utf8'));
      } catch {
        return {};
      }
    },
  };
  const exporter = new OTLPExporterBase<SpanBatch>(
    createOtlpHttpExportDelegate(
      // The same configuration the official OTLP trace exporter builds: URL, then the
      // OTEL_EXPORTER_OTLP_(TRACES_)* variables.
      convertLegacyHttpOptions({ url: options.url }, 'TRACES', 'v1/traces', {
        'Content-Type': contentType,
      }),
      serializer,
      'otlp_http_span_exporter',
      { name: 'span', countItems: (batch: SpanBatch) => batch.count },
      undefined,
    ),
  );
  return {
    export: (batch) =>
      new Promise<string | undefined>((resolve) => {
        try {
          exporter.export(batch, (result) =>
            resolve(result.code === 0 ? undefined : exportFailure(result.error)),
          );
        } catch (err) {
          resolve(exportFailure(err));
        }
      }),
    shutdown: () => exporter.shutdown(),
  };
}

/** Why an export failed, in words: the HTTP status the endpoint answered, or the network's error. */
function exportFailure(err: unknown): string {
  const error = err as { message?: string; code?: number; cause?: { code?: string } } | undefined;
  const message = error?.message || 'the export failed';
  const code = typeof error?.code === 'number' ? ` (HTTP ${error.code})` : '';
  const cause = error?.cause?.code && !message.includes(error.cause.code) ? ` (${error.cause.code})` : '';
  return `${message}${code}${cause}`;
}

/**
 * The encoding the environment asks for: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
 * `OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf` (OpenTelemetry's default). Any other value
 * (`grpc` is not supported) gives the default and a warning naming the variable.
 */
export function otlpProtocolFromEnv(env: NodeJS.ProcessEnv = process.env): {
  protocol: OtlpProtocol;
  warning?: string;
} {
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const value = env[name]?.trim();
    if (!value) continue;
    if (value === 'http/protobuf' || value === 'http/json') return { protocol: value };
    return {
      protocol: 'http/protobuf',
      warning: `${name}="${value}" is not supported (use http/protobuf or http/json): exporting spans as http/protobuf`,
    };
  }
  return { protocol: 'http/protobuf' };
}
