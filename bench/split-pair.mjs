// bench/split-pair: two builds of the fully split deployment compared paired, for a change whose
// effect is smaller than the drift of a shared machine. Deployment A runs the built CLI at
// BENCH_BASE_CLI (a copy of an earlier build's dist/, kept where its imports still resolve, e.g.
// `cp -r dist package.json .scratch-base/`), deployment B this checkout's dist/; each has its own
// redis-server and nats-server (from PATH, on free ports), and one process per role. Blocks of
// sequential turns alternate between A and B (ABBA order); for each block, each process's CPU per
// turn (all threads, /proc/<pid>/task/*/schedstat), its sleeps per turn (voluntary context
// switches) and Redis's commands per turn. Printed: the medians of A and B, and the median and
// mean ± standard error of the paired differences B - A. Linux only.
// Run with `BENCH_BASE_CLI=.scratch-base/dist/src/cli/main.js node bench/split-pair.mjs`.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeClient } from './lib.mjs';
import { commandStats, cpuMs, sleeps, startServers, startSplit } from './split-lib.mjs';

const BASE = process.env.BENCH_BASE_CLI && resolve(process.env.BENCH_BASE_CLI);
const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const BLOCKS = Number(process.env.BENCH_BLOCKS ?? 30);
const PER_BLOCK = Number(process.env.BENCH_PER_BLOCK ?? 150);
const WARM = Number(process.env.BENCH_WARM ?? 600);
const question = (i) => ({ userId: `pair-${i % 50}`, text: 'how many red shirts are in stock?' });
if (!BASE) {
  console.error('bench/split-pair needs BENCH_BASE_CLI: the main.js of the build to compare with');
  process.exit(1);
}

const children = [];
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Commands Redis has run so far, of every name. */
const redisCommands = async (port) =>
  Object.values(await commandStats(port)).reduce((sum, calls) => sum + calls, 0);

/** A split deployment of `cli` with a Redis and a NATS server of its own. */
async function deploy(cli) {
  const servers = await startServers(children);
  const { processes, gatewayUrl } = await startSplit(cli, servers, children, 'clawmesh-split-pair-');
  return { processes, post: makeClient(gatewayUrl, 8), redisPort: servers.redisPort };
}

console.log(
  `bench/split-pair — node ${process.version}; A ${BASE}, B ${CLI}; ${BLOCKS} blocks of ${PER_BLOCK} sequential turns each, after ${WARM} warm-up turns`,
);
const deployments = { A: await deploy(BASE), B: await deploy(CLI) };
for (const side of ['A', 'B']) {
  for (let i = 0; i < WARM; i++) await deployments[side].post('/v1/messages', question(i));
}
const blocks = { A: [], B: [] };
let turn = WARM;
for (let block = 0; block < BLOCKS; block++) {
  for (const side of block % 2 ? ['B', 'A'] : ['A', 'B']) {
    const { processes, post, redisPort } = deployments[side];
    const redis0 = await redisCommands(redisPort);
    const cpu0 = processes.map(([, pid]) => cpuMs(pid));
    const sleeps0 = processes.map(([, pid]) => sleeps(pid));
    const latencies = [];
    for (let i = 0; i < PER_BLOCK; i++) {
      const t0 = performance.now();
      const res = await post('/v1/messages', question(turn++));
      if (res.status !== 200) throw new Error(`turn failed: ${res.status} ${res.body}`);
      latencies.push(performance.now() - t0);
    }
    const cpu = processes.map(([, pid], i) => (cpuMs(pid) - cpu0[i]) / PER_BLOCK);
    const slept = processes.map(([, pid], i) => (sleeps(pid) - sleeps0[i]) / PER_BLOCK);
    latencies.sort((a, b) => a - b);
    blocks[side].push({
      cpu,
      slept,
      p50: latencies[Math.floor(PER_BLOCK / 2)],
      redis: ((await redisCommands(redisPort)) - redis0) / PER_BLOCK,
    });
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const fmt = (n) => n.toFixed(3).padStart(8);
console.log(`\nper turn                 A median  B median  B-A median  B-A mean ± se`);
const row = (label, of) => {
  const diffs = blocks.A.map((a, i) => of(blocks.B[i]) - of(a));
  const mean = diffs.reduce((sum, d) => sum + d, 0) / diffs.length;
  const se = Math.sqrt(
    diffs.reduce((sum, d) => sum + (d - mean) ** 2, 0) / (diffs.length - 1) / diffs.length,
  );
  console.log(
    `${label.padEnd(24)} ${fmt(median(blocks.A.map(of)))}  ${fmt(median(blocks.B.map(of)))}  ${fmt(median(diffs)).padStart(10)}  ${fmt(mean)} ± ${se.toFixed(3)}`,
  );
};
const names = deployments.A.processes.map(([name]) => name);
for (const [i, name] of names.entries()) row(`${name} CPU ms`, (b) => b.cpu[i]);
row('total CPU ms', (b) => b.cpu.reduce((sum, ms) => sum + ms, 0));
for (const [i, name] of names.entries()) row(`${name} sleeps`, (b) => b.slept[i]);
row('turn p50 ms', (b) => b.p50);
row('Redis commands', (b) => b.redis);
process.exit(0);
