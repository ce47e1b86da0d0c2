import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from './support/process.ts';

/*
 * `clawmesh doctor` as an operator runs it (the built CLI): each dependency the config names is
 * checked against a real server or a loopback stand-in, and a problem is printed with its fix.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Runs `clawmesh doctor` in a fresh directory; resolves with its exit code and the lines it printed. */
async function doctor(env: Record<string, string> = {}, args: string[] = []) {
  const cwd = mkdtempSync(join(tmpdir(), 'clawmesh-doctor-'));
  const p = spawnCli(['doctor', ...args], { cwd, env });
  const code = await p.exited;
  return { code, out: p.stdout(), lines: p.stdout().split('\n'), cwd };
}

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The line of a check, and the fix printed under it. */
function lineOf(lines: string[], check: string): { line: string; fix: string | undefined } {
  const index = lines.findIndex((line) => line.slice(2).startsWith(`${check}:`));
  if (index < 0) throw new Error(`no "${check}" line in:\n${lines.join('\n')}`);
  const next = lines[index + 1] ?? '';
  return { line: lines[index]!, fix: next.startsWith('    fix: ') ? next.slice(9) : undefined };
}

/**
 * A loopback stand-in for a model server and a Clawmesh service: `GET /v1/models` (OpenAI),
 * `GET /v1/models` with `x-api-key` (Anthropic) and `GET /healthz`, checking the key it was given.
 */
let fake: Server;
let fakeUrl: string;
/** The OTLP exports the stand-in took (`POST /v1/traces`). */
const exports: { contentType: string; body: string }[] = [];
const GOOD_KEY = 'sk-doctor-good-key';
const OTLP_KEY = 'otlp key/with=signs';
const TG_TOKEN = '123456:doctor-good-token';
const SLACK_TOKEN = 'xoxb-doctor-good-token';
const DISCORD_TOKEN = 'discord-doctor-good-token';
const WHATSAPP_TOKEN = 'EAAG-doctor-good-token';

