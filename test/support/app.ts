import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { type Clawmesh, type ClawmeshOptions, createClawmesh } from '../../src/runtime/clawmesh.ts';

/** A Clawmesh listening on a free loopback port, with its files in a fresh temp directory. */
export interface TestApp {
  app: Clawmesh;
  url: string;
  dir: string;
  /** POSTs JSON to the API; returns status, headers and the parsed body. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<TestResponse>;
  stop(): Promise<void>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test bodies are asserted field by field
  body: any;
}

/**
 * Starts a test app; `overrides` is merged over the defaults (port 0, silent logs, temp store and
 * audit file); `extras.logger` replaces the silent logger.
 */
export async function startTestApp(
  overrides: Record<string, unknown> = {},
  extras: Pick<ClawmeshOptions, 'skills' | 'plugins' | 'logger'> = {},
  env: NodeJS.ProcessEnv = {},
): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'clawmesh-test-'));
  const { config } = loadConfig({
    env,
    cwd: dir,
    overrides: {
      gateway: { port: 0 },
      store: { kind: 'sqlite', path: join(dir, 'clawmesh.db') },
      audit: { path: join(dir, 'audit.jsonl') },
      log: { level: 'silent' },
      ...overrides,
    },
  });
  const app = await createClawmesh({ config, baseDir: process.cwd(), logger: silentLogger(), ...extras });
  const url = await app.listen();
  return {
    app,
    url,
    dir,
    async post(path, body, headers = {}) {
      const response = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // keep the text
      }
      return { status: response.status, headers: response.headers, body: parsed };
    },
    stop: () => app.stop(),
  };
}
