import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from './support/process.ts';

/**
 * A NATS address that accepts TCP but never speaks (another service's port, a firewall that
 * swallows the handshake): the one-shot commands report it and exit, they do not hang.
 */
describe('one-shot commands against a NATS address that never answers', () => {
  let silent: net.Server;
  const sockets = new Set<net.Socket>();
  let url: string;
  beforeAll(async () => {
    silent = net.createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    url = `nats://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('clawmesh status says NATS did not answer and exits 1', async () => {
    const cli = spawnCli(['status', '--nats-url', url]);
    const code = await Promise.race([cli.exited, new Promise((r) => setTimeout(() => r('hung'), 20_000))]);
    if (code === 'hung') cli.child.kill('SIGKILL');
    expect(code).toBe(1);
    expect(cli.stderr()).toContain(`cannot reach NATS at ${url}`);
  });

  it('clawmesh doctor reports the failed check and exits 1', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'clawmesh-silent-nats-'));
    const cli = spawnCli(['doctor'], { cwd, env: { CLAWMESH_TRANSPORT: 'nats', NATS_URL: url } });
    const code = await Promise.race([cli.exited, new Promise((r) => setTimeout(() => r('hung'), 20_000))]);
    if (code === 'hung') cli.child.kill('SIGKILL');
    expect(code).toBe(1);
    expect(cli.stdout()).toMatch(/check\(s\) failed/);
  });
});
