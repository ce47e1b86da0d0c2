import { mkdtempSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from './support/process.ts';

/*
 * A service address that takes the connection and closes it without an answer — a TCP relay whose
 * target is down, as Docker's published ports do for a container that stopped listening —
 * is reported as unreachable by `clawmesh status` and `clawmesh doctor` (the built CLI), which
 * then exit 1: they never end silently with 0.
 */

let relay: Server;
let relayUrl: string;

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  const target = await closedPort();
  relay = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    client.on('data', (chunk) => upstream.write(chunk));
    client.on('error', () => undefined);
    upstream.on('error', () => client.end());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => relay.close(() => resolve()));
});

async function run(args: string[], env: Record<string, string>) {
  const p = spawnCli(args, { cwd: mkdtempSync(join(tmpdir(), 'clawmesh-closed-')), env });
  const code = await p.exited;
  return { code, out: p.stdout(), err: p.stderr() };
}

describe('a service address that closes connections without answering', () => {
  it('is unreachable for clawmesh status over http, which exits 1', async () => {
    const { code, out } = await run(['status'], { CLAWMESH_TRANSPORT: 'http', MODELS_SERVICE_URL: relayUrl });
    expect(out).toMatch(new RegExp(`^models +${relayUrl} .* unreachable: `, 'm'));
    expect(out).toContain('1 service over http: 0 ready, 1 unreachable');
    expect(code).toBe(1);
  }, 20_000);

  it('fails the service check of clawmesh doctor, which exits 1', async () => {
    const { code, out } = await run(['doctor'], {
      CLAWMESH_ROLES: 'gateway',
      CLAWMESH_TRANSPORT: 'http',
      CONVERSATION_SERVICE_URL: relayUrl,
    });
    expect(out).toMatch(/^✗ service conversation: /m);
    expect(out).toMatch(/check\(s\) failed\n$/);
    expect(code).toBe(1);
  }, 20_000);

  it('lets clawmesh chat run in-process, as for an address where no server answers', async () => {
    const { code, out, err } = await run(
      ['chat', '--url', relayUrl, '-m', 'how many red shirts are in stock?'],
      {},
    );
    expect(err).toContain(`no server answered at ${relayUrl}`);
    expect(out).toContain('red shirt: 42 units in stock');
    expect(code).toBe(0);
  }, 30_000);
});
