import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createCallContext } from '../core/context.ts';
import { defineContract } from '../core/contract.ts';
import { ClawmeshError } from '../core/errors.ts';
import { randomHex } from '../core/ids.ts';
import { silentLogger } from '../observability/logger.ts';
import { createClawmesh } from '../runtime/clawmesh.ts';
import { createNatsTransport, type NatsTransport } from '../transport/nats.ts';
import type { ServiceInstance } from '../transport/nats-discovery.ts';
import { type CliIo, runStatus } from './status.ts';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

function captureIo(env: Record<string, string | undefined> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: { write: (text: string) => out.push(text) },
    stderr: { write: (text: string) => err.push(text) },
    env,
  };
  return { io, out: () => out.join(''), err: () => err.join('') };
}

const contractNamed = (name: string, version: string) =>
  defineContract({
    name,
    version,
    methods: {
      lookup: { input: z.object({ item: z.string() }), output: z.object({ units: z.number() }) },
      refuse: { input: z.object({}), output: z.object({}) },
    },
  });

describe('clawmesh status', () => {
  const transports: NatsTransport[] = [];
  afterEach(async () => {
    for (const transport of transports.splice(0)) await transport.close();
  });

  /** Two services over NATS, one of them with two replicas, with a few calls made. */
  async function runServices() {
    const suffix = randomHex(4);
    const inventory = contractNamed(`skill.inventory-${suffix}`, '1.4.0');
    const support = contractNamed(`support-${suffix}`, '0.2.0');
    const handlers = {
      lookup: async () => ({ units: 42 }),
      refuse: async () => {
        throw new ClawmeshError('PERMISSION_DENIED', 'not for you');
      },
    };
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => createNatsTransport({ servers: NATS_URL })));
    transports.push(a!, b!, c!);
    await a!.serve(inventory, handlers);
    await b!.serve(inventory, handlers);
    await a!.serve(support, handlers);
    const ctx = () => createCallContext({ timeoutMs: 5000 });
    for (let i = 0; i < 6; i += 1) await c!.client(inventory).lookup({ item: 'shirt' }, ctx());
    await c!
      .client(support)
      .refuse({}, ctx())
      .catch(() => undefined);
    return { inventory: inventory.name, support: support.name };
  }

  it('prints the running instances with their endpoints and stats as a table', async () => {
    const names = await runServices();
    const { io, out, err } = captureIo({ NATS_URL });
    expect(await runStatus([], io)).toBe(0);
    expect(err()).toBe('');
    const text = out();
    expect(text.split('\n')[0]).toMatch(
      /^SERVICE\s+VERSION\s+INSTANCE\s+HOST\s+ENDPOINT\s+REQUESTS\s+ERRORS\s+AVG MS/,
    );
    const inventoryRows = text.split('\n').filter((line) => line.startsWith(`${names.inventory} `));
    expect(inventoryRows).toHaveLength(2);
    for (const row of inventoryRows)
      expect(row).toMatch(/\s1\.4\.0\s+\S+\s+\S+:\d+\s+lookup\s+\d+\s+0\s+\d+\.\d{3}/);
    const supportRow = text.split('\n').findIndex((line) => line.startsWith(`${names.support} `));
    expect(supportRow).toBeGreaterThan(0);
    const supportLines = text
      .split('\n')
      .slice(supportRow, supportRow + 2)
      .join('\n');
    expect(supportLines).toMatch(/refuse\s+1\s+1\s+\d+\.\d{3}\s+not for you/);
    expect(text).toMatch(/\d+ instances of \d+ services on nats:\/\/127\.0\.0\.1:4222/);
  });

  it('prints the instances as JSON with --json, counting every call', async () => {
    const names = await runServices();
    const { io, out } = captureIo();
    expect(await runStatus(['--nats-url', NATS_URL, '--json'], io)).toBe(0);
    const instances = JSON.parse(out()) as ServiceInstance[];
    const inventory = instances.filter((instance) => instance.contract === names.inventory);
    expect(inventory).toHaveLength(2);
    expect(new Set(inventory.map((instance) => instance.id)).size).toBe(2);
    const lookups = inventory.map(
      (instance) => instance.endpoints.find((e) => e.name === 'lookup')!.requests,
    );
    expect(lookups.reduce((sum, n) => sum + n, 0)).toBe(6);
    const support = instances.find((instance) => instance.contract === names.support)!;
    expect(support).toMatchObject({ name: names.support, version: '0.2.0' });
    expect(support.endpoints.find((e) => e.name === 'refuse')).toMatchObject({
      requests: 1,
      errors: 1,
      lastError: 'not for you',
    });
  });

  it('fails with exit code 1 and says how to fix it when NATS cannot be reached', async () => {
    const { io, out, err } = captureIo({ NATS_URL: 'nats://127.0.0.1:1' });
    expect(await runStatus([], io)).toBe(1);
    expect(out()).toBe('');
    expect(err()).toContain('cannot reach NATS at nats://127.0.0.1:1');
    expect(err()).toContain('--nats-url');
    expect(err()).toContain('NATS_URL');
  });

  it('rejects an unknown option with exit code 2 and the usage', async () => {
    const { io, err } = captureIo();
    expect(await runStatus(['--nope'], io)).toBe(2);
    expect(err()).toContain('Usage: clawmesh status');
  });
});

