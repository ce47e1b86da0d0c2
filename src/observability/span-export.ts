import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { packSpan } from './otlp-packed.ts';
import { createProtoSpanEncoder } from './otlp-proto.ts';
import { createOtlpSink, type OtlpSinkOptions, type SpanBatch, type SpanSink } from './otlp-sink.ts';
import type { SpanRecord } from './span-record.ts';
import type { FromExportWorker, ToExportWorker } from './trace-export-worker.ts';

/**
 * Spans sent in one export at most; a full batch goes at once. Larger than the OpenTelemetry
 * SDK's 512: each batch is one hand-over to the export worker and one request, and at 2,000
 * turns/s of five spans each, batches of 512 made 20 hand-overs and requests a second, which cost
 * the turns' thread (the hand-over) and the receiver more than four times fewer of 2,048 do.
 */
export const SPAN_BATCH_SIZE = 2048;
const MAX_BATCH = SPAN_BATCH_SIZE;
/**
 * Exports in flight at most. Beyond it (an endpoint far behind) a full batch waits for a free
 * slot, checked on its timer, and spans past a full batch are dropped and counted: tracing never
 * holds more than this many batches and one more.
 */
const MAX_IN_FLIGHT = 8;

/** Options of {@link createSpanExport}. */
export interface SpanExportOptions extends OtlpSinkOptions {
  /** How long spans wait to be sent together, in milliseconds. */
  flushDelayMs: number;
  /** Export in this thread instead of the export worker (the worker is used when its file is built). */
  inThread?: boolean;
  /**
   * Told when exports start failing (with why: the endpoint's answer or the network's error) and
   * when they work again (`undefined`): once per change, not per batch.
   */
  onExportState?: (failure: string | undefined) => void;
}

/** The export side of tracing: finished spans in, batches out over OTLP. */
export interface SpanExport {
  /** Queues a finished span, packed as primitives (about a microsecond); ignored after shutdown. */
  record(record: SpanRecord): void;
  /** Sends what is queued and waits for every export in flight. */
  flush(): Promise<void>;
  /** Flushes, then stops the exporter (and the worker). */
  shutdown(): Promise<void>;
  /** Spans dropped because the queue was full, or whose export failed. */
  readonly lost: number;
  /** `worker` when the export worker sends the spans, `thread` when this thread does. */
  readonly mode: 'worker' | 'thread';
}

/** The compiled export worker next to this module; absent when running from the TypeScript sources. */
const WORKER_FILE = fileURLToPath(new URL('./trace-export-worker.js', import.meta.url));

/**
 * Batches finished spans and exports them over OTLP/HTTP: from a worker thread when the compiled
 * worker is there (the encoding, requests, retries and compression then run beside the
 * turns), else from this thread. If the worker dies, exports go on in this thread.
 */
export async function createSpanExport(options: SpanExportOptions): Promise<SpanExport> {
  const useWorker = !options.inThread && existsSync(WORKER_FILE);
  let sink: SpanSink = useWorker ? workerSink(options, () => fallBack()) : await createOtlpSink(options);
  let mode: SpanExport['mode'] = useWorker ? 'worker' : 'thread';
  const fallBack = () => {
    mode = 'thread';
    const inThread = createOtlpSink(options);
    sink = {
      export: (batch) => inThread.then((s) => s.export(batch)),
      shutdown: () => inThread.then((s) => s.shutdown()),
    };
  };

  // Protobuf spans are encoded as they end, into memory shared with the worker; JSON spans are
  // packed as primitives and encoded by the sink.
  const shared = sharedBuffers(MAX_IN_FLIGHT + 1);
  const encoder =
    options.protocol === 'http/protobuf' ? createProtoSpanEncoder(undefined, shared.next) : undefined;
  let queue: unknown[] = [];
  let queued = 0;
  let timer: NodeJS.Timeout | undefined;
  let lost = 0;
  /** Why the latest export failed, while exports fail. */
  let failing: string | undefined;
  const inFlight = new Set<Promise<void>>();

  const send = () => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (queued === 0) return;
    const batch: SpanBatch = encoder ? encoder.take() : { data: queue, count: queued };
    queue = [];
    queued = 0;
    const sent: Promise<void> = sink.export(batch).then((failure) => {
      if ('bytes' in batch) shared.release(batch.bytes);
      if (failure) lost += batch.count;
      if ((failure === undefined) !== (failing === undefined)) {
        failing = failure;
        options.onExportState?.(failure);
      }
      inFlight.delete(sent);
    });
    inFlight.add(sent);
  };
  /** The timer's send: with every export slot taken, the batch waits for the next tick of the timer. */
  const sendWhenFree = () => {
    timer = undefined;
    if (inFlight.size < MAX_IN_FLIGHT) send();
    else schedule();
  };
  const schedule = () => {
    timer = setTimeout(sendWhenFree, options.flushDelayMs);
    timer.unref();
  };
  let stopped = false;

  return {
    record(record) {
      if (stopped) return;
      if (inFlight.size >= MAX_IN_FLIGHT && queued >= MAX_BATCH) {
        lost += 1;
        return;
      }
      if (encoder) encoder.add(record);
      else packSpan(record, queue);
      queued += 1;
      if (queued >= MAX_BATCH && inFlight.size < MAX_IN_FLIGHT) send();
      else if (!timer) schedule();
    },
    async flush() {
      send();
      await Promise.all(inFlight);
    },
    async shutdown() {
      if (stopped) return;
      stopped = true;
      send();
      await Promise.all(inFlight);
      await sink.shutdown();
    },
    get lost() {
      return lost;
    },
    get mode() {
      return mode;
    },
  };
}

