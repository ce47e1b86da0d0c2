// bench/split-cpu: where the CPU of a turn goes in a fully split deployment (gateway,
// conversation, 2 skill hosts, models over NATS; state in Redis). Each process's CPU per turn
// (all its threads, from /proc/<pid>/task/*/schedstat), the times its threads went to sleep
// (voluntary context switches: each is a wake-up to pay for), the Redis commands per turn by name
// (INFO commandstats) and the NATS messages per turn (the server's /varz), over sequential turns
// and at a fixed rate. Baseline in the same run: the same turns through one process (every
// service in it, `local` transport, memory store). Linux only.
// Then the same for the floor of a split (bench/split-floor-role.mjs: the same turn shape, four
// processes with nothing of Clawmesh in them) over the same servers: what is Clawmesh's own.
// Redis and NATS are servers of its own (redis-server and nats-server from PATH, on free
// ports), so their CPU and counters are this deployment's alone.
// Run with `npm run bench:split-cpu`.
import { fileURLToPath } from 'node:url';
import { makeClient, offer, percentile, startRole } from './lib.mjs';
import { commandStats, cpuMs, sleeps, startFloor, startServers, startSplit } from './split-lib.mjs';

const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const WARM = Number(process.env.BENCH_WARM ?? 1000);
const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 2000);
const RATE = Number(process.env.BENCH_RATE ?? 200);
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 10);
const question = (i) => ({ userId: `cpu-${i % 50}`, text: 'how many red shirts are in stock?' });

const children = [];
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

async function start(args, env) {
  const { child, url } = await startRole(
    CLI,
    args,
    { LOG_LEVEL: 'info', PORT: '0', ...env },
    { tmpPrefix: 'clawmesh-split-cpu-' },
  );
  children.push(child);
  return { child, url };
}

async function natsCounts(monitorPort) {
  const varz = await (await fetch(`http://127.0.0.1:${monitorPort}/varz`)).json();
  return { in: varz.in_msgs, out: varz.out_msgs, inBytes: varz.in_bytes };
}

/** Open loop: a turn starts every 1/rate s whether or not the earlier ones finished. */
async function sequential(post, turns) {
  const latencies = [];
  for (let i = 0; i < turns; i++) {
    const t0 = performance.now();
    await post('/v1/messages', question(i));
    latencies.push(performance.now() - t0);
  }
  return latencies;
}

/** Runs `drive`; prints CPU and sleeps per turn of each process, Redis commands and NATS messages. */
async function measure(label, processes, servers, drive, turns) {
  const cpu0 = processes.map(([, pid]) => cpuMs(pid));
  const sleeps0 = processes.map(([, pid]) => sleeps(pid));
  const redis0 = servers ? await commandStats(servers.redisPort) : {};
  const nats0 = servers ? await natsCounts(servers.monitorPort) : undefined;
  const latencies = await drive();
  const cpu = processes.map(([, pid], i) => (cpuMs(pid) - cpu0[i]) / turns);
  const slept = processes.map(([, pid], i) => (sleeps(pid) - sleeps0[i]) / turns);
  console.log(
    `\n${label}: turn p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms`,
  );
  console.log('process            CPU ms/turn  sleeps/turn');
  for (const [i, [name]] of processes.entries())
    console.log(`${name.padEnd(17)}  ${cpu[i].toFixed(3).padStart(11)}  ${slept[i].toFixed(1).padStart(11)}`);
  console.log(
    `${'total'.padEnd(17)}  ${cpu
      .reduce((a, b) => a + b, 0)
      .toFixed(3)
      .padStart(11)}`,
  );
  if (servers) {
    const redis1 = await commandStats(servers.redisPort);
    const nats1 = await natsCounts(servers.monitorPort);
    const byName = Object.entries(redis1)
      .map(([name, calls]) => [name, (calls - (redis0[name] ?? 0)) / turns])
      .filter(([, perTurn]) => perTurn > 0)
      .sort((a, b) => b[1] - a[1]);
    const total = byName.reduce((sum, [, perTurn]) => sum + perTurn, 0);
    console.log(
      `Redis commands/turn ${total.toFixed(1)}: ${byName.map(([name, n]) => `${name} ${n.toFixed(1)}`).join(', ')}`,
    );
    console.log(
      `NATS messages/turn: ${((nats1.in - nats0.in) / turns).toFixed(1)} in, ${((nats1.out - nats0.out) / turns).toFixed(1)} out; ${((nats1.inBytes - nats0.inBytes) / turns / 1024).toFixed(1)} KB in`,
    );
  }
}

console.log(
  `bench/split-cpu — node ${process.version}; ${WARM} warm-up turns, ${SEQUENTIAL} sequential, then ${RATE}/s for ${RATE_SECONDS} s`,
);
const servers = await startServers(children);
const { processes: split, gatewayUrl } = await startSplit(CLI, servers, children, 'clawmesh-split-cpu-');
const one = await start([], { CLAWMESH_STORE: 'memory' });
const monolith = [['one process', one.child.pid]];

const splitPost = makeClient(gatewayUrl, 64);
const onePost = makeClient(one.url, 64);
for (let i = 0; i < WARM; i++) await splitPost('/v1/messages', question(i));
for (let i = 0; i < WARM; i++) await onePost('/v1/messages', question(i));
await measure(
  'one process, sequential',
  monolith,
  undefined,
  () => sequential(onePost, SEQUENTIAL),
  SEQUENTIAL,
);
const floor = await startFloor(
  `nats://127.0.0.1:${servers.natsPort}`,
  `redis://127.0.0.1:${servers.redisPort}`,
  'floor',
  children,
);
const floorPost = makeClient(floor.gatewayUrl, 64);
for (let i = 0; i < WARM; i++) await floorPost('/v1/messages', question(i));
const serverProcesses = [
  ['nats-server', servers.nats.pid],
  ['redis-server', servers.redis.pid],
];
// The split, then the floor (the same turn shape, nothing of Clawmesh), over the same servers.
for (const [label, processes, post] of [
  ['split', split, splitPost],
  ['floor (the same turn shape, nothing of Clawmesh)', [...floor.processes, ...serverProcesses], floorPost],
]) {
  await measure(`${label}, sequential`, processes, servers, () => sequential(post, SEQUENTIAL), SEQUENTIAL);
  await offer(post, question, RATE, 3);
  await measure(
    `${label}, ${RATE} turns/s`,
    processes,
    servers,
    async () => (await offer(post, question, RATE, RATE_SECONDS)).latencies,
    RATE * RATE_SECONDS,
  );
}
process.exit(0);