beforeAll(async () => {
  fake = createServer((req, res) => {
    if (req.method === 'POST' && (req.url === '/v1/traces' || req.url === '/otlp/traces')) {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        exports.push({
          contentType: String(req.headers['content-type']),
          body: Buffer.concat(chunks).toString(),
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
      return;
    }
    const key = req.headers.authorization?.replace(/^Bearer /, '') ?? req.headers['x-api-key'];
    // A tracing backend that wants an API key (as hosted ones do).
    if (req.method === 'POST' && req.url === '/keyed/v1/traces') {
      req.resume();
      return res.writeHead(key === OTLP_KEY ? 200 : 401).end('{}');
    }
    if (req.url === '/healthz') return res.writeHead(200).end('{"status":"ok"}');
    // Telegram's getMe and Slack's auth.test, for the bot tokens TG_TOKEN and SLACK_TOKEN only.
    if (req.url?.startsWith('/telegram/bot')) {
      if (req.url === `/telegram/bot${TG_TOKEN}/getMe`) {
        return res.writeHead(200).end('{"ok":true,"result":{"id":123,"is_bot":true,"username":"shop_bot"}}');
      }
      return res.writeHead(401).end('{"ok":false,"error_code":401,"description":"Unauthorized"}');
    }
    // Discord's GET /users/@me (Authorization: Bot <token>) and the WhatsApp number's Graph node.
    if (req.url === '/discord/api/v10/users/@me') {
      return req.headers.authorization === `Bot ${DISCORD_TOKEN}`
        ? res.writeHead(200).end('{"id":"42","username":"shopbot","bot":true}')
        : res.writeHead(401).end('{"message":"401: Unauthorized","code":0}');
    }
    if (req.url === '/graph/v21.0/1055') {
      return key === WHATSAPP_TOKEN
        ? res.writeHead(200).end('{"verified_name":"Shop","display_phone_number":"+1 555 0100","id":"1055"}')
        : res
            .writeHead(401)
            .end('{"error":{"message":"Error validating access token","type":"OAuthException","code":190}}');
    }
    if (req.url === '/slack/api/auth.test') {
      const ok = key === SLACK_TOKEN;
      return res
        .writeHead(200)
        .end(ok ? '{"ok":true,"user":"shopbot"}' : '{"ok":false,"error":"invalid_auth"}');
    }
    if (req.url === '/v1/models' || req.url === '/anthropic/v1/models') {
      if (key !== GOOD_KEY) return res.writeHead(401).end('{"error":{"message":"bad key"}}');
      return res
        .writeHead(200, { 'content-type': 'application/json' })
        .end('{"data":[{"id":"a"},{"id":"b"}]}');
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => fake.close(() => resolve()));
});

describe('clawmesh doctor', () => {
  it('passes on the defaults, checking the SQLite store, the in-process bus and transport', async () => {
    const { code, lines, out, cwd } = await doctor();
    expect(code).toBe(0);
    expect(lineOf(lines, 'store').line).toMatch(
      /^✓ store: sqlite at .*clawmesh\.db \(created at the first start: its folder is writable\)$/,
    );
    // A check leaves nothing behind: no database, no data folder.
    expect(existsSync(join(cwd, 'data'))).toBe(false);
    expect(lineOf(lines, 'bus').line).toMatch(/^✓ bus: memory/);
    expect(lineOf(lines, 'transport').line).toMatch(/^✓ transport: local/);
    expect(lineOf(lines, 'audit').line).toMatch(/^✓ audit: appending to .*data\/audit\.jsonl$/);
    // The channels are listed, off with what turns them on.
    expect(lineOf(lines, 'channel telegram').line).toBe(
      '- channel telegram: off (set TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_SECRET)',
    );
    expect(lineOf(lines, 'tracing').line).toBe(
      '- tracing: off (set OTEL_EXPORTER_OTLP_ENDPOINT to export spans over OTLP/HTTP)',
    );
    expect(out).toMatch(/all checks passed\n$/);
  });

  it('posts an empty export to the OTLP endpoint in the configured encoding', async () => {
    exports.length = 0;
    const proto = await doctor({ OTEL_EXPORTER_OTLP_ENDPOINT: fakeUrl });
    expect(proto.code).toBe(0);
    expect(lineOf(proto.lines, 'tracing').line).toBe(
      `✓ tracing: spans to ${fakeUrl}/v1/traces as http/protobuf`,
    );
    const json = await doctor({
      OTEL_EXPORTER_OTLP_ENDPOINT: fakeUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    });
    expect(lineOf(json.lines, 'tracing').line).toBe(`✓ tracing: spans to ${fakeUrl}/v1/traces as http/json`);
    expect(exports).toEqual([
      { contentType: 'application/x-protobuf', body: '' },
      { contentType: 'application/json', body: '{"resourceSpans":[]}' },
    ]);
  });

  it('probes OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, and says when a variable turns tracing off', async () => {
    const given = await doctor({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${fakeUrl}/otlp/traces` });
    expect(lineOf(given.lines, 'tracing').line).toBe(
      `✓ tracing: spans to ${fakeUrl}/otlp/traces as http/protobuf`,
    );
    expect(given.code).toBe(0);
    const disabled = await doctor({ OTEL_EXPORTER_OTLP_ENDPOINT: fakeUrl, OTEL_SDK_DISABLED: 'TRUE' });
    expect(lineOf(disabled.lines, 'tracing').line).toBe('- tracing: off (OTEL_SDK_DISABLED=true)');
    const none = await doctor({ OTEL_EXPORTER_OTLP_ENDPOINT: fakeUrl, OTEL_TRACES_EXPORTER: 'none' });
    expect(lineOf(none.lines, 'tracing').line).toBe('- tracing: off (OTEL_TRACES_EXPORTER=none)');
    const zipkin = await doctor({ OTEL_EXPORTER_OTLP_ENDPOINT: fakeUrl, OTEL_TRACES_EXPORTER: 'zipkin' });
    expect(zipkin.code).toBe(1);
    expect(lineOf(zipkin.lines, 'tracing').line).toMatch(
      /^✗ tracing: OTEL_TRACES_EXPORTER="zipkin": only otlp/,
    );
  });

  it('names an OTLP endpoint without its scheme, which no exporter can use', async () => {
    const { code, lines } = await doctor({ OTEL_EXPORTER_OTLP_ENDPOINT: 'otel-collector:4318' });
    expect(code).toBe(1);
    expect(lineOf(lines, 'tracing')).toEqual({
      line: '✗ tracing: OTEL_EXPORTER_OTLP_ENDPOINT="otel-collector:4318" is not an http(s) URL such as http://otel-collector:4318: tracing is off',
      fix: "set OTEL_EXPORTER_OTLP_ENDPOINT to the collector's URL with its scheme, such as http://otel-collector:4318",
    });
  });

  it('sends OTEL_EXPORTER_OTLP_HEADERS with its probe, and names them when the backend refuses it', async () => {
    const endpoint = `${fakeUrl}/keyed`;
    const without = await doctor({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint });
    expect(without.code).toBe(1);
    const refused = lineOf(without.lines, 'tracing');
    expect(refused.line).toBe(`✗ tracing: POST ${endpoint}/v1/traces refused the credentials (HTTP 401)`);
    expect(refused.fix).toMatch(
      /^set OTEL_EXPORTER_OTLP_HEADERS to the headers the tracing backend asks for/,
    );
    const encoded = encodeURIComponent(OTLP_KEY);
    const withKey = await doctor({
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_HEADERS: `x-api-key=wrong,other=1`,
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: `X-Api-Key=${encoded}`,
    });
    expect(lineOf(withKey.lines, 'tracing').line).toBe(
      `✓ tracing: spans to ${endpoint}/v1/traces as http/protobuf`,
    );
    expect(withKey.code).toBe(0);
    expect(withKey.out).not.toContain(OTLP_KEY);
  });

  it('names an OTLP endpoint that does not answer, a wrong path and an unsupported protocol', async () => {
    const down = await doctor({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await closedPort()}` });
    expect(down.code).toBe(1);
    const unreachable = lineOf(down.lines, 'tracing');
    expect(unreachable.line).toMatch(
      /^✗ tracing: cannot reach the OTLP endpoint http:\/\/127\.0\.0\.1:\d+\/v1\/traces \(OTEL_EXPORTER_OTLP_ENDPOINT\): ECONNREFUSED/,
    );
    expect(unreachable.fix).toMatch(/start the OpenTelemetry collector, or set OTEL_EXPORTER_OTLP_ENDPOINT/);

    const wrongPath = await doctor({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${fakeUrl}/otlp/v1/traces` });
    expect(lineOf(wrongPath.lines, 'tracing').line).toBe(
      `✗ tracing: POST ${fakeUrl}/otlp/v1/traces answered HTTP 404 to an empty export`,
    );

    const grpc = await doctor({ OTEL_EXPORTER_OTLP_ENDPOINT: fakeUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
    const refused = lineOf(grpc.lines, 'tracing');
    expect(refused.line).toMatch(/^✗ tracing: OTEL_EXPORTER_OTLP_PROTOCOL="grpc" is not supported/);
    expect(refused.fix).toBe('set OTEL_EXPORTER_OTLP_PROTOCOL to http/protobuf or http/json');
  });

  it('prints the same report as one JSON object with --json, with the same exit code', async () => {
    const port = await closedPort();
    const broken = await doctor({ CLAWMESH_STORE: 'redis', REDIS_URL: `redis://127.0.0.1:${port}` }, [
      '--json',
    ]);
    expect(broken.code).toBe(1);
    const report = JSON.parse(broken.out);
    expect(report).toMatchObject({
      ok: false,
      failed: 1,
      roles: ['gateway', 'conversation', 'skills', 'models'],
    });
    const byName = new Map(report.checks.map((check: { name: string }) => [check.name, check]));
    expect(byName.get('config')).toEqual({
      name: 'config',
      status: 'ok',
      detail: 'no config file, defaults and environment',
    });
    expect(byName.get('store')).toMatchObject({
      status: 'failed',
      detail: expect.stringContaining(`cannot reach Redis at redis://127.0.0.1:${port} (REDIS_URL)`),
      fix: expect.stringMatching(/or set REDIS_URL to a server that runs$/),
    });
    expect(byName.get('tracing')).toMatchObject({ status: 'off' });
    expect(byName.get('channel telegram')).toMatchObject({ status: 'off' });

    const invalid = await doctor({ CLAWMESH_STORE: 'postgres', DATABASE_URL: 'notaurl' }, ['--json']);
    expect(invalid.code).toBe(1);
    expect(JSON.parse(invalid.out)).toEqual({
      ok: false,
      failed: 1,
      checks: [
        {
          name: 'config',
          status: 'failed',
          detail: expect.stringContaining('postgres.url: "notaurl" is not a PostgreSQL URL'),
          fix: 'correct the key named above in the config file or its variable',
        },
      ],
    });

    const passed = await doctor({}, ['--json']);
    expect(passed.code).toBe(0);
    expect(JSON.parse(passed.out)).toMatchObject({ ok: true, failed: 0 });
  });

  it('names a Redis that does not answer, the variable that points at it, and how to fix it', async () => {
    const port = await closedPort();
    const { code, lines, out } = await doctor({
      CLAWMESH_STORE: 'redis',
      REDIS_URL: `redis://127.0.0.1:${port}`,
    });
    expect(code).toBe(1);
    const { line, fix } = lineOf(lines, 'store');
    expect(line).toContain(`✗ store: cannot reach Redis at redis://127.0.0.1:${port} (REDIS_URL)`);
    expect(line).toMatch(/ECONNREFUSED/);
    expect(fix).toMatch(/start Redis .*or set REDIS_URL to a server that runs/);
    expect(out).toMatch(/1 check\(s\) failed\n$/);
  });

  it('says a DATABASE_URL that is not a PostgreSQL URL is one, as start does, with its password masked', async () => {
    const { code, lines } = await doctor({ CLAWMESH_STORE: 'postgres', DATABASE_URL: 'shop:s3cret@db/shop' });
    expect(code).toBe(1);
    expect(lines.slice(0, 3)).toEqual([
      '✗ config: invalid configuration:',
      '  postgres.url: "shop:***@db/shop" is not a PostgreSQL URL such as postgres://user:password@host:5432/database (set by DATABASE_URL)',
      '    fix: correct the key named above in the config file or its variable',
    ]);
  });

  it('tells a server that refuses the URL (a wrong password, a missing database) from one that is down', async () => {
    const withPassword = new URL(REDIS_URL);
    withPassword.password = 'not-the-password';
    const missingDb = new URL(DATABASE_URL);
    missingDb.pathname = '/clawmesh_doctor_no_such_database';
    const { code, lines, out } = await doctor({
      CLAWMESH_STORE: 'postgres',
      DATABASE_URL: missingDb.href,
      CLAWMESH_BUS: 'redis',
      REDIS_URL: withPassword.href,
    });
    expect(code).toBe(1);
    const store = lineOf(lines, 'store');
    expect(store.line).toMatch(
      /^✗ store: PostgreSQL at .* \(DATABASE_URL\) refused the connection, needed for/,
    );
    expect(store.line).toContain('clawmesh_doctor_no_such_database" does not exist');
    expect(store.fix).toBe(
      'the server runs: check the user, password and database name (create the database if it is missing) in DATABASE_URL',
    );
    const bus = lineOf(lines, 'bus');
    expect(bus.line).toMatch(/^✗ bus: Redis at redis:\/\/:\*\*\*@.* \(REDIS_URL\) refused the connection/);
    expect(bus.fix).toBe('the server runs: check the user and password in REDIS_URL');
    expect(out).not.toContain('not-the-password');
  });

  it('checks the shared servers of a split deployment: Redis, PostgreSQL, NATS with JetStream', async () => {
    const { code, lines } = await doctor({
      CLAWMESH_STORE: 'postgres',
      DATABASE_URL,
      REDIS_URL,
      CLAWMESH_BUS: 'nats',
      CLAWMESH_TRANSPORT: 'nats',
      NATS_URL,
    });
    expect(lineOf(lines, 'store').line).toMatch(/^✓ store: postgres at .* \(PostgreSQL \d+/);
    // Turns of one conversation can reach several processes: the Redis lease orders them.
    expect(lineOf(lines, 'turn lease').line).toMatch(/^✓ turn lease: redis at .* \(PONG/);
    expect(lineOf(lines, 'bus').line).toMatch(/^✓ bus: nats at .* with JetStream\)$/);
    expect(lineOf(lines, 'transport').line).toMatch(/^✓ transport: nats at /);
    expect(code).toBe(0);
  });

  it('names a NATS server that does not answer for the nats transport', async () => {
    const port = await closedPort();
    const { code, lines } = await doctor({
      CLAWMESH_TRANSPORT: 'nats',
      NATS_URL: `nats://127.0.0.1:${port}`,
    });
    expect(code).toBe(1);
    const { line, fix } = lineOf(lines, 'transport');
    expect(line).toMatch(/^✗ transport: cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+ \(NATS_URL\)/);
    expect(fix).toMatch(/nats-server -js.*NATS_URL/);
  });

  it('checks each service URL of the http transport, naming the variable and the command to start it', async () => {
    const split = { CLAWMESH_ROLES: 'gateway', CLAWMESH_TRANSPORT: 'http' };
    const missing = await doctor(split);
    expect(missing.code).toBe(1);
    const unset = lineOf(missing.lines, 'service conversation');
    expect(unset.line).toBe('✗ service conversation: no URL for the conversation service (http transport)');
    expect(unset.fix).toBe(
      'set CONVERSATION_SERVICE_URL=http://<host>:<port> of the process running `clawmesh start conversation`',
    );

    const down = await doctor({
      ...split,
      CONVERSATION_SERVICE_URL: `http://127.0.0.1:${await closedPort()}`,
    });
    expect(down.code).toBe(1);
    const closed = lineOf(down.lines, 'service conversation');
    expect(closed.line).toMatch(/^✗ service conversation: .* \(CONVERSATION_SERVICE_URL\) does not answer/);
    expect(closed.fix).toBe('start it (`clawmesh start conversation`) or fix CONVERSATION_SERVICE_URL');

    const up = await doctor({ ...split, CONVERSATION_SERVICE_URL: fakeUrl });
    expect(lineOf(up.lines, 'service conversation').line).toBe(`✓ service conversation: ${fakeUrl} answers`);
    expect(up.code).toBe(0);
  });

  it('names SKILLS_SERVICE_URL when a skill host that does not answer was found through it', async () => {
    const down = await doctor({
      CLAWMESH_ROLES: 'conversation',
      CLAWMESH_TRANSPORT: 'http',
      MODELS_SERVICE_URL: fakeUrl,
      SKILLS_SERVICE_URL: `http://127.0.0.1:${await closedPort()}`,
    });
    const closed = lineOf(down.lines, 'service skills.inventory');
    expect(closed.line).toMatch(/^✗ service skills\.inventory: .* \(SKILLS_SERVICE_URL\) does not answer/);
    expect(closed.fix).toBe(
      'start it (`clawmesh start skills --skills inventory`) or fix SKILLS_SERVICE_URL',
    );
  });

  it('refuses the local transport for a process that does not run every role it calls', async () => {
    const { code, lines } = await doctor({ CLAWMESH_ROLES: 'conversation' });
    expect(code).toBe(1);
    const { line, fix } = lineOf(lines, 'transport');
    expect(line).toMatch(/cannot reach models, skills\.inventory, skills\.support/);
    expect(fix).toMatch(/CLAWMESH_TRANSPORT=nats/);
  });

  it('asks each model provider for its model list, telling a refused key from an unreachable server', async () => {
    const ok = await doctor({ OPENAI_API_KEY: GOOD_KEY, OPENAI_BASE_URL: `${fakeUrl}/v1` });
    expect(lineOf(ok.lines, 'model openai').line).toBe(`✓ model openai: ${fakeUrl}/v1 answers (2 models)`);
    expect(ok.code).toBe(0);

    const refused = await doctor({ OPENAI_API_KEY: 'sk-doctor-wrong', OPENAI_BASE_URL: `${fakeUrl}/v1` });
    expect(refused.code).toBe(1);
    const key = lineOf(refused.lines, 'model openai');
    expect(key.line).toBe(`✗ model openai: ${fakeUrl}/v1 refused the API key (HTTP 401)`);
    expect(key.fix).toBe('set OPENAI_API_KEY to a valid key');
    expect(refused.out).not.toContain('sk-doctor-wrong');

    const port = await closedPort();
    const down = await doctor({ OPENAI_API_KEY: GOOD_KEY, OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1` });
    expect(down.code).toBe(1);
    const unreachable = lineOf(down.lines, 'model openai');
    expect(unreachable.line).toMatch(
      /^✗ model openai: cannot reach http:\/\/127\.0\.0\.1:\d+\/v1: ECONNREFUSED/,
    );
    expect(unreachable.fix).toBe('start the model server, or set OPENAI_BASE_URL to one that runs');

    const anthropic = await doctor({
      ANTHROPIC_API_KEY: GOOD_KEY,
      ANTHROPIC_BASE_URL: `${fakeUrl}/anthropic`,
    });
    expect(lineOf(anthropic.lines, 'model anthropic').line).toBe(
      `✓ model anthropic: ${fakeUrl}/anthropic answers (2 models)`,
    );
  });

  it('reaches a model server and a collector whose URLs hold credentials, printing the password as ***', async () => {
    const withUser = (url: string) => url.replace('http://', 'http://proxy:proxy-pass-0451@');
    const ok = await doctor({
      OPENAI_API_KEY: GOOD_KEY,
      OPENAI_BASE_URL: `${withUser(fakeUrl)}/v1`,
      OTEL_EXPORTER_OTLP_ENDPOINT: withUser(fakeUrl),
    });
    expect(lineOf(ok.lines, 'model openai').line).toBe(
      `✓ model openai: ${fakeUrl.replace('http://', 'http://proxy:***@')}/v1 answers (2 models)`,
    );
    expect(lineOf(ok.lines, 'tracing').line).toMatch(/^✓ tracing: spans to http:\/\/proxy:\*\*\*@/);
    expect(ok.code).toBe(0);

    const down = await doctor({
      OPENAI_API_KEY: GOOD_KEY,
      OPENAI_BASE_URL: `${withUser(`http://127.0.0.1:${await closedPort()}`)}/v1`,
    });
    expect(lineOf(down.lines, 'model openai').line).toMatch(
      /^✗ model openai: cannot reach http:\/\/proxy:\*\*\*@127\.0\.0\.1:\d+\/v1: ECONNREFUSED/,
    );
    expect(ok.out + down.out).not.toContain('proxy-pass-0451');
  });

  it('fails a channel that has only some of its secrets, naming the missing ones', async () => {
    const { code, lines } = await doctor({ TELEGRAM_BOT_TOKEN: '123:abc' });
    expect(code).toBe(1);
    const { line, fix } = lineOf(lines, 'channel telegram');
    expect(line).toBe(
      '✗ channel telegram: partly configured: TELEGRAM_WEBHOOK_SECRET not set, so the channel is off',
    );
    expect(fix).toMatch(/^set TELEGRAM_WEBHOOK_SECRET/);
    expect(lineOf(lines, 'channel slack').line).toMatch(/^- channel slack: off/);

    const on = await doctor({
      TELEGRAM_BOT_TOKEN: TG_TOKEN,
      TELEGRAM_WEBHOOK_SECRET: 'hook-secret-1',
      TELEGRAM_API_ROOT: `${fakeUrl}/telegram`,
    });
    expect(lineOf(on.lines, 'channel telegram').line).toBe('✓ channel telegram: on (@shop_bot)');
  });

  it('asks Telegram and Slack whose bot token it is, and names a token they refuse without printing it', async () => {
    const channels = (telegramToken: string, slackToken: string) => ({
      TELEGRAM_BOT_TOKEN: telegramToken,
      TELEGRAM_WEBHOOK_SECRET: 'hook-secret-1',
      TELEGRAM_API_ROOT: `${fakeUrl}/telegram`,
      SLACK_SIGNING_SECRET: 'slack-signing-secret-1',
      SLACK_BOT_TOKEN: slackToken,
      SLACK_API_ROOT: `${fakeUrl}/slack/api`,
    });
    const good = await doctor(channels(TG_TOKEN, SLACK_TOKEN));
    expect(lineOf(good.lines, 'channel slack').line).toBe('✓ channel slack: on (shopbot)');
    expect(good.code).toBe(0);

    const revoked = await doctor(channels('123456:doctor-revoked-token', 'xoxb-doctor-revoked-token'));
    expect(revoked.code).toBe(1);
    const telegram = lineOf(revoked.lines, 'channel telegram');
    expect(telegram.line).toBe(
      `✗ channel telegram: on, but ${fakeUrl}/telegram refused TELEGRAM_BOT_TOKEN (HTTP 401 Unauthorized)`,
    );
    expect(telegram.fix).toBe("set TELEGRAM_BOT_TOKEN to the bot's current token");
    expect(lineOf(revoked.lines, 'channel slack').line).toBe(
      `✗ channel slack: on, but ${fakeUrl}/slack/api refused SLACK_BOT_TOKEN (invalid_auth)`,
    );
    expect(revoked.out).not.toContain('revoked-token');

    const down = await doctor({
      ...channels(TG_TOKEN, SLACK_TOKEN),
      TELEGRAM_API_ROOT: `http://127.0.0.1:${await closedPort()}`,
    });
    expect(lineOf(down.lines, 'channel telegram').line).toMatch(
      /^✗ channel telegram: on, but cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED$/,
    );
  });

  it('asks Discord and WhatsApp whose token it is, and names a token they refuse without printing it', async () => {
    const channels = (discordToken: string, whatsappToken: string) => ({
      DISCORD_PUBLIC_KEY: 'a'.repeat(64),
      DISCORD_APPLICATION_ID: '42',
      DISCORD_BOT_TOKEN: discordToken,
      DISCORD_API_ROOT: `${fakeUrl}/discord/api/v10`,
      WHATSAPP_APP_SECRET: 'wa-app-secret-1',
      WHATSAPP_VERIFY_TOKEN: 'wa-verify-1',
      WHATSAPP_ACCESS_TOKEN: whatsappToken,
      WHATSAPP_PHONE_NUMBER_ID: '1055',
      WHATSAPP_API_ROOT: `${fakeUrl}/graph`,
    });
    const good = await doctor(channels(DISCORD_TOKEN, WHATSAPP_TOKEN));
    expect(lineOf(good.lines, 'channel discord').line).toBe('✓ channel discord: on (shopbot)');
    expect(lineOf(good.lines, 'channel whatsapp').line).toBe('✓ channel whatsapp: on (+1 555 0100)');
    expect(good.code).toBe(0);

    const revoked = await doctor(channels('discord-doctor-revoked-token', 'EAAG-doctor-revoked-token'));
    expect(revoked.code).toBe(1);
    const discord = lineOf(revoked.lines, 'channel discord');
    expect(discord.line).toBe(
      `✗ channel discord: on, but ${fakeUrl}/discord/api/v10 refused DISCORD_BOT_TOKEN (401: Unauthorized)`,
    );
    expect(discord.fix).toBe("set DISCORD_BOT_TOKEN to the bot's current token");
    expect(lineOf(revoked.lines, 'channel whatsapp').line).toBe(
      `✗ channel whatsapp: on, but ${fakeUrl}/graph refused WHATSAPP_ACCESS_TOKEN (HTTP 401 Error validating access token)`,
    );
    expect(revoked.out).not.toContain('revoked-token');

    // Discord's bot token is optional (it registers the /ask command): without it, nothing to ask.
    const { DISCORD_BOT_TOKEN: _unused, ...withoutBotToken } = channels(DISCORD_TOKEN, WHATSAPP_TOKEN);
    const noToken = await doctor({
      ...withoutBotToken,
      DISCORD_API_ROOT: `http://127.0.0.1:${await closedPort()}`,
    });
    expect(lineOf(noToken.lines, 'channel discord').line).toBe('✓ channel discord: on');
  });

  it('opens a SQLite file that is already there, and names one that is not a database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clawmesh-doctor-'));
    const broken = join(dir, 'broken.db');
    writeFileSync(broken, 'this is not a SQLite database, though long enough to look like a file header');
    const bad = await doctor({ CLAWMESH_SQLITE_PATH: broken });
    expect(bad.code).toBe(1);
    expect(lineOf(bad.lines, 'store').line).toMatch(/^✗ store: sqlite at .*broken\.db cannot be opened: /);

    const ok = await doctor({ CLAWMESH_SQLITE_PATH: join(dir, 'made.db') });
    expect(lineOf(ok.lines, 'store').line).toMatch(/\(created at the first start/);
    expect(existsSync(join(dir, 'made.db'))).toBe(false);
  });

  it('names a SQLite path that cannot be created, with the variable to move it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clawmesh-doctor-'));
    writeFileSync(join(dir, 'not-a-dir'), 'x');
    const { code, lines } = await doctor({ CLAWMESH_SQLITE_PATH: join(dir, 'not-a-dir', 'clawmesh.db') });
    expect(code).toBe(1);
    const { line, fix } = lineOf(lines, 'store');
    expect(line).toMatch(/^✗ store: sqlite at .*not-a-dir\/clawmesh\.db/);
    expect(fix).toMatch(/CLAWMESH_SQLITE_PATH/);
  });

  it('names an audit file that cannot be written, and how to move or turn off the audit log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clawmesh-doctor-'));
    const { code, lines } = await doctor({ CLAWMESH_AUDIT__PATH: dir });
    expect(code).toBe(1);
    const { line, fix } = lineOf(lines, 'audit');
    expect(line).toMatch(/^✗ audit: the audit file .* cannot be written: .* is a directory/);
    expect(fix).toMatch(/CLAWMESH_AUDIT__PATH.*CLAWMESH_AUDIT__ENABLED=false/);
  });
});
