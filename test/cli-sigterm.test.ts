import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type CliProcess, spawnCli } from './support/process.ts';

/*
 * `clawmesh start` whose stdout reader went away (a log shipper that died, `clawmesh start | head`):
 * its log lines fail with EPIPE, and SIGTERM must still end the process. With pino's default
 * asynchronous destination the lines written after the pipe closed waited in a buffer that
 * pino flushes at exit, and that flush retries a broken pipe every 100 ms forever.
 */

let server: CliProcess | undefined;

afterEach(() => {
  if (server?.child.exitCode === null) server.child.kill('SIGKILL');
  server = undefined;
});

describe('clawmesh start and SIGTERM', () => {
  it('still exits on SIGTERM', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'h3-closed-stdout-'));
    server = spawnCli(['start'], { cwd, env: { PORT: '0' } });
    await server.waitForLog(/^Clawmesh listening/);
    server.child.stdout?.destroy();
    server.child.kill('SIGTERM');
    const code = await Promise.race([
      server.exited,
      new Promise<string>((resolve) => setTimeout(() => resolve('still running after 8 s'), 8000)),
    ]);
    expect(code).toBe(0);
  }, 15_000);

  it('stops gracefully on a SIGTERM that comes while it is still starting to listen', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'h3-early-sigterm-'));
    server = spawnCli(['start'], { cwd, env: { PORT: '0' } });
    // Fastify's own line, written before the start is finished (and before 'Clawmesh listening').
    await server.waitForLog(/^Server listening at/);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.stdout()).toMatch(/"msg":"stopped"/);
  }, 15_000);
});
