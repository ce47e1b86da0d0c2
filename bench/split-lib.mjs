// What the split-deployment benchmarks (bench/split-cpu, bench/split-pair, bench/hops) share: a Redis and a
// NATS server of their own, the five role processes over them, and per-process counters read from
// /proc (Linux).
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort, spawnNode, startRole } from './lib.mjs';

/** The roles of a fully split deployment, by the name printed for each: the gateway last (its URL is the deployment's). */
const SPLIT_ROLES = [
  ['models', ['models']],
  ['skills inventory', ['skills', '--skills', 'inventory']],
  ['skills support', ['skills', '--skills', 'support']],
  ['conversation', ['conversation']],
  ['gateway', ['gateway']],
];

/** Runs a command to its end; resolves with its stdout. */
function output(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    child.stdout.on('data', (chunk) => {
      text += chunk;
    });
    child.on('error', reject);
    child.on('exit', () => resolve(text));
  });
}

/**
 * Starts a redis-server and a nats-server (with its monitoring port) from PATH on free ports, adds
 * them to `children` (killed by the caller on exit), and resolves once both answer.
 */
export async function startServers(children) {
  const [redisPort, natsPort, monitorPort] = [await freePort(), await freePort(), await freePort()];
  const redis = spawn('redis-server', ['--port', String(redisPort), '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const nats = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(natsPort), '-m', String(monitorPort)], {
    stdio: 'ignore',
  });
  for (const [name, child] of [
    ['redis-server', redis],
    ['nats-server', nats],
  ]) {
    child.on('error', () => {
      console.error(`this benchmark needs ${name} on PATH`);
      process.exit(1);
    });
    children.push(child);
  }
  for (;;) {
    const pong = await output('redis-cli', ['-p', String(redisPort), 'PING']).catch(() => '');
    const varz = await fetch(`http://127.0.0.1:${monitorPort}/varz`).then(
      (res) => res.ok,
      () => false,
    );
    if (pong.trim() === 'PONG' && varz) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { redis, nats, redisPort, natsPort, monitorPort };
}

/** Where the http transport finds a role: `SKILLS_INVENTORY_SERVICE_URL` for `skills inventory`. */
export const serviceUrlVariable = (name) => `${name.replaceAll(' ', '_').toUpperCase()}_SERVICE_URL`;

/** The names of a split deployment's roles, in the order they start. */
export const SPLIT_ROLE_NAMES = SPLIT_ROLES.map(([name]) => name);

/**
 * Starts one process per role of `cli` with `env`, each on `ports[name]` (any free port when it
 * has none), each added to `children`; resolves with `[name, pid]` of each and the gateway's URL.
 */
export async function startRoles(cli, env, children, tmpPrefix, ports = {}) {
  const processes = [];
  let gatewayUrl;
  for (const [name, args] of SPLIT_ROLES) {
    const { child, url } = await startRole(
      cli,
      args,
      { ...env, PORT: String(ports[name] ?? 0) },
      { tmpPrefix },
    );
    children.push(child);
    processes.push([name, child.pid]);
    gatewayUrl = url;
  }
  return { processes, gatewayUrl };
}

/**
 * Starts one process per role of `cli` over NATS with the Redis store and lease of `servers`
 * (each added to `children`); resolves with `[name, pid]` of each, the two servers' included, and
 * the gateway's URL.
 */
export async function startSplit(cli, servers, children, tmpPrefix) {
  const env = {
    CLAWMESH_TRANSPORT: 'nats',
    NATS_URL: `nats://127.0.0.1:${servers.natsPort}`,
    CLAWMESH_STORE: 'redis',
    REDIS_URL: `redis://127.0.0.1:${servers.redisPort}`,
    CLAWMESH_BUS: 'memory',
    LOG_LEVEL: 'info',
  };
  const { processes, gatewayUrl } = await startRoles(cli, env, children, tmpPrefix);
  processes.push(['nats-server', servers.nats.pid], ['redis-server', servers.redis.pid]);
  return { processes, gatewayUrl };
}

const FLOOR_ROLE = fileURLToPath(new URL('./split-floor-role.mjs', import.meta.url));

/**
 * Starts the floor of a split (bench/split-floor-role.mjs: the same turn shape with nothing of
 * Clawmesh) over the NATS and Redis at `natsUrl` and `redisUrl`, its subjects and keys under
 * `prefix`, each process added to `children`; resolves with `[name, pid]` of each, their
 * processes, and the gateway's URL.
 */
export async function startFloor(natsUrl, redisUrl, prefix, children) {
  const processes = [];
  const own = [];
  let gatewayUrl;
  for (const role of ['models', 'skills', 'conversation', 'gateway']) {
    const { child, value } = await spawnNode([FLOOR_ROLE, role], {
      env: { NATS_URL: natsUrl, REDIS_URL: redisUrl, FLOOR_PREFIX: prefix },
      ready: (line) => (line.startsWith('{"ready"') ? JSON.parse(line) : undefined),
    });
    children.push(child);
    own.push(child);
    processes.push([`floor ${role}`, child.pid]);
    gatewayUrl = value.url;
  }
  return { processes, children: own, gatewayUrl };
}

/** A sum over the threads of a process, of a number read from each thread's /proc file. */
function perThread(pid, file, read) {
  let total = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += read(readFileSync(`/proc/${pid}/task/${task}/${file}`, 'utf8'));
    } catch {
      // the thread ended
    }
  }
  return total;
}

/** CPU time of every thread of a process, in ms, with ns precision. */
export const cpuMs = (pid) => perThread(pid, 'schedstat', (text) => Number(text.split(' ')[0]) / 1e6);

/** Times the threads of a process went to sleep of their own accord (each is a wake-up later). */
export const sleeps = (pid) =>
  perThread(pid, 'status', (text) => Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(text)[1]));

/**
 * Commands Redis has run so far by name (those inside scripts included), without those of the
 * reading itself: INFO, PING and redis-cli's COMMAND DOCS.
 */
export async function commandStats(port) {
  const text = await output('redis-cli', ['-p', String(port), 'INFO', 'commandstats']);
  const calls = {};
  for (const line of text.split('\n')) {
    const match = /^cmdstat_(\S+):calls=(\d+)/.exec(line);
    if (match && !/^(info|ping|command)/.test(match[1])) calls[match[1]] = Number(match[2]);
  }
  return calls;
}
