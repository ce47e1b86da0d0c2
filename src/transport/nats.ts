import { hostname } from 'node:os';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { connect, Empty, errors, headers } from '@nats-io/transport-node';
import type { CallContext } from '../core/context.ts';
import type { CallMiddleware, Client, Contract, Handlers, Invoke } from '../core/contract.ts';
import { clientFromInvoke } from '../core/contract.ts';
import { ClawmeshError } from '../core/errors.ts';
import { callFields, type Logger } from '../observability/logger.ts';
import { instanceSubject, pickLiveInstance } from './nats-live.ts';
import {
  type MicroEndpoint,
  type MicroService,
  SERVICE_ERROR_CODE_HEADER,
  SERVICE_ERROR_HEADER,
  startMicroService,
} from './nats-micro.ts';
import { createRequester, PROGRESS_HEADER, RequestFailed } from './nats-requester.ts';
import { assertMethodName, assertWireNames, type MethodRunner, methodRunners } from './serving.ts';
import type { Registration, Transport } from './types.ts';
import {
  CONTEXT_HEADER,
  DEFAULT_MAX_PAYLOAD_BYTES,
  deadlineExceeded,
  deadlinePassed,
  decodeJson,
  encodeInput,
  encodeJson,
  errorOfReply,
  packContext,
  payloadTooLarge,
  readContextHeaders,
  statusOf,
  TRACEPARENT_HEADER,
  unpackContext,
} from './wire.ts';

/** Options of {@link createNatsTransport}: a connection to share, or servers to connect to. */
export interface NatsTransportOptions {
  /** An open connection, shared with the rest of the process; `close()` leaves it open. */
  connection?: NatsConnection;
  /** Servers to connect to when no connection is given (`nats://127.0.0.1:4222`); `close()` closes it. */
  servers?: string | string[];
  /** The connection's name, seen in the server's monitoring (default `clawmesh`). */
  name?: string;
  /** The largest request or reply in bytes (default 1 MiB; never above the server's `max_payload`). */
  maxPayloadBytes?: number;
  /**
   * The first token of every subject (default `clawmesh`): deployments sharing one NATS server
   * stay apart by choosing different prefixes.
   */
  subjectPrefix?: string;
  /** The queue group replicas of a service share (default `q`). */
  queue?: string;
  /** Where handler crashes are logged. */
  logger?: Logger;
  /**
   * How long a call waits without its reply or a progress message before it fails `UNAVAILABLE`
   * (the replica died or hangs), in milliseconds; 0 waits for the deadline alone (default 3000).
   * Every instance sends each call it is running a progress message every
   * {@link PROGRESS_INTERVAL_MS}, so a live one is never taken for dead.
   */
  livenessMs?: number;
  /**
   * The process's instance id, as in its logs and traces: published in each service's metadata
   * (`instance`), so a discovered instance can be matched with its process's log lines.
   */
  instance?: string;
}

/** The nats transport: a {@link Transport} with its connection and the instances it serves. */
export interface NatsTransport extends Transport {
  readonly kind: 'nats';
  readonly connection: NatsConnection;
  /** The service instances this transport runs, with their ids and stats. */
  instances(): readonly MicroService[];
}

/** The subject a method is called on: `clawmesh.<service>.<method>`. */
export function subjectOf(service: string, method: string, prefix = 'clawmesh'): string {
  return `${prefix}.${service}.${method}`;
}

