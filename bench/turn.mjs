// bench/turn: the stock question through the HTTP API (local model, one tool call) against a
// bare node:http server answering a same-sized JSON, in the same run. Also: start-to-healthy
// time, idle RSS, and RSS after 10,000 turns; then the cost of observability: the same turn with
// tracing (OTLP to a loopback receiver that discards) and metrics on and off, interleaved.
// Run with `npm run bench:turn`.
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
const WARM_CONCURRENT = Number(process.env.BENCH_WARM_CONCURRENT ?? 3000);
const THROUGHPUT_ROUNDS = Number(process.env.BENCH_THROUGHPUT_ROUNDS ?? 5);
const SOAK = Number(process.env.BENCH_SOAK ?? 10_000);
const OBS_ROUNDS = Number(process.env.BENCH_OBS_ROUNDS ?? 24);
const OBS_PROCESSES = Number(process.env.BENCH_OBS_PROCESSES ?? 3);
const OBS_TURNS = Number(process.env.BENCH_OBS_TURNS ?? 1000);
const question = (i) => ({ userId: `bench-${i % 100}`, text: 'how many red shirts are in stock?' });

async function startClawmesh(env = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'clawmesh-bench-'));
  writeFileSync(
    join(dir, 'clawmesh.config.yaml'),
    'gateway:\n  rateLimit: { points: 1000000000, durationSeconds: 1 }\n',
  );
  const spawnedAt = performance.now();
  const { child, value: url } = await spawnNode(['--expose-gc', '-r', GC_PROBE, CLI, 'start'], {
    cwd: dir,
    env: { PORT: '0', LOG_LEVEL: 'info', BENCH_GC_FILE: gcFile, ...env },
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
const servers = [
  ['clawmesh', clawmesh],
  ['bare', bare],
];
// Per server: a short warm-up, the latency right after it, then a longer warm-up at concurrency.
for (const [name, server] of servers) {
  const one = makeClient(server.url, 1);
  const many = makeClient(server.url, CONCURRENCY);
  await load((i) => one('/v1/messages', question(i)), { total: 300, concurrency: 1 });
  const seq = await load((i) => one('/v1/messages', question(i)), { total: SEQUENTIAL, concurrency: 1 });
  await load((i) => many('/v1/messages', question(i)), { total: WARM_CONCURRENT, concurrency: CONCURRENCY });
  results[name] = { one, many, seq, wallMs: 0, turns: 0, latencies: [], roundRps: [] };
}
// Throughput in interleaved rounds (the order alternating), so a slow spell of the machine
// weighs on both servers alike; the ratio is given for the totals and as the median of rounds.
const perRound = Math.ceil(CONCURRENT / THROUGHPUT_ROUNDS);
for (let round = 0; round < THROUGHPUT_ROUNDS; round += 1) {
  const order = round % 2 === 0 ? servers : [...servers].reverse();
  for (const [name] of order) {
    const r = results[name];
    const par = await load((i) => r.many('/v1/messages', question(i)), {
      total: perRound,
      concurrency: CONCURRENCY,
    });
    r.wallMs += par.wallMs;
    r.turns += perRound;
    r.latencies.push(...par.latencies);
    r.roundRps[round] = (perRound / par.wallMs) * 1000;
  }
}
// Latency again once the server is warm: the first turns after start run before V8 has
// optimized the turn's code (and before the SQLite checkpoint thread has started).
for (const [name] of servers) {
  const r = results[name];
  const warm = await load((i) => r.one('/v1/messages', question(i)), { total: SEQUENTIAL, concurrency: 1 });
  Object.assign(r, {
    early50: percentile(r.seq.latencies, 50),
    early99: percentile(r.seq.latencies, 99),
    p50: percentile(warm.latencies, 50),
    p99: percentile(warm.latencies, 99),
    rps: (r.turns / r.wallMs) * 1000,
    p50c: percentile(r.latencies, 50),
    p99c: percentile(r.latencies, 99),
  });
}
const medianRoundRatio = percentile(
  results.clawmesh.roundRps.map((rps, round) => rps / results.bare.roundRps[round]),
  50,
);

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
  `bench/turn — node ${process.version}, per server: 300 warm-up, ${SEQUENTIAL} sequential, ${WARM_CONCURRENT} warm-up at concurrency ${CONCURRENCY}; then ${CONCURRENT} at concurrency ${CONCURRENCY} in ${THROUGHPUT_ROUNDS} rounds interleaved between the servers; then ${SEQUENTIAL} sequential again (warm)`,
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
console.log(
  `latency at c=1 right after the 300-turn warm-up (before the concurrent phase): clawmesh p50 ${fmt(c.early50)} p99 ${fmt(c.early99)} ms, bare p50 ${fmt(b.early50)} p99 ${fmt(b.early99)} ms`,
);
console.log(`latency targets (warm, the table's c=1 columns): p50 <= 1 ms, p99 <= 5 ms`);
console.log(
  `throughput ratio clawmesh/bare: ${((c.rps / b.rps) * 100).toFixed(1)}% of the totals, ${(medianRoundRatio * 100).toFixed(1)}% the median of ${THROUGHPUT_ROUNDS} interleaved rounds  (target >= 25%)`,
);
console.log(`start to healthy /healthz: ${clawmesh.healthyMs.toFixed(0)} ms  (target <= 1000 ms)`);
console.log(`RSS idle: ${idleRss.toFixed(1)} MB  (target <= 100 MB)`);
console.log(
  `RSS after warm-up (${300 + 2 * SEQUENTIAL + WARM_CONCURRENT + CONCURRENT} turns): ${before.toFixed(1)} MB; after ${SOAK} more turns: ${afterSoak.toFixed(1)} MB  (growth ${(((afterSoak - before) / before) * 100).toFixed(1)}%, target <= 10%)`,
);
console.log(`RSS growth from idle to the end: ${(((afterSoak - idleRss) / idleRss) * 100).toFixed(1)}%`);
console.log(
  `live heap after a full GC: idle ${idleHeap.toFixed(1)} MB, after warm-up ${beforeHeap.toFixed(1)} MB, after ${SOAK} more turns ${afterHeap.toFixed(1)} MB (growth ${(((afterHeap - beforeHeap) / beforeHeap) * 100).toFixed(1)}%)`,
);

// The cost of observability: the same turn on servers that differ only in tracing and metrics,
// measured in interleaved rounds (each round runs every setup, in a rotating order) so a busy
// moment of the machine weighs on all of them alike.

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

const COLLECTOR = fileURLToPath(new URL('./otlp-collector.mjs', import.meta.url));

/** A loopback OTLP/HTTP receiver in its own process (bench/otlp-collector.mjs), counting spans. */
async function startCollector() {
  const { child, value: port } = await spawnNode([COLLECTOR], {
    ready: (line) => (line.startsWith('{') ? JSON.parse(line).port : undefined),
  });
  const url = `http://127.0.0.1:${port}`;
  const spans = async () => (await (await fetch(`${url}/count`)).json()).spans;
  return { child, url, spans };
}

const collectors = [await startCollector(), await startCollector()];
const setups = [
  { name: 'tracing off, metrics.enabled: false', env: { CLAWMESH_METRICS__ENABLED: 'false' } },
  { name: 'metrics on, tracing off (the default)', env: {} },
  {
    name: 'metrics + tracing, every trace sampled',
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: collectors[0].url },
  },
  {
    name: 'metrics + tracing, 10% of traces sampled',
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: collectors[1].url,
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.1',
    },
  },
];
// Each setup runs on several server processes, one per round in turn: a process keeps the speed
// its start gave it (where V8 placed and how it optimised the code) for its whole life, a few
// per cent either way between two processes of one build, which one process per setup would
// add to the setups' difference.
for (const setup of setups) {
  setup.servers = [];
  for (let p = 0; p < OBS_PROCESSES; p += 1) {
    const server = await startClawmesh(setup.env);
    server.client = makeClient(server.url, CONCURRENCY);
    await load((i) => server.client('/v1/messages', question(i)), { total: 500, concurrency: CONCURRENCY });
    setup.servers.push(server);
  }
  setup.wallMs = 0;
  setup.cpu = 0;
  setup.latencies = [];
  setup.roundRps = [];
}
const spansBefore = await Promise.all(collectors.map((c) => c.spans()));
const collectorCpuBefore = collectors.map((c) => cpuSeconds(c.child.pid));
for (let round = 0; round < OBS_ROUNDS; round += 1) {
  for (let k = 0; k < setups.length; k += 1) {
    const setup = setups[(round + k) % setups.length];
    const server = setup.servers[round % OBS_PROCESSES];
    const cpuBefore = cpuSeconds(server.child.pid);
    const run = await load((i) => server.client('/v1/messages', question(i)), {
      total: OBS_TURNS,
      concurrency: CONCURRENCY,
    });
    setup.cpu += cpuSeconds(server.child.pid) - cpuBefore;
    setup.wallMs += run.wallMs;
    setup.roundRps[round] = (OBS_TURNS / run.wallMs) * 1000;
    setup.latencies.push(...run.latencies);
  }
}
await new Promise((r) => setTimeout(r, 1500)); // the last batch of spans
// The loopback receivers share the two cores with the server and the load client (a real
// collector runs elsewhere): their CPU is part of what the traced setups pay here.
const collectorCpu = collectors.map((c, i) => cpuSeconds(c.child.pid) - collectorCpuBefore[i]);
const spansSent = await Promise.all(collectors.map(async (c, i) => (await c.spans()) - spansBefore[i]));
const obsServers = setups.flatMap((setup) => setup.servers);
const stopped = obsServers.map((server) => new Promise((resolve) => server.child.once('exit', resolve)));
for (const server of obsServers) server.child.kill('SIGTERM');
await Promise.all(stopped);
for (const c of collectors) c.child.kill('SIGTERM');

