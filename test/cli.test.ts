import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type CliProcess, spawnCli } from './support/process.ts';

const SLOW_SKILL = fileURLToPath(new URL('./fixtures/slow-skill.mjs', import.meta.url));

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'clawmesh-cli-'));
}

const running: CliProcess[] = [];
afterEach(() => {
  for (const p of running.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

function start(dir: string, env: Record<string, string> = {}): CliProcess {
  const p = spawnCli(['start'], { cwd: dir, env: { PORT: '0', ...env } });
  running.push(p);
  return p;
}

describe('clawmesh start', () => {
  it('serves /healthz and a turn, and says it listens on loopback only without API keys', async () => {
    const dir = tempDir();
    const p = start(dir);
    const warning = await p.waitForLog(/no API keys configured/);
    expect(warning.msg).toMatch(/127\.0\.0\.1 only/);
    const { url } = (await p.waitForLog(/^Clawmesh listening/)) as { url: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const response = await fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'u1', text: 'how many red shirts are in stock?' }),
    });
    const body = (await response.json()) as { toolCalls: Array<{ skill: string }> };
    expect(body.toolCalls[0]?.skill).toBe('inventory');
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });

  it('finishes a turn in flight on SIGTERM, then exits 0', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'clawmesh.config.yaml'), `skills:\n  load: ['${SLOW_SKILL}']\n`);
    const p = start(dir, { SLOW_SKILL_MS: '700' });
    const { url } = (await p.waitForLog(/^Clawmesh listening/)) as { url: string };
    const inFlight = fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'u1', text: 'pause for message 7' }),
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    p.child.kill('SIGTERM');
    const response = await inFlight;
    expect(response.status).toBe(200);
    const body = (await response.json()) as { toolCalls: Array<{ result: { n: number } }> };
    expect(body.toolCalls[0]?.result.n).toBe(7);
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toMatch(/shutting down/);
  });

  it('stops with a message naming the bad key when the config is invalid', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'clawmesh.config.yaml'), 'gateway:\n  port: eighty\n');
    const p = spawnCli(['start'], { cwd: dir });
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toMatch(/gateway\.port/);
  });

  it.each([
    [['start', '--confg', 'x.yaml'], "Unknown option '--confg'"],
    [['doctor', '--config'], "Option '-c, --config <value>' argument missing"],
  ])('exits 2 on a mistyped option (%j), naming it', async (args, named) => {
    const p = spawnCli(args, { cwd: tempDir(), env: { PORT: '0' } });
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toContain(named);
    expect(p.stderr()).toContain('clawmesh --help');
  });

  it('exits 2 on a word doctor does not take, naming it', async () => {
    const p = spawnCli(['doctor', 'extra'], { cwd: tempDir(), env: { PORT: '0' } });
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toContain('doctor takes no arguments, got "extra"');
  });

  it('names the environment variable that set a bad key', async () => {
    const p = spawnCli(['start'], { cwd: tempDir(), env: { CLAWMESH_STORE__KIND: 'mongo' } });
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toMatch(/store\.kind.*CLAWMESH_STORE__KIND/);
  });

  it('stops on a DATABASE_URL that is not a PostgreSQL URL, showing the shape expected', async () => {
    const p = spawnCli(['start'], {
      cwd: tempDir(),
      env: { CLAWMESH_STORE: 'postgres', DATABASE_URL: 'notaurl' },
    });
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toBe(
      'clawmesh: invalid configuration:\n  postgres.url: "notaurl" is not a PostgreSQL URL such as postgres://user:password@host:5432/database (set by DATABASE_URL)\n',
    );
  });
});

describe('clawmesh start <role> on the local transport', () => {
  it('refuses --skills on a role other than skills, saying how to start a skill host', async () => {
    const p = spawnCli(['start', 'models', '--skills', 'inventory'], { cwd: tempDir(), env: { PORT: '0' } });
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toContain('clawmesh start skills --skills inventory');
  });

  it('warns a skills role that no other process can call it, not that it cannot call others', async () => {
    const p = spawnCli(['start', 'skills'], { cwd: tempDir(), env: { PORT: '0' } });
    running.push(p);
    const warning = await p.waitForLog(/local transport/);
    expect(warning.msg).toMatch(/no other process can call the skills this process serves/);
    expect(warning.msg).not.toMatch(/cannot be called/);
    await p.waitForLog(/^Clawmesh \(skills\) listening/);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });

  it('names the default model in the start line only where the models role runs', async () => {
    const conversation = spawnCli(['start', 'conversation'], { cwd: tempDir(), env: { PORT: '0' } });
    const models = spawnCli(['start', 'models'], { cwd: tempDir(), env: { PORT: '0' } });
    running.push(conversation, models);
    const [withoutModels, withModels] = await Promise.all([
      conversation.waitForLog(/^Clawmesh \(conversation\) listening/),
      models.waitForLog(/^Clawmesh \(models\) listening/),
    ]);
    expect(withoutModels).not.toHaveProperty('model');
    expect(withModels).toMatchObject({ model: 'local' });
    conversation.child.kill('SIGTERM');
    models.child.kill('SIGTERM');
    expect(await Promise.all([conversation.exited, models.exited])).toEqual([0, 0]);
  });

  it('warns a conversation role which services it cannot reach', async () => {
    const p = spawnCli(['start', 'conversation'], { cwd: tempDir(), env: { PORT: '0' } });
    running.push(p);
    const warning = await p.waitForLog(/local transport/);
    expect(warning).toMatchObject({ unreachable: ['models', 'skills'] });
    p.child.kill('SIGTERM');
    await p.exited;
  });
});