/** A contract's name as a NATS service name, which allows only letters, digits, `_` and `-`. */
export function natsServiceName(service: string): string {
  return service.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** How often an instance tells the callers of the calls it is running that it is alive, in milliseconds. */
export const PROGRESS_INTERVAL_MS = 1000;

/** The metadata key that holds the contract's own name (`skill.inventory`) on a NATS service. */
export const CONTRACT_METADATA_KEY = 'clawmesh.contract';

/**
 * The nats transport: request-reply on `clawmesh.<service>.<method>`, each served contract a
 * NATS service (`$SRV` discovery and stats, queue group `q` so replicas share the calls). The
 * call context travels in headers and the time left as the request's timeout; no responders is
 * `UNAVAILABLE` at once, no answer in time `DEADLINE_EXCEEDED`; typed errors cross unchanged
 * (`Nats-Service-Error-Code` marks them, the body holds `{ "error": … }`).
 *
 * @example
 * const transport = await createNatsTransport({ servers: process.env.NATS_URL });
 * await transport.serve(skillsContract, skillHost.handlers);
 * const models = transport.client(modelsContract);
 */
export async function createNatsTransport(options: NatsTransportOptions): Promise<NatsTransport> {
  const maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  if (!(Number.isInteger(maxPayloadBytes) && maxPayloadBytes > 0)) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'maxPayloadBytes must be a positive integer');
  }
  const prefix = options.subjectPrefix ?? 'clawmesh';
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `subjectPrefix "${prefix}" must be letters, digits, "_" or "-"`,
    );
  }
  const livenessMs = options.livenessMs ?? 3000;
  if (!(Number.isInteger(livenessMs) && (livenessMs === 0 || livenessMs >= 2 * PROGRESS_INTERVAL_MS))) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `livenessMs must be 0 or an integer of at least ${2 * PROGRESS_INTERVAL_MS} ms (twice the progress interval)`,
    );
  }
  const owned = !options.connection;
  const nc = options.connection ?? (await connectNats(options.servers, options.name ?? 'clawmesh'));
  const services = new Set<MicroService>();
  const requester = createRequester(nc);
  let closed = false;
  const limit = () => Math.min(maxPayloadBytes, nc.info?.max_payload ?? maxPayloadBytes);
  const serverMax = nc.info?.max_payload;
  if (serverMax !== undefined && serverMax < maxPayloadBytes) {
    // Else a call between the two sizes fails naming a limit the operator never set.
    options.logger?.warn(
      { payloadLimitBytes: maxPayloadBytes, maxPayload: serverMax },
      `transport.payloadLimitBytes (${maxPayloadBytes}) is above the NATS server's max_payload (${serverMax}): calls over NATS are limited to ${serverMax} bytes; raise max_payload in the server's configuration to allow more`,
    );
  }

  // The calls this process is running, told every PROGRESS_INTERVAL_MS that it is alive: one
  // timer for all of them, so a call costs a set insertion, not a timer of its own.
  const running = new Set<Msg>();
  const progressHeaders = headers();
  progressHeaders.set(PROGRESS_HEADER, '1');
  let progressTimer: NodeJS.Timeout | undefined;
  const sendProgress = () => {
    for (const msg of running) {
      try {
        msg.respond(Empty, { headers: progressHeaders });
      } catch {
        // The connection is closing: the reply would not go either.
      }
    }
  };

  const endpointOf = (service: string, method: string, run: MethodRunner): MicroEndpoint => {
    const what = `${service}.${method}`;
    return {
      name: natsServiceName(method),
      subject: subjectOf(service, method, prefix),
      async handle(msg: Msg): Promise<string | undefined> {
        let ctx: CallContext | undefined;
        try {
          const max = limit();
          if (msg.data.length > max) throw payloadTooLarge(what, msg.data.length, max);
          ctx = contextOf(msg);
          if (msg.reply) running.add(msg);
          let output: unknown;
          try {
            output = await run(decodeJson(msg.data, what), ctx);
          } finally {
            running.delete(msg);
          }
          const body = encodeJson(output);
          if (body.length > max) throw payloadTooLarge(`${what} reply`, body.length, max, 'INTERNAL');
          msg.respond(body);
          return undefined;
        } catch (err) {
          if (!(err instanceof ClawmeshError))
            options.logger?.error(
              { ...(ctx ? callFields(ctx) : {}), err, rpcService: service, rpcMethod: method },
              'rpc handler threw',
            );
          const error = ClawmeshError.from(err);
          respondError(msg, error);
          return error.message;
        }
      },
    };
  };

  // Calls that timed out or found no instance, by subject and request id: the same call again is
  // a retry (the gateway's failover), sent to a replica that proves alive rather than to the queue
  // group, which may pick the hung one again. Bounded: the oldest are forgotten first.
  const failedCalls = new Set<string>();
  const callKeyOf = (subject: string, ctx: CallContext) => `${subject}\u0000${ctx.requestId}`;
  const rememberFailure = (key: string) => {
    failedCalls.add(key);
    if (failedCalls.size > 1024) failedCalls.delete(failedCalls.values().next().value as string);
  };

  const invoker = (service: string): Invoke => {
    const subjects = new Map<string, string>();
    const serviceName = natsServiceName(service);
    return async (method, input, ctx) => {
      const what = `${service}.${method}`;
      if (closed) throw new ClawmeshError('UNAVAILABLE', `${what}: the nats transport is closed`);
      let subject = subjects.get(method);
      if (subject === undefined) {
        assertMethodName(service, method);
        subject = subjectOf(service, method, prefix);
        subjects.set(method, subject);
      }
      const remaining = ctx.deadline - Date.now();
      if (remaining <= 0) throw deadlinePassed(what);
      const data = encodeInput(input, what);
      const max = limit();
      if (data.length > max) throw payloadTooLarge(what, data.length, max);
      // A first try (nearly every call) builds no key: only a set with failures is looked into.
      const retried = failedCalls.size > 0 && failedCalls.has(callKeyOf(subject, ctx));
      let target = subject;
      let left = remaining;
      if (retried) {
        const live = await pickLiveInstance(nc, serviceName, subject, Math.min(500, remaining / 4));
        if (live !== undefined) target = instanceSubject(subject, live);
        left = ctx.deadline - Date.now();
        if (left <= 0) throw deadlinePassed(what);
      }
      let reply: Msg;
      try {
        reply = await requester.request(target, data, contextHeaders(ctx, left), left, livenessMs);
      } catch (err) {
        const failure = requestFailure(err, service, what, left, max);
        if (failure.code === 'DEADLINE_EXCEEDED' || failure.code === 'UNAVAILABLE')
          rememberFailure(callKeyOf(subject, ctx));
        throw failure;
      }
      if (retried) failedCalls.delete(callKeyOf(subject, ctx));
      const h = reply.headers;
      if (h?.has(SERVICE_ERROR_CODE_HEADER)) {
        const status = Number(h.get(SERVICE_ERROR_CODE_HEADER));
        throw errorOfReply(
          status,
          reply.string(),
          what,
          max,
          h.get(SERVICE_ERROR_HEADER) || `error ${status}`,
        );
      }
      try {
        return decodeJson(reply.data, what);
      } catch (err) {
        throw new ClawmeshError('INTERNAL', `${what}: the reply is not JSON`, { cause: err });
      }
    };
  };

  return {
    kind: 'nats',
    connection: nc,
    async serve<C extends Contract>(contract: C, handlers: Handlers<C>): Promise<Registration> {
      if (closed) throw new ClawmeshError('UNAVAILABLE', 'the nats transport is closed');
      assertWireNames(contract);
      const runners = methodRunners(contract, handlers);
      if (!progressTimer) {
        progressTimer = setInterval(sendProgress, PROGRESS_INTERVAL_MS);
        progressTimer.unref();
      }
      const instance = await startMicroService(nc, {
        name: natsServiceName(contract.name),
        version: contract.version,
        description: `Clawmesh service ${contract.name}`,
        metadata: {
          [CONTRACT_METADATA_KEY]: contract.name,
          hostname: hostname(),
          pid: String(process.pid),
          ...(options.instance ? { instance: options.instance } : {}),
        },
        queue: options.queue ?? 'q',
        endpoints: [...runners].map(([method, run]) => endpointOf(contract.name, method, run)),
      });
      services.add(instance);
      return {
        async close() {
          services.delete(instance);
          await instance.stop();
        },
      };
    },
    client<C extends Contract>(contract: C, middleware: readonly CallMiddleware[] = []): Client<C> {
      assertWireNames(contract);
      let invoke = invoker(contract.name);
      for (const wrap of [...middleware].reverse()) invoke = wrap(contract.name, invoke);
      return clientFromInvoke(contract, invoke);
    },
    instances: () => [...services],
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(progressTimer);
      requester.close();
      const stopping = [...services].map((instance) => instance.stop());
      services.clear();
      await Promise.all(stopping);
      if (owned && !nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}

/** Connects to NATS for a transport of its own: reconnects forever, no per-request stack traces. */
async function connectNats(servers: string | string[] | undefined, name: string): Promise<NatsConnection> {
  const list = (Array.isArray(servers) ? servers : (servers ?? 'nats://127.0.0.1:4222').split(','))
    .map((server) => server.trim())
    .filter(Boolean);
  try {
    return await connect({
      servers: list,
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: 5000,
      // Otherwise every request allocates an Error to keep the caller's stack.
      noAsyncTraces: true,
    });
  } catch (err) {
    throw new ClawmeshError(
      'UNAVAILABLE',
      `cannot connect to NATS at ${list.join(', ')}: ${(err as Error).message} (start nats-server or set NATS_URL)`,
      { cause: err },
    );
  }
}

/** A call's context as NATS headers: `traceparent`, and the rest packed in `clawmesh-context`. */
function contextHeaders(ctx: CallContext, remainingMs: number) {
  const h = headers();
  // Each name is written once into fresh headers: `append`, as `set` would first look for it.
  h.append(TRACEPARENT_HEADER, ctx.traceparent);
  h.append(CONTEXT_HEADER, packContext(ctx, remainingMs));
  return h;
}

/**
 * The context a request came with: from `clawmesh-context` when a Clawmesh client sent it, or
 * from one header per field (`clawmesh-deadline-ms`, `x-request-id`, …, as over http) when
 * another NATS client did.
 */
function contextOf(msg: Msg): CallContext {
  const h = msg.headers;
  if (!h) return readContextHeaders(() => undefined);
  const packed = h.get(CONTEXT_HEADER);
  if (packed) return unpackContext(packed, h.get(TRACEPARENT_HEADER) || undefined);
  return readContextHeaders((name) => h.get(name) || undefined);
}

/** Answers a request with a typed error, in the NATS services convention. */
function respondError(msg: Msg, error: ClawmeshError): void {
  const h = headers();
  h.set(SERVICE_ERROR_HEADER, error.message.replace(/[\r\n]+/g, ' ').slice(0, 512));
  h.set(SERVICE_ERROR_CODE_HEADER, String(statusOf(error)));
  try {
    msg.respond(encodeJson({ error: error.toJSON() }), { headers: h });
  } catch {
    // Details too large for the server: the code and message alone still go back.
    const { details: _details, ...bare } = error.toJSON();
    msg.respond(encodeJson({ error: bare }), { headers: h });
  }
}

/** The typed error of a request that got no reply. */
function requestFailure(
  err: unknown,
  service: string,
  what: string,
  waitedMs: number,
  max: number,
): ClawmeshError {
  if (!(err instanceof RequestFailed)) return ClawmeshError.from(err);
  const { failure } = err;
  switch (failure.kind) {
    case 'timeout':
      return deadlineExceeded(what, waitedMs);
    case 'silent':
      return new ClawmeshError(
        'UNAVAILABLE',
        `${what}: the instance of service "${service}" running the call stopped answering (no reply or progress in ${failure.silentMs} ms): it died or hangs`,
      );
    case 'no-responders':
      return new ClawmeshError(
        'UNAVAILABLE',
        `${what}: no running instance of service "${service}" serves this method (no NATS responders)`,
      );
    case 'closed':
      return new ClawmeshError('UNAVAILABLE', `${what}: ${failure.message}`);
    case 'publish': {
      const { error } = failure;
      if (error instanceof errors.InvalidArgumentError && error.message.includes('max_payload')) {
        return payloadTooLarge(what, undefined, max);
      }
      return new ClawmeshError('UNAVAILABLE', `${what}: NATS request failed: ${error.message}`, {
        cause: error,
      });
    }
  }
}
