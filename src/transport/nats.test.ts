import net from 'node:net';
import { Svcm } from '@nats-io/services';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createCallContext } from '../core/context.ts';
import { defineContract } from '../core/contract.ts';
import { ClawmeshError } from '../core/errors.ts';
import { randomHex } from '../core/ids.ts';
import { createLogger } from '../observability/logger.ts';
import { describeTransport, rejection } from './conformance.ts';
import { CONTRACT_METADATA_KEY, createNatsTransport, type NatsTransport, natsServiceName } from './nats.ts';
import { listServices } from './nats-discovery.ts';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

describeTransport(
  'nats',
  async ({ maxPayloadBytes }) => {
    const [server, client, replica] = await Promise.all([
      createNatsTransport({ servers: NATS_URL, maxPayloadBytes, name: 'conformance-server' }),
      createNatsTransport({ servers: NATS_URL, maxPayloadBytes, name: 'conformance-client' }),
      createNatsTransport({ servers: NATS_URL, maxPayloadBytes, name: 'conformance-replica' }),
    ]);
    return { server, client, replica };
  },
  { replicas: true },
);

const ctx = (timeoutMs = 5000) => createCallContext({ timeoutMs });

const contractNamed = (name: string) =>
  defineContract({
    name,
    version: '2.1.0',
    methods: {
      say: { input: z.object({ text: z.string() }), output: z.object({ text: z.string() }) },
      fail: { input: z.object({}), output: z.object({}) },
    },
  });

