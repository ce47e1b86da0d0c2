/**
 * The export worker: takes batches of packed spans from the main thread, encodes them as OTLP
 * (protobuf or JSON) and sends them over OpenTelemetry's OTLP/HTTP export delegate, so the encoding, the
 * requests, their retries and any compression run beside the turns instead of between them.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createOtlpSink, type OtlpSinkOptions, type SpanBatch } from './otlp-sink.ts';

/** A message from the main thread. */
export type ToExportWorker =
  | { type: 'export'; id: number; batch: SpanBatch }
  | { type: 'shutdown'; id: number };

/** The answer to one message. */
export interface FromExportWorker {
  id: number;
  /** Why the export or shutdown failed; absent when it succeeded. */
  error?: string;
}

const port = parentPort;
if (port) {
  const sink = createOtlpSink(workerData as OtlpSinkOptions);
  port.on('message', (message: ToExportWorker) => {
    const done = (error?: string) =>
      port.postMessage({ id: message.id, ...(error ? { error } : {}) } satisfies FromExportWorker);
    const failed = (err: unknown) => done(err instanceof Error ? err.message : String(err));
    if (message.type === 'export') {
      sink.then((s) => s.export(message.batch)).then(done, failed);
    } else {
      sink.then((s) => s.shutdown()).then(() => done(), failed);
    }
  });
}