describe('clawmesh status --subject-prefix', () => {
  it("lists only one deployment's instances when several share the NATS server", async () => {
    const contract = contractNamed(`prefixed-${randomHex(4)}`, '1.0.0');
    const handlers = { lookup: async () => ({ units: 1 }), refuse: async () => ({}) };
    const ours = `ours${randomHex(3)}`;
    const theirs = `theirs${randomHex(3)}`;
    const [mine, other] = await Promise.all([
      createNatsTransport({ servers: NATS_URL, subjectPrefix: ours }),
      createNatsTransport({ servers: NATS_URL, subjectPrefix: theirs }),
    ]);
    try {
      await mine!.serve(contract, handlers);
      await other!.serve(contract, handlers);
      const all = captureIo({ NATS_URL });
      expect(await runStatus(['--json'], all.io)).toBe(0);
      const listed = (JSON.parse(all.out()) as ServiceInstance[]).filter((i) => i.contract === contract.name);
      expect(listed).toHaveLength(2);

      const flag = captureIo({ NATS_URL });
      expect(await runStatus(['--json', '--subject-prefix', ours], flag.io)).toBe(0);
      const only = (JSON.parse(flag.out()) as ServiceInstance[]).filter((i) => i.contract === contract.name);
      expect(only).toHaveLength(1);
      expect(only[0]!.endpoints[0]!.subject.startsWith(`${ours}.`)).toBe(true);

      const env = captureIo({ NATS_URL, CLAWMESH_NATS__SUBJECT_PREFIX: theirs });
      expect(await runStatus(['--json'], env.io)).toBe(0);
      const viaEnv = (JSON.parse(env.out()) as ServiceInstance[]).filter((i) => i.contract === contract.name);
      expect(viaEnv.map((i) => i.endpoints[0]!.subject.split('.')[0])).toEqual([theirs]);

      // --config: the deployment's own nats.url and nats.subjectPrefix, as its services read them.
      const dir = mkdtempSync(join(tmpdir(), 'clawmesh-status-config-'));
      const file = join(dir, 'clawmesh.config.yaml');
      writeFileSync(file, `transport:\n  kind: nats\nnats:\n  url: ${NATS_URL}\n  subjectPrefix: ${ours}\n`);
      const fromConfig = captureIo({});
      expect(await runStatus(['--json', '--config', file], fromConfig.io)).toBe(0);
      const configured = (JSON.parse(fromConfig.out()) as ServiceInstance[]).filter(
        (i) => i.contract === contract.name,
      );
      expect(configured.map((i) => i.endpoints[0]!.subject.split('.')[0])).toEqual([ours]);
    } finally {
      await Promise.all([mine!.close(), other!.close()]);
    }
  });
});