describe('nats transport', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of cleanup.splice(0).reverse()) await close();
  });
  const transport = async (options: Omit<Parameters<typeof createNatsTransport>[0], 'servers'> = {}) => {
    const t = await createNatsTransport({ servers: NATS_URL, ...options });
    cleanup.push(() => t.close());
    return t;
  };
  const raw = async (): Promise<NatsConnection> => {
    const nc = await connect({ servers: NATS_URL });
    cleanup.push(() => nc.close());
    return nc;
  };
  const serveEcho = async (server: NatsTransport, name: string) => {
    let ran = 0;
    const contract = contractNamed(name);
    await server.serve(contract, {
      say: async ({ text }) => {
        ran += 1;
        return { text };
      },
      fail: async () => {
        ran += 1;
        throw new ClawmeshError('RATE_LIMITED', 'slow down', { details: { retryAfterSeconds: 3 } });
      },
    });
    return { contract, ran: () => ran };
  };

  it('serves a dotted, hyphenated service name on clawmesh.<service>.<method>', async () => {
    const name = `skill.inv-${randomHex(4)}`;
    const server = await transport();
    await serveEcho(server, name);
    const nc = await raw();
    const reply = await nc.request(`clawmesh.${name}.say`, JSON.stringify({ text: 'raw' }), {
      timeout: 2000,
    });
    expect(reply.json()).toEqual({ text: 'raw' });
    expect(natsServiceName(name)).toBe(name.replace('.', '_'));
  });

  it('registers a NATS service that $SRV discovery lists with version, endpoints and stats', async () => {
    const name = `skill.stats-${randomHex(4)}`;
    const server = await transport();
    const client = await transport();
    const { contract } = await serveEcho(server, name);
    const calls = client.client(contract);
    await calls.say({ text: 'one' }, ctx());
    await calls.say({ text: 'two' }, ctx());
    await rejection(calls.fail({}, ctx()));
    const found = (await listServices(client.connection, { name: natsServiceName(name) })).filter(
      (s) => s.contract === name,
    );
    expect(found).toHaveLength(1);
    const [instance] = found;
    expect(instance).toMatchObject({
      name: natsServiceName(name),
      contract: name,
      version: '2.1.0',
      id: server.instances()[0]!.id,
    });
    expect(instance!.metadata[CONTRACT_METADATA_KEY]).toBe(name);
    const say = instance!.endpoints.find((e) => e.name === 'say')!;
    const fail = instance!.endpoints.find((e) => e.name === 'fail')!;
    expect(say).toMatchObject({ subject: `clawmesh.${name}.say`, queueGroup: 'q', requests: 2, errors: 0 });
    expect(say.averageMs).toBeGreaterThan(0);
    expect(fail).toMatchObject({ requests: 1, errors: 1, lastError: 'slow down' });
  });

  it('is discovered by the @nats-io/services client, and discovers a service it registered', async () => {
    const name = `interop-${randomHex(4)}`;
    const server = await transport();
    await serveEcho(server, `clawmesh.${name}`);
    const nc = await raw();
    const svcm = new Svcm(nc as never);
    const infos: { name: string; version: string; endpoints: { subject: string }[] }[] = [];
    for await (const info of await svcm.client().info(natsServiceName(`clawmesh.${name}`))) infos.push(info);
    expect(infos).toHaveLength(1);
    expect(infos[0]).toMatchObject({ name: `clawmesh_${name}`, version: '2.1.0' });
    expect(infos[0]!.endpoints.map((e) => e.subject).sort()).toEqual([
      `clawmesh.clawmesh.${name}.fail`,
      `clawmesh.clawmesh.${name}.say`,
    ]);

    const theirs = await svcm.add({ name: `theirs-${name}`, version: '0.0.7' });
    cleanup.push(() => theirs.stop());
    theirs.addEndpoint('ping', {
      subject: `theirs.${name}.ping`,
      handler: (_err, msg) => msg.respond('pong'),
    });
    const listed = await listServices(nc as never, { name: `theirs-${name}` });
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ name: `theirs-${name}`, version: '0.0.7' });
    expect(listed[0]!.contract).toBeUndefined();
    expect(listed[0]!.endpoints.map((e) => e.name)).toEqual(['ping']);
  });

  it("publishes the process's instance id in each service's metadata, to match discovery with logs", async () => {
    const name = `inst-${randomHex(4)}`;
    const server = await transport({ instance: 'vm-test-4242-abc123' });
    await serveEcho(server, name);
    const found = (await listServices(server.connection, {})).filter((s) => s.contract === name);
    expect(found).toHaveLength(1);
    expect(found[0]!.metadata).toMatchObject({ instance: 'vm-test-4242-abc123', pid: String(process.pid) });
  });

  it('fails a request that arrives with no time left with DEADLINE_EXCEEDED without running it', async () => {
    const name = `late-${randomHex(4)}`;
    const server = await transport();
    const { ran } = await serveEcho(server, name);
    const nc = await raw();
    const h = headers();
    h.set('clawmesh-deadline-ms', '0');
    const reply = await nc.request(`clawmesh.${name}.say`, JSON.stringify({ text: 'x' }), {
      timeout: 2000,
      headers: h,
    });
    expect(reply.headers?.get('Nats-Service-Error-Code')).toBe('504');
    expect((reply.json() as { error: { code: string } }).error.code).toBe('DEADLINE_EXCEEDED');
    expect(ran()).toBe(0);
  });

  it('sends the context as traceparent and one clawmesh-context header', async () => {
    const name = `ctx-${randomHex(4)}`;
    const client = await transport();
    const nc = await raw();
    const seen: { headers: Record<string, string[]> }[] = [];
    nc.subscribe(`clawmesh.${name}.say`, {
      callback: (_err, msg) => {
        const h = msg.headers!;
        seen.push({ headers: Object.fromEntries(h.keys().map((k) => [k, h.values(k)])) });
        msg.respond(JSON.stringify({ text: 'ok' }));
      },
    });
    await nc.flush();
    const call = createCallContext({ timeoutMs: 5000, conversationId: 'c_1', userId: 'ü;=\n"' });
    await client.client(contractNamed(name)).say({ text: 'x' }, call);
    expect(Object.keys(seen[0]!.headers)).toEqual(['traceparent', 'clawmesh-context']);
    expect(seen[0]!.headers.traceparent).toEqual([call.traceparent]);
    const packed = JSON.parse(seen[0]!.headers['clawmesh-context']![0]!);
    expect(packed).toMatchObject({ r: call.requestId, c: 'c_1', u: 'ü;=\n"' });
    expect(packed.d).toBeGreaterThan(4000);
    expect(packed.d).toBeLessThanOrEqual(5000);
  });

  it('takes the context from one header per field when another NATS client sends them', async () => {
    const name = `foreign-${randomHex(4)}`;
    const server = await transport();
    let got: { requestId: string; conversationId?: string; deadline: number } | undefined;
    await server.serve(contractNamed(name), {
      say: async ({ text }, c) => {
        got = c;
        return { text };
      },
      fail: async () => ({}),
    });
    const nc = await raw();
    const h = headers();
    h.set('x-request-id', 'req%20one');
    h.set('clawmesh-conversation-id', 'c_7');
    h.set('clawmesh-deadline-ms', '2000');
    const started = Date.now();
    await nc.request(`clawmesh.${name}.say`, JSON.stringify({ text: 'x' }), { timeout: 2000, headers: h });
    expect(got).toMatchObject({ requestId: 'req one', conversationId: 'c_7' });
    expect(got!.deadline - started).toBeGreaterThan(1000);
    expect(got!.deadline - started).toBeLessThanOrEqual(2100);
  });

  it.each([
    ['not JSON', '{d:1', 'is not a JSON object'],
    ['an array', '[1]', 'is not a JSON object'],
    ['a deadline that is not a number', '{"d":"soon"}', '"d" is not a number of milliseconds'],
    ['an id that is not a string', '{"d":1000,"c":7}', '"c" is not a string'],
  ])(
    'answers INVALID_ARGUMENT to a clawmesh-context header that is %s, without running',
    async (_what, value, message) => {
      const name = `badctx-${randomHex(4)}`;
      const server = await transport();
      const { ran } = await serveEcho(server, name);
      const nc = await raw();
      const h = headers();
      h.set('clawmesh-context', value);
      const reply = await nc.request(`clawmesh.${name}.say`, JSON.stringify({ text: 'x' }), {
        timeout: 2000,
        headers: h,
      });
      expect(reply.headers?.get('Nats-Service-Error-Code')).toBe('400');
      const { error } = reply.json() as { error: { code: string; message: string } };
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain(message);
      expect(ran()).toBe(0);
    },
  );

  it('refuses a request over the server limit with the payload error, sent by a client with a larger one', async () => {
    const name = `big-${randomHex(4)}`;
    const server = await transport({ maxPayloadBytes: 1000 });
    const client = await transport({ maxPayloadBytes: 100_000 });
    const { contract, ran } = await serveEcho(server, name);
    const err = await rejection(client.client(contract).say({ text: 'q'.repeat(5000) }, ctx()));
    expect(err).toBeInstanceOf(ClawmeshError);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', retryable: false });
    expect(err.details).toMatchObject({ reason: 'PAYLOAD_TOO_LARGE', limitBytes: 1000, sizeBytes: 5011 });
    expect(ran()).toBe(0);
  });

  it("never sends more than the server's max_payload, whatever its own limit", async () => {
    const client = await transport({ maxPayloadBytes: 64 * 1024 * 1024 });
    const max = client.connection.info!.max_payload;
    const contract = contractNamed(`huge-${randomHex(4)}`);
    const err = await rejection(client.client(contract).say({ text: 'h'.repeat(max + 10) }, ctx()));
    expect(err.details).toMatchObject({ reason: 'PAYLOAD_TOO_LARGE', limitBytes: max });
  });

  it('answers UNAVAILABLE at once when no instance serves the method (no responders)', async () => {
    const name = `partial-${randomHex(4)}`;
    const server = await transport();
    const client = await transport();
    const { contract } = await serveEcho(server, name);
    const newer = defineContract({
      ...contract,
      methods: { ...contract.methods, shout: contract.methods.say },
    });
    const started = Date.now();
    const err = await rejection(client.client(newer).shout({ text: 'x' }, ctx(10_000)));
    expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect(err.message).toContain(`"${name}"`);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('refuses an input JSON cannot carry with INVALID_ARGUMENT before sending it', async () => {
    const client = await transport();
    const contract = contractNamed(`bigint-${randomHex(4)}`);
    const bad = { text: 1n } as unknown as { text: string };
    const err = await rejection(client.client(contract).say(bad, ctx()));
    expect(err).toBeInstanceOf(ClawmeshError);
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('not JSON');
  });

  it('fails the calls in flight with UNAVAILABLE when the calling transport closes', async () => {
    const name = `inflight-${randomHex(4)}`;
    const server = await transport();
    const contract = contractNamed(name);
    await server.serve(contract, {
      say: async ({ text }) => {
        await new Promise((resolve) => setTimeout(resolve, 2000));
        return { text };
      },
      fail: async () => ({}),
    });
    const client = await createNatsTransport({ servers: NATS_URL });
    const pending = rejection(client.client(contract).say({ text: 'x' }, ctx(10_000)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await client.close();
    const err = await pending;
    expect(err).toMatchObject({ code: 'UNAVAILABLE' });
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('fails calls at once with UNAVAILABLE while its connection to NATS is lost, not at their deadline', async () => {
    const name = `lost-${randomHex(4)}`;
    const server = await transport();
    const contract = contractNamed(name);
    await server.serve(contract, {
      say: async ({ text }) => {
        await new Promise((resolve) => setTimeout(resolve, 2000));
        return { text };
      },
      fail: async () => ({}),
    });
    // The caller reaches NATS through a relay that then goes away (a network cut, a NATS restart).
    const target = new URL(NATS_URL);
    const sockets = new Set<net.Socket>();
    const relay = net.createServer((socket) => {
      const upstream = net.connect(Number(target.port || 4222), target.hostname);
      for (const end of [socket, upstream]) {
        sockets.add(end);
        end.on('error', () => undefined);
      }
      socket.pipe(upstream).pipe(socket);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const nc = await connect({
      servers: `nats://127.0.0.1:${(relay.address() as net.AddressInfo).port}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
    });
    cleanup.push(() => nc.close());
    const client = await createNatsTransport({ connection: nc });
    cleanup.push(() => client.close());
    const inFlight = rejection(client.client(contract).say({ text: 'x' }, ctx(10_000)));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    relay.close();
    for (const socket of sockets) socket.destroy();
    const err = await inFlight;
    expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect(err.message).toContain('connection to NATS');
    const next = await rejection(client.client(contract).say({ text: 'y' }, ctx(10_000)));
    expect(next).toMatchObject({ code: 'UNAVAILABLE' });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('uses a shared connection without closing it', async () => {
    const nc = await raw();
    const shared = await createNatsTransport({ connection: nc });
    const name = `shared-${randomHex(4)}`;
    const { contract } = await serveEcho(shared, name);
    await expect(shared.client(contract).say({ text: 's' }, ctx())).resolves.toEqual({ text: 's' });
    await shared.close();
    expect(nc.isClosed()).toBe(false);
    await expect(shared.client(contract).say({ text: 's' }, ctx())).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
  });

  it('keeps deployments apart by subject prefix', async () => {
    const name = `prefixed-${randomHex(4)}`;
    const server = await transport({ subjectPrefix: 'blue' });
    const blue = await transport({ subjectPrefix: 'blue' });
    const green = await transport({ subjectPrefix: 'green' });
    const { contract } = await serveEcho(server, name);
    await expect(blue.client(contract).say({ text: 'b' }, ctx())).resolves.toEqual({ text: 'b' });
    await expect(green.client(contract).say({ text: 'g' }, ctx())).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
  });

  it('says how to fix an unreachable NATS server', async () => {
    const err = await rejection(createNatsTransport({ servers: 'nats://127.0.0.1:1' }));
    expect(err).toMatchObject({ code: 'UNAVAILABLE' });
    expect(err.message).toContain('NATS_URL');
  });
});

describe('transport.payloadLimitBytes above the NATS server max_payload', () => {
  it('warns at start that calls are limited to the server max_payload', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
    });
    const transport = await createNatsTransport({
      servers: NATS_URL,
      maxPayloadBytes: 64 * 1024 * 1024,
      logger,
    });
    try {
      const warning = lines.find((line) => String(line.msg).includes('max_payload'));
      expect(warning).toMatchObject({ level: 40, payloadLimitBytes: 64 * 1024 * 1024 });
      expect(warning!.msg).toMatch(/calls over NATS are limited to \d+ bytes/);
    } finally {
      await transport.close();
    }
    const quiet: unknown[] = [];
    const fits = await createNatsTransport({
      servers: NATS_URL,
      maxPayloadBytes: 1024,
      logger: createLogger({ destination: { write: (line: string) => void quiet.push(line) } }),
    });
    await fits.close();
    expect(quiet).toEqual([]);
  });
});
