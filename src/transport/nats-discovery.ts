import type { NatsConnection } from '@nats-io/transport-node';
import { createInbox, Empty } from '@nats-io/transport-node';
import { settlesWithin } from '../core/wait.ts';
import { CONTRACT_METADATA_KEY } from './nats.ts';
import { type MicroEndpointStats, type MicroInfo, type MicroStats, SRV_PREFIX } from './nats-micro.ts';

/** One endpoint of a running service instance, with its counters. */
export interface EndpointStats {
  name: string;
  subject: string;
  queueGroup?: string;
  requests: number;
  errors: number;
  lastError?: string;
  /** Total processing time, milliseconds. */
  processingMs: number;
  /** Average processing time per request, milliseconds. */
  averageMs: number;
}

/** A running service instance, as `$SRV.INFO` and `$SRV.STATS` describe it. */
export interface ServiceInstance {
  /** The NATS service name (`skill_inventory`). */
  name: string;
  /** The Clawmesh contract it serves (`skill.inventory`), when it is a Clawmesh service. */
  contract?: string;
  id: string;
  version: string;
  description: string;
  /** When the instance started (ISO 8601), if it said. */
  started?: string;
  metadata: Record<string, string>;
  endpoints: EndpointStats[];
}

/** Options of {@link listServices}. */
export interface ListServicesOptions {
  /** Only instances of this NATS service name. */
  name?: string;
  /**
   * Only instances serving under this subject prefix (`nats.subjectPrefix`): one deployment's,
   * when several share a NATS server.
   */
  subjectPrefix?: string;
  /** The longest wait for answers, milliseconds (default 2000). */
  timeoutMs?: number;
  /** Stop once no instance has answered for this long, milliseconds (default 300). */
  quietMs?: number;
}

/**
 * Every running instance of every NATS service (Clawmesh's and any other that speaks the
 * services protocol), with its endpoints' requests, errors and processing times. Sorted by
 * name, then id; empty when none runs.
 *
 * @example
 * for (const s of await listServices(nc)) console.log(s.name, s.id, s.endpoints.map((e) => e.requests));
 */
export async function listServices(
  nc: NatsConnection,
  options: ListServicesOptions = {},
): Promise<ServiceInstance[]> {
  const timeoutMs = options.timeoutMs ?? 2000;
  // A server that stopped answering (a hung host, a partition) sends no reply either, which
  // would read as "no instance runs": its round trip tells the two apart.
  const answered = nc.flush();
  answered.catch(() => undefined);
  const [infos, stats, alive] = await Promise.all([
    gather<MicroInfo>(nc, 'INFO', options),
    gather<MicroStats>(nc, 'STATS', options),
    settlesWithin(answered, timeoutMs),
  ]);
  if (!alive) throw new Error(`the NATS server did not answer within ${timeoutMs} ms`);
  await answered;
  const statsById = new Map(stats.map((s) => [s.id, s]));
  const seen = new Set<string>();
  const instances: ServiceInstance[] = [];
  for (const info of infos) {
    if (seen.has(info.id)) continue;
    seen.add(info.id);
    instances.push(instanceOf(info, statsById.get(info.id)));
  }
  for (const stat of stats) {
    if (seen.has(stat.id)) continue;
    seen.add(stat.id);
    instances.push(instanceOf(undefined, stat));
  }
  const under = options.subjectPrefix === undefined ? undefined : `${options.subjectPrefix}.`;
  return instances
    .filter((instance) => !under || instance.endpoints.some((endpoint) => endpoint.subject.startsWith(under)))
    .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
}

/**
 * Asks every instance (`$SRV.<verb>`) and collects the answers: until `quietMs` pass without an
 * answer of the deployment asked for (any answer without `subjectPrefix`), at most `timeoutMs`.
 * The quiet wait starts at the first answer of that deployment, not at the first answer of all:
 * on a NATS server several deployments share, another one's idle instances answer first, and a
 * quiet wait counted from them ended before a busy process of this deployment answered, so
 * `clawmesh status` said no instance was running. NATS answering "no responders" ends it at once.
 */
async function gather<T extends { endpoints?: { subject?: string }[] }>(
  nc: NatsConnection,
  verb: string,
  options: ListServicesOptions,
): Promise<T[]> {
  const subject = options.name ? `${SRV_PREFIX}.${verb}.${options.name}` : `${SRV_PREFIX}.${verb}`;
  const under = options.subjectPrefix === undefined ? undefined : `${options.subjectPrefix}.`;
  const quietMs = options.quietMs ?? 300;
  const answers: T[] = [];
  const inbox = createInbox();
  return new Promise<T[]>((resolve, reject) => {
    let quiet: ReturnType<typeof setTimeout> | undefined;
    const finish = (err?: unknown) => {
      clearTimeout(deadline);
      clearTimeout(quiet);
      sub.unsubscribe();
      if (err === undefined) resolve(answers);
      else reject(err);
    };
    const deadline = setTimeout(() => finish(), options.timeoutMs ?? 2000);
    const sub = nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return finish(err);
        // The server's "no responders" status: nothing serves the services protocol.
        if (msg.data.length === 0 && msg.headers?.code === 503) return finish();
        let answer: T;
        try {
          answer = msg.json<T>();
        } catch {
          return; // Not a services protocol answer: skip it.
        }
        answers.push(answer);
        if (under && !(answer.endpoints ?? []).some((e) => e.subject?.startsWith(under))) return;
        clearTimeout(quiet);
        quiet = setTimeout(() => finish(), quietMs);
      },
    });
    try {
      nc.publish(subject, Empty, { reply: inbox });
    } catch (err) {
      finish(err);
    }
  });
}

function instanceOf(info: MicroInfo | undefined, stats: MicroStats | undefined): ServiceInstance {
  const base = (info ?? stats)!;
  const metadata = { ...(stats?.metadata ?? {}), ...(info?.metadata ?? {}) };
  const counters = new Map<string, MicroEndpointStats>((stats?.endpoints ?? []).map((e) => [e.name, e]));
  const names = info ? info.endpoints.map((e) => e.name) : [...counters.keys()];
  const endpoints = names.map((name): EndpointStats => {
    const declared = info?.endpoints.find((e) => e.name === name);
    const counted = counters.get(name);
    const endpoint: EndpointStats = {
      name,
      subject: declared?.subject ?? counted?.subject ?? '',
      requests: counted?.num_requests ?? 0,
      errors: counted?.num_errors ?? 0,
      processingMs: (counted?.processing_time ?? 0) / 1e6,
      averageMs: (counted?.average_processing_time ?? 0) / 1e6,
    };
    const queueGroup = declared?.queue_group ?? counted?.queue_group;
    if (queueGroup) endpoint.queueGroup = queueGroup;
    if (counted?.last_error) endpoint.lastError = counted.last_error;
    return endpoint;
  });
  const instance: ServiceInstance = {
    name: base.name,
    id: base.id,
    version: base.version,
    description: info?.description ?? '',
    metadata,
    endpoints,
  };
  const contract = metadata[CONTRACT_METADATA_KEY];
  if (contract) instance.contract = contract;
  if (stats?.started) instance.started = stats.started;
  return instance;
}