const rpsOf = (setup) => ((OBS_ROUNDS * OBS_TURNS) / setup.wallMs) * 1000;
const [off, , full, sampled] = setups;
console.log('');
console.log(
  `cost of observability — ${OBS_ROUNDS} interleaved rounds × ${OBS_TURNS} turns per setup at concurrency ${CONCURRENCY}, each setup on ${OBS_PROCESSES} server processes in turn`,
);
console.log('');
console.log('| setup | turns/s | vs off | server CPU µs per turn | p50 ms | p99 ms |');
console.log('|---|---|---|---|---|---|');
const cpuPerTurn = (setup) => (setup.cpu / (OBS_ROUNDS * OBS_TURNS)) * 1e6;
for (const setup of setups) {
  const ratio = ((rpsOf(setup) / rpsOf(off)) * 100).toFixed(1);
  console.log(
    `| ${setup.name} | ${rpsOf(setup).toFixed(0)} | ${ratio}% | ${cpuPerTurn(setup).toFixed(0)} | ${fmt(percentile(setup.latencies, 50))} | ${fmt(percentile(setup.latencies, 99))} |`,
  );
}
console.log('');
// Each round runs every setup back to back: the median of the per-round ratios is steadier than
// the ratio of totals when the machine slows down for a while (a slow spell hits one round).
const medianRoundSlowdown = (setup) =>
  (1 -
    percentile(
      setup.roundRps.map((rps, round) => rps / off.roundRps[round]),
      50,
    )) *
  100;
const slowdown = (setup) =>
  `${((1 - rpsOf(setup) / rpsOf(off)) * 100).toFixed(1)}% in turns/s (median of the ${OBS_ROUNDS} rounds: ${medianRoundSlowdown(setup).toFixed(1)}%), ${((cpuPerTurn(setup) / cpuPerTurn(off) - 1) * 100).toFixed(1)}% more server CPU per turn`;
console.log(`slowdown with metrics and tracing of every trace: ${slowdown(full)}  (target <= 10%)`);
console.log(`slowdown with metrics and tracing of 10% of traces: ${slowdown(sampled)}`);
const turns = OBS_ROUNDS * OBS_TURNS;
console.log(
  `spans received: ${spansSent[0]} with every trace sampled (${(spansSent[0] / turns).toFixed(1)} per turn), ${spansSent[1]} with 10% (${(spansSent[1] / turns).toFixed(1)} per turn)`,
);
console.log(
  `the loopback OTLP receiver's own CPU, on the same two cores: ${((collectorCpu[0] / turns) * 1e6).toFixed(0)} µs per turn with every trace sampled, ${((collectorCpu[1] / turns) * 1e6).toFixed(0)} with 10%`,
);
process.exit(0);
