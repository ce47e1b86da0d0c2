// bench/turn: the stock question through the HTTP API (local model, one tool call) against a
// bare node:http server answering a same-sized JSON, in the same run. Also: start-to-healthy
// time, idle RSS, and RSS after 10,000 turns. Run with `npm run bench:turn`.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load, makeClient, percentile, rssMb, spawnNode, waitHealthy } from './lib.mjs';

const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const BARE = fileURLToPath(new URL('./bare-server.mjs', import.meta.url));
const GC_PROBE = fileURLToPath(new URL('./gc-probe.cjs', import.meta.url));
const gcFile = join(mkdtempSync(join(tmpdir(), 'clawmesh-bench-gc-')), 'gc.jsonl');
const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 2000);
const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 5000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 10);
const SOAK = Number(process.env.BENCH_SOAK ?? 10_000);
const question = (i) => ({ userId: `bench-${i % 100}`, text: 'how many red shirts are in stock?' });

async function startClawmesh() {
  const dir = mkdtempSync(join(tmpdir(), 'clawmesh-bench-'));
  writeFileSync(
    join(dir, 'clawmesh.config.yaml'),
    'gateway:\n  rateLimit: { points: 1000000000, durationSeconds: 1 }\n',
  );
  const spawnedAt = performance.now();
  const { child, value: url } = await spawnNode(['--expose-gc', '-r', GC_PROBE, CLI, 'start'], {
    cwd: dir,
    env: { PORT: '0', LOG_LEVEL: 'info', BENCH_GC_FILE: gcFile },
    ready: (line) => (line.includes('Clawmesh listening') ? JSON.parse(line).url : undefined),
  });
  const healthyMs = await waitHealthy(`${url}/healthz`, spawnedAt);
  return { child, url, healthyMs };
}

async function startBare(bytes) {
  const { child, value: port } = await spawnNode([BARE], {
    env: { BODY_BYTES: String(bytes) },
    ready: (line) => (line.startsWith('{') ? JSON.parse(line).port : undefined),
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

const fmt = (n) => n.toFixed(3);

/** Live heap after a full GC in the server, in MB (see gc-probe.cjs). */
async function liveHeapMb(pid) {
  const before = readLines().length;
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 200 && readLines().length === before; i += 1)
    await new Promise((r) => setTimeout(r, 10));
  return JSON.parse(readLines().at(-1)).heapUsed / 1048576;
}
function readLines() {
  try {
    return readFileSync(gcFile, 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

const clawmesh = await startClawmesh();
const probe = await makeClient(clawmesh.url, 1)('/v1/messages', question(0));
const reply = JSON.parse(probe.body);
if (probe.status !== 200 || reply.toolCalls?.[0]?.skill !== 'inventory')
  throw new Error(`unexpected reply: ${probe.body}`);
const bare = await startBare(Buffer.byteLength(probe.body));
await new Promise((r) => setTimeout(r, 1000));
const idleRss = rssMb(clawmesh.child.pid);
const idleHeap = await liveHeapMb(clawmesh.child.pid);

const results = {};
for (const [name, server] of [
  ['clawmesh', clawmesh],
  ['bare', bare],
]) {
  const one = makeClient(server.url, 1);
  await load((i) => one('/v1/messages', question(i)), { total: 300, concurrency: 1 }); // warm-up
  const seq = await load((i) => one('/v1/messages', question(i)), { total: SEQUENTIAL, concurrency: 1 });
  const many = makeClient(server.url, CONCURRENCY);
  const par = await load((i) => many('/v1/messages', question(i)), {
    total: CONCURRENT,
    concurrency: CONCURRENCY,
  });
  results[name] = {
    p50: percentile(seq.latencies, 50),
    p99: percentile(seq.latencies, 99),
    rps: (CONCURRENT / par.wallMs) * 1000,
    p50c: percentile(par.latencies, 50),
    p99c: percentile(par.latencies, 99),
  };
}

const soakClient = makeClient(clawmesh.url, CONCURRENCY);
const before = rssMb(clawmesh.child.pid);
const beforeHeap = await liveHeapMb(clawmesh.child.pid);
await load((i) => soakClient('/v1/messages', question(i)), { total: SOAK, concurrency: CONCURRENCY });
await new Promise((r) => setTimeout(r, 1000));
const afterSoak = rssMb(clawmesh.child.pid);
const afterHeap = await liveHeapMb(clawmesh.child.pid);

const exited = [clawmesh.child, bare.child].map(
  (child) => new Promise((resolve) => child.once('exit', resolve)),
);
clawmesh.child.kill('SIGTERM');
bare.child.kill('SIGTERM');
await Promise.all(exited);

const c = results.clawmesh;
const b = results.bare;
console.log(
  `bench/turn — node ${process.version}, ${SEQUENTIAL} sequential + ${CONCURRENT} at concurrency ${CONCURRENCY} per server`,
);
console.log('');
console.log(
  '| server | p50 ms (c=1) | p99 ms (c=1) | turns/s (c=%d) | p50 ms (c=%d) | p99 ms (c=%d) |',
  CONCURRENCY,
  CONCURRENCY,
  CONCURRENCY,
);
console.log('|---|---|---|---|---|---|');
console.log(
  `| clawmesh (stock question, 1 tool call) | ${fmt(c.p50)} | ${fmt(c.p99)} | ${c.rps.toFixed(0)} | ${fmt(c.p50c)} | ${fmt(c.p99c)} |`,
);
console.log(
  `| bare node:http (same-sized JSON) | ${fmt(b.p50)} | ${fmt(b.p99)} | ${b.rps.toFixed(0)} | ${fmt(b.p50c)} | ${fmt(b.p99c)} |`,
);
console.log('');
console.log(`throughput ratio clawmesh/bare: ${((c.rps / b.rps) * 100).toFixed(1)}%  (target >= 25%)`);
console.log(`start to healthy /healthz: ${clawmesh.healthyMs.toFixed(0)} ms  (target <= 1000 ms)`);
console.log(`RSS idle: ${idleRss.toFixed(1)} MB  (target <= 100 MB)`);
console.log(
  `RSS after warm-up (${300 + SEQUENTIAL + CONCURRENT} turns): ${before.toFixed(1)} MB; after ${SOAK} more turns: ${afterSoak.toFixed(1)} MB  (growth ${(((afterSoak - before) / before) * 100).toFixed(1)}%, target <= 10%)`,
);
console.log(`RSS growth from idle to the end: ${(((afterSoak - idleRss) / idleRss) * 100).toFixed(1)}%`);
console.log(
  `live heap after a full GC: idle ${idleHeap.toFixed(1)} MB, after warm-up ${beforeHeap.toFixed(1)} MB, after ${SOAK} more turns ${afterHeap.toFixed(1)} MB (growth ${(((afterHeap - beforeHeap) / beforeHeap) * 100).toFixed(1)}%)`,
);
process.exit(0);