/** Bytes of each buffer shared with the export worker: a batch of 2,048 spans of a turn fits. */
const SHARED_BATCH_BYTES = 1024 * 1024;

/**
 * Buffers of encoded spans shared with the export worker, each used again once its export is
 * done: a batch then costs neither fresh memory (whose first writes fault its pages in) nor a
 * transfer (hundreds of µs for a megabyte on the turns' thread). At most `max` are made (one per
 * export in flight and one being written); past them a batch gets memory of its own.
 */
function sharedBuffers(max: number) {
  const free: Buffer[] = [];
  let made = 0;
  return {
    next(): Buffer | undefined {
      const reused = free.pop();
      if (reused) return reused;
      if (made >= max) return undefined;
      made++;
      return Buffer.from(new SharedArrayBuffer(SHARED_BATCH_BYTES));
    },
    /** Takes back the buffer of a batch whose export is done (one that outgrew it is not shared). */
    release(bytes: Uint8Array): void {
      if (bytes.buffer instanceof SharedArrayBuffer) free.push(Buffer.from(bytes.buffer));
    },
  };
}

/**
 * A sink in the export worker. The worker does not keep the process alive while idle; it does
 * while an export is in flight, so a flush at shutdown completes.
 */
function workerSink(options: OtlpSinkOptions, onDeath: () => void): SpanSink {
  const worker = new Worker(WORKER_FILE, {
    workerData: {
      url: options.url,
      resource: options.resource,
      protocol: options.protocol,
    } satisfies OtlpSinkOptions,
  });
  worker.unref();
  const pending = new Map<number, (failure: string | undefined) => void>();
  let nextId = 0;
  let dead = false;
  const settleAll = () => {
    for (const resolve of pending.values()) resolve('the export worker stopped');
    pending.clear();
  };
  worker.on('message', (message: FromExportWorker) => {
    pending.get(message.id)?.(message.error);
    pending.delete(message.id);
    if (pending.size === 0) worker.unref();
  });
  const died = () => {
    if (dead) return;
    dead = true;
    settleAll();
    onDeath();
  };
  worker.on('error', died);
  worker.on('exit', died);
  const ask = (message: ToExportWorker) =>
    new Promise<string | undefined>((resolve) => {
      if (dead) {
        resolve('the export worker stopped');
        return;
      }
      pending.set(message.id, resolve);
      worker.ref();
      // Encoded spans in shared memory are read there; any other buffer of them moves to the
      // worker (its memory changes hands, nothing is copied).
      const moved =
        message.type === 'export' &&
        'bytes' in message.batch &&
        message.batch.bytes.buffer instanceof ArrayBuffer
          ? [message.batch.bytes.buffer]
          : [];
      worker.postMessage(message, moved);
    });
  return {
    export: (batch) => ask({ type: 'export', id: nextId++, batch }),
    async shutdown() {
      await ask({ type: 'shutdown', id: nextId++ });
      dead = true;
      worker.removeAllListeners('exit');
      await worker.terminate();
    },
  };
}
