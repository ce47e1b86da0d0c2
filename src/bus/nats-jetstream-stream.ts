import {
  DiscardPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Logger } from '../observability/logger.ts';

/** What the bus's stream is made of (the stream options of the JetStream bus). */
export interface EventStreamOptions {
  streamName: string;
  subjectPrefix: string;
  maxAgeMs?: number;
  duplicateWindowMs?: number;
  storage?: 'file' | 'memory';
  replicas?: number;
}

/** The bus's one stream: made at start, and made again when it vanished under a running bus. */
export interface EventStream {
  /** Creates the stream, or makes an existing one (whatever its limits) cover the subjects. */
  ensure(): Promise<void>;
  /**
   * Checks that the stream is there (at most once a second; a check within the second shares the
   * last one's answer) and creates it again when it is missing: deleted by hand, or a server
   * restarted without its storage. Resolves true when it was missing and has been made again.
   */
  restore(): Promise<boolean>;
}

/** The {@link EventStream} of the bus over `<subjectPrefix>.>`. */
export function createEventStream(
  jsm: JetStreamManager,
  options: EventStreamOptions,
  logger: Logger | undefined,
): EventStream {
  const config: Partial<StreamConfig> & { name: string } = {
    name: options.streamName,
    subjects: [`${options.subjectPrefix}.>`],
    retention: RetentionPolicy.Limits,
    storage: options.storage === 'memory' ? StorageType.Memory : StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(options.maxAgeMs ?? 7 * 24 * 3600_000),
    duplicate_window: nanos(options.duplicateWindowMs ?? 120_000),
    num_replicas: options.replicas ?? 1,
  };
  const ensure = async () => {
    try {
      await jsm.streams.add(config);
    } catch (err) {
      const info = await jsm.streams.info(config.name).catch(() => {
        throw err;
      });
      const subjects = info.config.subjects ?? [];
      const missing = (config.subjects ?? []).filter((s) => !subjects.includes(s));
      if (missing.length > 0) await jsm.streams.update(config.name, { subjects: [...subjects, ...missing] });
    }
  };
  let lastCheck: { at: number; recreated: Promise<boolean> } | undefined;
  return {
    ensure,
    restore() {
      if (lastCheck && Date.now() - lastCheck.at < 1000) return lastCheck.recreated;
      const recreated = jsm.streams.info(config.name).then(
        () => false,
        async (err: unknown) => {
          if (!isStreamNotFound(err)) throw err;
          await ensure();
          logger?.warn({ stream: config.name }, 'the JetStream stream was missing: created it again');
          return true;
        },
      );
      lastCheck = { at: Date.now(), recreated };
      return recreated;
    },
  };
}

/** Whether a JetStream API error says the stream does not exist (error code 10059). */
function isStreamNotFound(err: unknown): boolean {
  const api = (err as { apiError?: () => { err_code?: number } | undefined })?.apiError?.();
  return api?.err_code === 10059 || /stream not found/i.test(String((err as Error)?.message));
}
