import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { createClawmesh } from '../src/runtime/clawmesh.ts';

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('transport.urls with comma-separated replicas (http transport)', () => {
  const apps: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.stop();
  });

  /** Starts roles from a config file, as `clawmesh start --config` does; resolves with the URL. */
  async function fromFile(roles: string[], yaml: string): Promise<string> {
    const baseDir = mkdtempSync(join(tmpdir(), 'clawmesh-replica-urls-'));
    const file = join(baseDir, 'clawmesh.config.yaml');
    writeFileSync(file, `${yaml}\nstore: { kind: memory, lease: memory }\naudit: { enabled: false }\n`);
    const app = await createClawmesh({
      baseDir,
      logger: silentLogger(),
      configOptions: { file, env: {}, overrides: { roles, gateway: { port: 0 } } },
    });
    apps.push(app);
    return app.listen();
  }

  it('reads a config file listing a service’s replicas and reaches the live one', async () => {
    const models = await fromFile(['models', 'skills'], 'transport: { kind: http }');
    const conversation = await fromFile(
      ['conversation'],
      `transport:\n  kind: http\n  urls:\n    models: "${models}"\n    skills: "${models}"`,
    );
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const gateway = await fromFile(
      ['gateway'],
      `transport:\n  kind: http\n  urls:\n    conversation: "${dead}, ${conversation}"`,
    );
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${gateway}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'replicas', text: 'hello' }),
      });
      expect(response.status).toBe(200);
      expect(((await response.json()) as { text: string }).text).toContain('Clawmesh');
    }
  });

  it('names the replica that is not a URL, without repeating the value', () => {
    const baseDir = mkdtempSync(join(tmpdir(), 'clawmesh-replica-urls-'));
    const file = join(baseDir, 'clawmesh.config.yaml');
    writeFileSync(
      file,
      'transport:\n  kind: http\n  urls:\n    models: "http://10.0.0.5:8081, 10.0.0.6:8081/?token=secret"\n',
    );
    expect(() => loadConfig({ file, env: {}, cwd: baseDir })).toThrow(
      /transport\.urls\.models: URL 2 of 2 is not a URL \(expected a URL, or comma-separated URLs of replicas\)/,
    );
    expect(() => loadConfig({ file, env: {}, cwd: baseDir })).not.toThrow(/secret/);
  });
});