describe('clawmesh status over http', () => {
  const apps: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.stop();
  });

  /** A role of an http deployment on a free port; resolves with its URL. */
  async function role(roles: string[], urls: Record<string, string> = {}): Promise<string> {
    const app = await createClawmesh({
      baseDir: mkdtempSync(join(tmpdir(), 'clawmesh-status-http-')),
      logger: silentLogger(),
      configOptions: {
        env: {},
        overrides: {
          roles,
          transport: { kind: 'http', urls },
          store: { kind: 'memory', lease: 'memory' },
          audit: { enabled: false },
          gateway: { port: 0 },
        },
      },
    });
    apps.push(app);
    return app.listen();
  }

  /** A port nothing listens on. */
  async function closedPort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }

  it('asks each <SERVICE>_SERVICE_URL for its health and readiness, and exits 1 when one is unreachable', async () => {
    const models = await role(['models']);
    const dead = `http://127.0.0.1:${await closedPort()}`;
    // A conversation role whose models service is gone: alive, not ready.
    const conversation = await role(['conversation'], { models: dead });
    const env = {
      CLAWMESH_TRANSPORT: 'http',
      MODELS_SERVICE_URL: models,
      CONVERSATION_SERVICE_URL: conversation,
      SKILLS_INVENTORY_SERVICE_URL: `http://user:secret@127.0.0.1:${new URL(dead).port}`,
    };
    const table = captureIo(env);
    expect(await runStatus([], table.io)).toBe(1);
    expect(table.out()).toMatch(/^SERVICE\s+URL\s+INSTANCE\s+ROLES\s+UPTIME S\s+STATE$/m);
    expect(table.out()).toMatch(/^models\s+http:\/\/127\.0\.0\.1:\d+\s+\S+\s+models\s+\d+\s+ready$/m);
    expect(table.out()).toMatch(/^conversation\s.*\sconversation\s+\d+\s+not ready: .*models/m);
    expect(table.out()).toMatch(
      /^skills\.inventory\s+http:\/\/user:\*\*\*@127\.0\.0\.1:\d+\s.*unreachable: ECONNREFUSED/m,
    );
    expect(table.out()).not.toContain('secret');
    expect(table.out()).toContain('3 services over http: 1 ready, 1 unreachable');

    const json = captureIo(env);
    expect(await runStatus(['--json'], json.io)).toBe(1);
    const listed = JSON.parse(json.out()) as { service: string; reachable: boolean; ready: boolean }[];
    expect(listed.map(({ service, reachable, ready }) => ({ service, reachable, ready }))).toEqual([
      { service: 'conversation', reachable: true, ready: false },
      { service: 'models', reachable: true, ready: true },
      { service: 'skills.inventory', reachable: false, ready: false },
    ]);

    const allUp = captureIo({ MODELS_SERVICE_URL: models });
    expect(await runStatus(['--transport', 'http'], allUp.io)).toBe(0);
  });

  it('asks each replica of a comma-separated <SERVICE>_SERVICE_URL, one row each', async () => {
    const first = await role(['models']);
    const second = await role(['models']);
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const env = { CLAWMESH_TRANSPORT: 'http', MODELS_SERVICE_URL: `${first}, ${second},${dead}` };
    const table = captureIo(env);
    expect(await runStatus([], table.io)).toBe(1);
    const rows = table
      .out()
      .split('\n')
      .filter((line) => line.startsWith('models'));
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(new RegExp(`^models\\s+${first}\\s+\\S+\\s+models\\s+\\d+\\s+ready$`));
    expect(rows[1]).toMatch(new RegExp(`^models\\s+${second}\\s+\\S+\\s+models\\s+\\d+\\s+ready$`));
    expect(rows[2]).toMatch(/unreachable: ECONNREFUSED$/);
    expect(table.out()).not.toContain('ERR_INVALID_URL');
    expect(table.out()).toContain('1 service, 3 URLs over http: 2 ready, 1 unreachable');

    const up = captureIo({ MODELS_SERVICE_URL: `${first},${second}` });
    expect(await runStatus(['--transport', 'http', '--json'], up.io)).toBe(0);
    const listed = JSON.parse(up.out()) as { url: string; ready: boolean }[];
    expect(listed.map(({ url, ready }) => ({ url, ready }))).toEqual([
      { url: first, ready: true },
      { url: second, ready: true },
    ]);
  });

  it("reads an http deployment's transport.urls from --config, the variables winning", async () => {
    const models = await role(['models']);
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const dir = mkdtempSync(join(tmpdir(), 'clawmesh-status-config-'));
    const file = join(dir, 'clawmesh.config.yaml');
    writeFileSync(
      file,
      `transport:\n  kind: http\n  urls:\n    models: ${dead}\n    conversation: ${dead}\n`,
    );
    const io = captureIo({ MODELS_SERVICE_URL: models });
    expect(await runStatus(['-c', file, '--json'], io.io)).toBe(1);
    const listed = JSON.parse(io.out()) as { service: string; url: string; reachable: boolean }[];
    expect(listed.map(({ service, url, reachable }) => ({ service, url, reachable }))).toEqual([
      { service: 'conversation', url: dead, reachable: false },
      { service: 'models', url: models, reachable: true },
    ]);
    const broken = captureIo({});
    writeFileSync(file, 'transport:\n  kind: carrier-pigeon\n');
    expect(await runStatus(['--config', file], broken.io)).toBe(2);
    expect(broken.err()).toContain('transport.kind');
  });

  it('says which variables to set when no service URL is, and refuses an unknown transport', async () => {
    const none = captureIo({ CLAWMESH_TRANSPORT: 'http' });
    expect(await runStatus([], none.io)).toBe(1);
    expect(none.err()).toContain('CONVERSATION_SERVICE_URL');
    const bad = captureIo({});
    expect(await runStatus(['--transport', 'carrier-pigeon'], bad.io)).toBe(2);
    expect(bad.err()).toContain('--transport must be nats or http');
  });
});
