import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../test/support/app.ts';
import { spawnCli } from '../../test/support/process.ts';

/*
 * `clawmesh chat` as a user runs it (the built CLI), against a real server on loopback or
 * in-process in a fresh directory.
 */

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'clawmesh-chat-'));
}

/** Runs `clawmesh chat <args>` in a fresh directory; resolves with its exit code, output and directory. */
async function chat(args: string[], stdin?: string) {
  const cwd = tempDir();
  const p = spawnCli(['chat', ...args], { cwd });
  p.child.stdin?.end(stdin ?? '');
  const code = await p.exited;
  return { code, out: p.stdout(), err: p.stderr(), cwd };
}

describe('clawmesh chat --url', () => {
  let server: TestApp;
  beforeAll(async () => {
    server = await startTestApp();
  });
  afterAll(() => server.stop());

  it('talks to the server at a URL given with a trailing slash', async () => {
    const { code, out, err, cwd } = await chat([
      '--url',
      `${server.url}/`,
      '-m',
      'how many red shirts are in stock?',
    ]);
    expect(err).toBe(`connected to ${server.url}\n`);
    expect(code).toBe(0);
    expect(out).toMatch(/tool inventory\.lookupStock ok/);
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  });

  it('names the URL it probed when no server answers there', async () => {
    const { code, err } = await chat(['--url', 'http://127.0.0.1:9/', '-m', 'hello']);
    expect(code).toBe(0);
    expect(err).toMatch(/^no server answered at http:\/\/127\.0\.0\.1:9: running Clawmesh in-process$/m);
  });

  it('rejects a --url that is not a URL as a usage error, without running in-process', async () => {
    for (const url of ['notaurl', '127.0.0.1:8080', 'ftp://127.0.0.1/']) {
      const { code, err, out, cwd } = await chat(['--url', url, '-m', 'hello']);
      expect(code).toBe(2);
      expect(err).toMatch(new RegExp(`^clawmesh: --url "${url}" `));
      expect(err).not.toMatch(/in-process/);
      expect(out).toBe('');
      expect(existsSync(join(cwd, 'data'))).toBe(false);
    }
  });

  it('says it runs in-process because of --local, not that no server answered', async () => {
    const { code, err } = await chat(['--local', '--url', `${server.url}/`, '-m', 'hello']);
    expect(code).toBe(0);
    expect(err).toBe('--local: running Clawmesh in-process\n');
  });
});

describe('clawmesh chat with a server on a port fetch refuses', () => {
  let server: TestApp | undefined;
  afterAll(() => server?.stop());

  it('talks to it rather than running in-process beside it', async () => {
    // 6665-6669 are among the WHATWG "bad ports" fetch refuses; the first one free here is used.
    for (const port of [6666, 6667, 6668, 6669, 6665]) {
      server = await startTestApp({ gateway: { port, host: '127.0.0.1' } }).catch(() => undefined);
      if (server) break;
    }
    expect(server, 'no port of 6665-6669 was free').toBeDefined();
    const { code, out, err } = await chat(['--url', server!.url, '-m', 'how many red shirts are in stock?']);
    expect(err).toBe(`connected to ${server!.url}\n`);
    expect(code).toBe(0);
    expect(out).toMatch(/tool inventory\.lookupStock ok/);
  });
});

describe('clawmesh chat with a server that wants an API key', () => {
  let server: TestApp;
  beforeAll(async () => {
    server = await startTestApp({ gateway: { port: 0, host: '127.0.0.1', apiKeys: ['chat-key-123456'] } });
  });
  afterAll(() => server.stop());

  it('says which variable carries the key when the server refuses it, and works with it', async () => {
    const refused = await chat(['--url', server.url, '-m', 'hi']);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('401: missing API key');
    expect(refused.err).toContain("set CLAWMESH_API_KEY to one of the server's API keys");
    const p = spawnCli(['chat', '--url', server.url, '-m', 'hi'], {
      cwd: tempDir(),
      env: { CLAWMESH_API_KEY: 'chat-key-123456' },
    });
    p.child.stdin?.end('');
    expect(await p.exited).toBe(0);
  });
});

describe('clawmesh chat in-process validation', () => {
  it('rejects an empty message as the HTTP API does, storing nothing', async () => {
    const { code, err, out, cwd } = await chat(['--local', '-m', '']);
    expect(code).toBe(2);
    expect(err).toMatch(/^clawmesh: --message: Too small: expected string to have >=1 characters$/m);
    expect(out).toBe('');
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  });

  it('rejects a malformed --conversation id, storing nothing', async () => {
    const { code, err, cwd } = await chat(['--local', '--conversation', 'bad id!', '-m', 'hello']);
    expect(code).toBe(2);
    expect(err).toMatch(/^clawmesh: --conversation: must be 1-128 letters, digits or \. _ : -$/m);
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  });

  it('reports a line the API would refuse and goes on with the next one', async () => {
    const { code, out } = await chat(['--local'], `${'x'.repeat(32_001)}\nhello\n`);
    expect(code).toBe(0);
    expect(out).toMatch(
      /^error: invalid message: text: Too big: expected string to have <=32000 characters$/m,
    );
    expect(out).toMatch(/built-in local model/);
  });
});
