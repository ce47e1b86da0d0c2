// Shared pieces of the benchmarks: a keep-alive HTTP client, percentiles, process helpers.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A keep-alive POST of a JSON body; resolves with the status and the body text. */
export function makeClient(base, maxSockets) {
  const url = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  return (path, body) =>
    new Promise((resolve, reject) => {
      const payload = JSON.stringify(body);
      const req = http.request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          path,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
}

/** The p-th percentile (0-100) of a list of numbers. */
export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Resident set size of a process, in MB (Linux /proc). */
export function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

/** Spawns a node script; resolves once `ready(line)` returns a value from a stdout line. */
export function spawnNode(args, { env = {}, cwd, ready }) {
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
    child.stdout.on('data', (chunk) => {
      buffer += chunk.toString();
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        const value = ready(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        if (value !== undefined) {
          child.stdout.resume();
          child.stdout.removeAllListeners('data');
          child.stdout.on('data', () => {});
          resolve({ child, value, spawnedAt: started });
          return;
        }
        newline = buffer.indexOf('\n');
      }
    });
  });
}

/** One GET over a fresh connection; resolves with the status code, rejects when nothing listens. */
function getStatus(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', reject);
  });
}

/**
 * Polls `url` every 5 ms until it answers 200; resolves with the time it took since `since`.
 * Polls with `node:http`, whose first call costs nothing: Node's `fetch` loads undici on its
 * first use (tens of milliseconds), which would be counted against the server.
 */
export async function waitHealthy(url, since) {
  for (;;) {
    try {
      if ((await getStatus(url)) === 200) return performance.now() - since;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Runs `total` calls of `fn` with `concurrency` workers; resolves with per-call latencies (ms) and the wall time. */
export async function load(fn, { total, concurrency }) {
  const latencies = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const t0 = performance.now();
        await fn(i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { latencies, wallMs: performance.now() - started };
}

/** A free TCP port on 127.0.0.1 (free when asked: another process may take it before it is used). */
export function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `clawmesh start <args>` (the built CLI) in a fresh directory with the benchmarks' defaults
 * (no audit log, no rate limit) and `env`; resolves with the process and the URL its
 * `listening on` line names. An error line before it fails the start.
 */
export async function startRole(cli, args, env, { tmpPrefix = 'clawmesh-bench-' } = {}) {
  const dir = mkdtempSync(join(tmpdir(), tmpPrefix));
  const { child, value: url } = await spawnNode([cli, 'start', ...args], {
    cwd: dir,
    env: {
      LOG_LEVEL: 'warn',
      CLAWMESH_AUDIT__ENABLED: 'false',
      CLAWMESH_GATEWAY__RATE_LIMIT__POINTS: '1000000000',
      ...env,
    },
    ready: (line) => {
      if (!line.startsWith('{')) return undefined;
      const entry = JSON.parse(line);
      if (entry.level >= 50) throw new Error(`${args.join(' ')}: ${entry.msg}`);
      return typeof entry.url === 'string' && /listening on/.test(entry.msg) ? entry.url : undefined;
    },
  });
  return { child, url };
}

/**
 * Open loop: `post('/v1/messages', body(i))` starts every 1/rate s for `seconds`, whether or not
 * the earlier ones finished; resolves with the latencies of the 200 answers (ms), the failures and
 * the wall time (s).
 */
export async function offer(post, body, rate, seconds) {
  const latencies = [];
  let failed = 0;
  const total = rate * seconds;
  const started = performance.now();
  await new Promise((resolve) => {
    let sent = 0;
    let done = 0;
    const finish = (ok, t0) => {
      if (ok) latencies.push(performance.now() - t0);
      else failed++;
      if (++done === total) resolve();
    };
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
      while (sent < due) {
        const i = sent++;
        const t0 = performance.now();
        post('/v1/messages', body(i)).then(
          (res) => finish(res.status === 200, t0),
          () => finish(false, t0),
        );
      }
      // Sleep until the next turn is due rather than polling every millisecond: on a 2-core
      // machine a load generator waking 1,000 times a second takes CPU from what it measures.
      if (sent < total) setTimeout(tick, Math.max(0, started + (sent / rate) * 1000 - performance.now()));
    };
    tick();
  });
  return { latencies, failed, total, wall: (performance.now() - started) / 1000 };
}
