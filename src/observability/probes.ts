import { accessSync, constants, existsSync, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { dirname } from 'node:path';
import { withDefaultPostgresUser } from '../core/postgres-user.ts';
import { settlesWithin } from '../core/wait.ts';

/**
 * One-shot probes of the servers a deployment depends on, for `clawmesh doctor`: each connects
 * with a short timeout and no reconnection, asks the cheapest question, disconnects, and
 * resolves with what it found or rejects with the server's own error.
 */

/** Rejects with `what did not answer within …` when `work` takes longer than `timeoutMs`. */
async function within<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let value: T | undefined;
  const settled = await settlesWithin(
    work.then((result) => {
      value = result;
    }),
    timeoutMs,
  );
  if (!settled) throw new Error(`${what} did not answer within ${timeoutMs} ms`);
  return value as T;
}

/** Redis answers `PING`. */
export async function probeRedis(url: string, timeoutMs = 2000): Promise<string> {
  const { createClient } = await import('redis');
  const client = createClient({ url, socket: { connectTimeout: timeoutMs, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await within(client.connect(), timeoutMs, 'Redis');
    const pong = await within(client.ping(), timeoutMs, 'Redis');
    const info = await within(client.info('server'), timeoutMs, 'Redis');
    const version = /redis_version:([^\r\n]+)/.exec(info)?.[1];
    return `${pong}${version ? `, Redis ${version}` : ''}`;
  } finally {
    // destroy() throws on a client that never connected; that must not hide the real error.
    await Promise.resolve()
      .then(() => client.destroy())
      .catch(() => undefined);
  }
}

/** NATS accepts a connection (and, with `jetstream`, has JetStream enabled). */
export async function probeNats(url: string, options: { jetstream?: boolean; timeoutMs?: number } = {}) {
  const timeoutMs = options.timeoutMs ?? 2000;
  const { connect } = await import('@nats-io/transport-node');
  const nc = await connect({
    servers: url.split(',').map((server) => server.trim()),
    timeout: timeoutMs,
    maxReconnectAttempts: 0,
    name: 'clawmesh-doctor',
  });
  try {
    await within(nc.flush(), timeoutMs, 'NATS');
    const server = `NATS ${nc.info?.version ?? '?'}`;
    if (!options.jetstream) return server;
    const { jetstreamManager } = await import('@nats-io/jetstream');
    try {
      const jsm = await within(jetstreamManager(nc, { timeout: timeoutMs }), timeoutMs, 'JetStream');
      await within(jsm.getAccountInfo(), timeoutMs, 'JetStream');
    } catch (err) {
      throw new Error(`${server} has no JetStream: ${(err as Error).message}`);
    }
    return `${server} with JetStream`;
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** PostgreSQL accepts a connection and answers `select version()`. */
export async function probePostgres(url: string, timeoutMs = 2000): Promise<string> {
  const pg = await import('pg');
  const client = new pg.default.Client({
    connectionString: withDefaultPostgresUser(url),
    connectionTimeoutMillis: timeoutMs,
  });
  client.on('error', () => undefined);
  try {
    await within(client.connect(), timeoutMs, 'PostgreSQL');
    const result = await within(client.query('select version() as version'), timeoutMs, 'PostgreSQL');
    const version = String(result.rows[0]?.version ?? '')
      .split(' ')
      .slice(0, 2)
      .join(' ');
    return version || 'connected';
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** RabbitMQ accepts an AMQP connection. */
export async function probeRabbitMq(url: string, timeoutMs = 2000): Promise<string> {
  const { connect } = await import('amqplib');
  const connection = await within(connect(url, { timeout: timeoutMs }), timeoutMs, 'RabbitMQ');
  try {
    const product = connection.connection.serverProperties?.product;
    const version = connection.connection.serverProperties?.version;
    return product ? `${product} ${version ?? ''}`.trim() : 'connected';
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** What a probe (or {@link requestWithin}) sends. */
export interface ProbeRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

/**
 * A request with a timeout over Node's HTTP client (the one the services and the SDKs use), not
 * `fetch`: fetch refuses the WHATWG "bad ports" (6000, 6665-6669, …) with a bare `bad port`,
 * though the services reach them. Rejects with the network's own error code (`ECONNREFUSED`, …).
 * The timer keeps the process alive: a server that takes the connection and closes it unanswered
 * must not let a CLI exit at once, silently, with code 0. A URL's user and password go as a Basic
 * `authorization` header (unless the request has its own), never into an error.
 */
export function requestWithin(
  target: string,
  request: ProbeRequest,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return Promise.reject(new Error('not a valid URL'));
  }
  const client = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
  if (!client) return Promise.reject(new Error(`unsupported protocol ${url.protocol}`));
  const headers: Record<string, string> = { ...request.headers };
  if (
    (url.username || url.password) &&
    !Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')
  ) {
    const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    headers.authorization = `Basic ${Buffer.from(user).toString('base64')}`;
  }
  url.username = '';
  url.password = '';
  return new Promise((resolve, reject) => {
    let timedOut = false;
    // agent: false closes the connection after the answer, so a CLI exits when it is done.
    const req = client.request(url, { method: request.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy();
    }, timeoutMs);
    function fail(err: Error & { code?: string }) {
      clearTimeout(timer);
      reject(new Error(timedOut ? `no answer within ${timeoutMs} ms` : (err.code ?? err.message)));
    }
    req.on('error', fail);
    req.end(request.body);
  });
}

/** A GET with a timeout; resolves with the status and body (any status), rejects when nothing answers. */
export function probeHttp(
  url: string,
  options: { headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ status: number; body: string }> {
  return requestWithin(url, { headers: options.headers ?? {} }, options.timeoutMs ?? 3000);
}

/**
 * Posts an empty OTLP `ExportTraceServiceRequest` (no spans) in the given encoding, with the
 * exporter's headers (`OTEL_EXPORTER_OTLP_HEADERS`: a backend's API key), as the exporter would
 * post spans; resolves with the status code. A collector takes it with 200.
 */
export async function probeOtlp(
  url: string,
  contentType: string,
  headers: Record<string, string> = {},
  timeoutMs = 3000,
): Promise<number> {
  const init: ProbeRequest = {
    method: 'POST',
    headers: { ...headers, 'content-type': contentType },
    // The empty message: no bytes in protobuf, no resource spans in JSON.
    body: contentType === 'application/json' ? '{"resourceSpans":[]}' : new Uint8Array(0),
  };
  return (await requestWithin(url, init, timeoutMs)).status;
}

/** The SQLite file (or the nearest existing folder it would be created in) is writable. */
export function probeWritable(path: string): void {
  let target = path;
  while (!existsSync(target)) {
    const parent = dirname(target);
    if (parent === target) break;
    target = parent;
  }
  // A file where a folder of the path should be: nothing can be created under it.
  if (target !== path && !statSync(target).isDirectory()) throw new Error(`${target} is not a directory`);
  try {
    accessSync(target, constants.W_OK);
  } catch {
    throw new Error(`${target} is not writable by this user`);
  }
}
