import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { nuid } from '@nats-io/transport-node';

/*
 * The NATS services protocol ("micro", ADR-32): a service instance answers on its endpoints in a
 * queue group, and on `$SRV.<PING|INFO|STATS>[.<name>[.<id>]]` with JSON about itself. Written
 * here rather than taken from `@nats-io/services` 3.0.0-25: that library works with this
 * connection, but it times only the synchronous part of a handler and counts only errors thrown
 * synchronously, so an async handler always shows 0 ns and 0 errors. Here an endpoint's handler
 * returns a promise and its end is what gets timed and counted. The wire format is the same:
 * `nats micro`, the Go and the nats.js service clients discover these instances, and
 * `listServices` discovers theirs.
 */

/** The `$SRV` subject prefix. */
export const SRV_PREFIX = '$SRV';
/** The header naming a service error's description. */
export const SERVICE_ERROR_HEADER = 'Nats-Service-Error';
/** The header carrying a service error's code (an HTTP-like status). */
export const SERVICE_ERROR_CODE_HEADER = 'Nats-Service-Error-Code';

/** One endpoint's counters, as `$SRV.STATS` reports them (times in nanoseconds). */
export interface MicroEndpointStats {
  name: string;
  subject: string;
  queue_group: string;
  num_requests: number;
  num_errors: number;
  last_error: string;
  processing_time: number;
  average_processing_time: number;
}

/** What `$SRV.INFO` answers. */
export interface MicroInfo {
  type: 'io.nats.micro.v1.info_response';
  name: string;
  id: string;
  version: string;
  description: string;
  metadata: Record<string, string>;
  endpoints: { name: string; subject: string; queue_group: string; metadata?: Record<string, string> }[];
}

/** What `$SRV.STATS` answers. */
export interface MicroStats {
  type: 'io.nats.micro.v1.stats_response';
  name: string;
  id: string;
  version: string;
  started: string;
  metadata: Record<string, string>;
  endpoints: MicroEndpointStats[];
}

/** One endpoint of a service. */
export interface MicroEndpoint {
  name: string;
  subject: string;
  /** Answers one request; resolves to an error message when the answer was an error. */
  handle(msg: Msg): Promise<string | undefined>;
}

/** What a service instance registers. */
export interface MicroServiceSpec {
  /** Letters, digits, `_` and `-` only. */
  name: string;
  version: string;
  description?: string;
  metadata?: Record<string, string>;
  /** The queue group replicas share (default `q`, as in every NATS services library). */
  queue?: string;
  endpoints: readonly MicroEndpoint[];
}

/** A running service instance. */
export interface MicroService {
  readonly id: string;
  info(): MicroInfo;
  stats(): MicroStats;
  /** Stops taking requests (drains its subscriptions); answers already started still go out. */
  stop(): Promise<void>;
}

/** Starts a service instance: its endpoints and `$SRV` subscriptions are live when this resolves. */
export async function startMicroService(nc: NatsConnection, spec: MicroServiceSpec): Promise<MicroService> {
  const id = nuid.next();
  const queue = spec.queue ?? 'q';
  const started = new Date().toISOString();
  const metadata = { ...spec.metadata };
  const stats: MicroEndpointStats[] = spec.endpoints.map((endpoint) => ({
    name: endpoint.name,
    subject: endpoint.subject,
    queue_group: queue,
    num_requests: 0,
    num_errors: 0,
    last_error: '',
    processing_time: 0,
    average_processing_time: 0,
  }));
  const subscriptions: Subscription[] = [];
  let stopped = false;

  spec.endpoints.forEach((endpoint, index) => {
    const counters = stats[index]!;
    const done = (start: number, error: string | undefined) => {
      counters.num_requests += 1;
      counters.processing_time += Math.round((performance.now() - start) * 1e6);
      counters.average_processing_time = Math.round(counters.processing_time / counters.num_requests);
      if (error !== undefined) {
        counters.num_errors += 1;
        counters.last_error = error;
      }
    };
    const callback = (err: Error | null, msg: Msg) => {
      if (err) return;
      const start = performance.now();
      endpoint.handle(msg).then(
        (error) => done(start, error),
        (error: unknown) => done(start, String((error as Error)?.message ?? error)),
      );
    };
    subscriptions.push(nc.subscribe(endpoint.subject, { queue, callback }));
    // This instance alone, outside the queue group: where a retry goes to avoid a hung replica.
    subscriptions.push(nc.subscribe(`${endpoint.subject}.${id}`, { callback }));
  });

  const info = (): MicroInfo => ({
    type: 'io.nats.micro.v1.info_response',
    name: spec.name,
    id,
    version: spec.version,
    description: spec.description ?? '',
    metadata,
    endpoints: stats.map(({ name, subject, queue_group }) => ({ name, subject, queue_group })),
  });
  const snapshot = (): MicroStats => ({
    type: 'io.nats.micro.v1.stats_response',
    name: spec.name,
    id,
    version: spec.version,
    started,
    metadata,
    endpoints: stats.map((counters) => ({ ...counters })),
  });
  const ping = JSON.stringify({
    type: 'io.nats.micro.v1.ping_response',
    name: spec.name,
    id,
    version: spec.version,
    metadata,
  });
  const answers: Record<string, () => string> = {
    PING: () => ping,
    INFO: () => JSON.stringify(info()),
    STATS: () => JSON.stringify(snapshot()),
  };
  for (const [verb, answer] of Object.entries(answers)) {
    for (const subject of [
      `${SRV_PREFIX}.${verb}`,
      `${SRV_PREFIX}.${verb}.${spec.name}`,
      `${SRV_PREFIX}.${verb}.${spec.name}.${id}`,
    ]) {
      subscriptions.push(
        nc.subscribe(subject, {
          callback: (err, msg) => {
            if (!err) msg.respond(answer());
          },
        }),
      );
    }
  }
  // Once the server has seen the subscriptions, a call from any connection finds this instance.
  await nc.flush();

  return {
    id,
    info,
    stats: snapshot,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (nc.isClosed()) return;
      await Promise.allSettled(subscriptions.map((sub) => sub.drain()));
    },
  };
}