describe('clawmesh doctor', () => {
  it('passes on the defaults and checks the store', async () => {
    const p = spawnCli(['doctor'], { cwd: tempDir() });
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toMatch(/✓ store: sqlite/);
    expect(p.stdout()).toMatch(/all checks passed/);
  });

  it('fails naming the key of an invalid config', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'clawmesh.config.yaml'), 'agents:\n  - id: "bad id!"\n');
    const p = spawnCli(['doctor'], { cwd: dir });
    expect(await p.exited).toBe(1);
    expect(p.stdout()).toMatch(/✗ config: .*agents\.0\.id/s);
  });

  it('fails when a plugin cannot be loaded', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'clawmesh.config.yaml'), 'plugins:\n  - ./missing-plugin.js\n');
    const p = spawnCli(['doctor'], { cwd: dir });
    expect(await p.exited).toBe(1);
    expect(p.stdout()).toMatch(/✗ plugins: .*missing-plugin/);
  });
});

describe('clawmesh chat', () => {
  it('answers in-process when no server runs', async () => {
    const p = spawnCli(['chat', '--url', 'http://127.0.0.1:9', '-m', 'how many red shirts are in stock?'], {
      cwd: tempDir(),
    });
    expect(await p.exited).toBe(0);
    expect(p.stderr()).toMatch(/in-process/);
    expect(p.stdout()).toMatch(/tool inventory\.lookupStock ok/);
    expect(p.stdout()).toMatch(/red shirt/i);
  });

  it('talks to a running server, one line at a time from stdin', async () => {
    const dir = tempDir();
    const server = start(dir);
    const { url } = (await server.waitForLog(/^Clawmesh listening/)) as { url: string };
    const chat = spawnCli(['chat', '--url', url, '--user', 'terminal'], { cwd: tempDir() });
    chat.child.stdin?.end('hello\nhow many blue shirts are in stock?\n/exit\n');
    expect(await chat.exited).toBe(0);
    expect(chat.stderr()).toMatch(new RegExp(`connected to ${url}`));
    expect(chat.stdout()).toMatch(/blue shirt/i);
  });

  it('rejects an unknown command with a usage message', async () => {
    const p = spawnCli(['frobnicate']);
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toMatch(/unknown command "frobnicate"/);
  });
});

describe('agent checks at start', () => {
  it('stops naming an agent skill that is not loaded', async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'clawmesh.config.yaml'),
      'agents:\n  - id: shop\n    skills: [inventory, invetory]\n',
    );
    const p = spawnCli(['start'], { cwd: dir, env: { PORT: '0' } });
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toMatch(/agents\.0\.skills: no skill named "invetory"/);
  });

  it('doctor accepts agents whose model is a tier, a deployment or auto, as start does', async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'clawmesh.config.yaml'),
      [
        'models:',
        '  deployments: { mine: { provider: local } }',
        'agents:',
        '  - { id: quick, model: fast }',
        '  - { id: own, model: mine }',
        '  - { id: routed, model: auto }',
        '',
      ].join('\n'),
    );
    const p = spawnCli(['doctor'], { cwd: dir });
    await p.exited;
    expect(p.stdout()).toMatch(/✓ agents: quick, own, routed;/);
  });

  it('doctor fails a models config that start refuses: a rule naming no tier, a tier naming no target', async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'clawmesh.config.yaml'),
      ['models:', '  tiers: { vision: [nosuch] }', '  routing: { rules: [{ tier: deep }] }', ''].join('\n'),
    );
    const p = spawnCli(['doctor'], { cwd: dir });
    expect(await p.exited).toBe(1);
    expect(p.stdout()).toMatch(
      /✗ models: .*(models\.routing\.rules\.0\.tier: no tier "deep"|models\.tiers\.vision\.0)/,
    );
    const start = spawnCli(['start'], { cwd: dir, env: { PORT: '0' } });
    expect(await start.exited).toBe(2);
  });

  it('doctor names an agent model whose provider is not running', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'clawmesh.config.yaml'), 'agents:\n  - id: smart\n    model: openai/gpt-4o\n');
    const p = spawnCli(['doctor'], { cwd: dir });
    expect(await p.exited).toBe(1);
    expect(p.stdout()).toMatch(
      /✗ agents: .*agents\.0\.model: no model provider "openai" \(set OPENAI_API_KEY/s,
    );
  });
});

describe('clawmesh status', () => {
  it('takes --subject-prefix, as its usage says, and lists only that deployment', async () => {
    const p = spawnCli(['status', '--json', '--subject-prefix', `nobody${process.pid}`], {
      env: { NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' },
    });
    expect(await p.exited).toBe(0);
    expect(JSON.parse(p.stdout())).toEqual([]);
  });
});

describe('clawmesh status options', () => {
  it('takes --transport http, as its usage says, and prints its own usage with --help', async () => {
    const http = spawnCli(['status', '--transport', 'http'], { cwd: tempDir() });
    expect(await http.exited).toBe(1);
    expect(http.stderr()).not.toContain('Unknown option');
    expect(http.stderr()).toContain('no service URL is set');

    const help = spawnCli(['status', '--help'], { cwd: tempDir() });
    expect(await help.exited).toBe(0);
    expect(help.stdout()).toContain('Usage: clawmesh status');
    expect(help.stdout()).toContain('<SERVICE>_SERVICE_URL');
  });
});
