// bench/hops: the same turn (the stock question: one tool call, two model calls) through the
// HTTP API with the services talking over the `local`, `http` and `nats` transports, in one run,
// interleaved; the added latency per hop against `local`; then a fully split deployment (one
// process per role, over NATS and Redis) held at 200 turns/s, and the floor of such a turn (the
// same processes and hops with nothing of Clawmesh in them) measured the same way.
// Run with `npm run bench:hops` (needs NATS on NATS_URL and Redis on REDIS_URL).
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { createClient } from 'redis';
import { freePort, load, makeClient, offer, percentile, startRole } from './lib.mjs';
import {
  SPLIT_ROLE_NAMES,
  serviceUrlVariable,
  startFloor as startFloorProcesses,
  startRoles,
} from './split-lib.mjs';

const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PER_ROUND = Number(process.env.BENCH_PER_ROUND ?? 400);
const THROUGHPUT_TURNS = Number(process.env.BENCH_THROUGHPUT ?? 3000);
const RATE = Number(process.env.BENCH_RATE ?? 200);
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 10);
/** A light load beside RATE: with the processes mostly idle, each hop pays for waking one up. */
const LOW_RATE = Number(process.env.BENCH_LOW_RATE ?? 20);
const run = randomBytes(3).toString('hex');
const question = (i) => ({ userId: `hops-${i % 50}`, text: 'how many red shirts are in stock?' });
/** The same question as the first message of a new conversation: every such turn is identical. */
let freshUsers = 0;
const firstQuestion = () => ({
  userId: `hops-new-${run}-${freshUsers++}`,
  text: 'how many red shirts are in stock?',
});
const fmt = (n) => n.toFixed(3);

const children = [];
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

async function start(args, env) {
  const { child, url } = await startRole(
    CLI,
    args,
    { CLAWMESH_STORE: 'memory', ...env },
    { tmpPrefix: 'clawmesh-hops-' },
  );
  children.push(child);
  return url;
}

/** Calls made between services per turn, from the process's own metrics. */
async function hopsPerTurn(url, turns) {
  const text = await (await fetch(`${url}/metrics`)).text();
  let calls = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('clawmesh_rpc_duration_seconds_count')) calls += Number(line.split(' ').at(-1));
  }
  return calls / turns;
}

// Warn-level logs: the "listening" line is info, so ask for it explicitly.
async function startSetup(kind) {
  const port = await freePort();
  const self = `http://127.0.0.1:${port}`;
  // One process: turns of a conversation cannot reach another process, so the in-process lease
  // is enough; the hop cost is then the transport's alone (the split deployment below pays the
  // Redis lease too).
  const env = {
    PORT: String(port),
    CLAWMESH_TRANSPORT: kind,
    LOG_LEVEL: 'info',
    CLAWMESH_STORE__LEASE: 'memory',
  };
  if (kind === 'http') {
    env.CONVERSATION_SERVICE_URL = self;
    env.MODELS_SERVICE_URL = self;
    env.SKILLS_SERVICE_URL = self;
    env.GATEWAY_SERVICE_URL = self;
  }
  if (kind === 'nats') Object.assign(env, { NATS_URL, CLAWMESH_NATS__SUBJECT_PREFIX: `hops${kind}${run}` });
  const url = await start([], env);
  return { kind, url, post: makeClient(url, 1), latencies: [], fresh: [], turns: 0 };
}

console.log(
  `bench/hops — node ${process.version}, ${ROUNDS} rounds × ${PER_ROUND} turns per transport, concurrency 1`,
);
const setups = [];
for (const kind of ['local', 'http', 'nats']) setups.push(await startSetup(kind));
for (const setup of setups) {
  // Warm up: tool catalogs, JIT, connections.
  for (let i = 0; i < 200; i++) await setup.post('/v1/messages', question(i));
}
// The floor of a NATS hop on this machine: nats.js's own request/reply through the same server,
// requester and responder on one connection in one process (as in the nats setup), 1 KB each
// way, with nothing of Clawmesh around it. Measured in the same rounds as the transports.
const nc = await connect({ servers: NATS_URL, noAsyncTraces: true });
const rawSubject = `hopsraw${run}.echo`;
nc.subscribe(rawSubject, { callback: (err, msg) => err || msg.respond(msg.data) });
await nc.flush();
const rawPayload = new Uint8Array(1024).fill(120);
const raw = { latencies: [] };
const rawRequest = () => nc.request(rawSubject, rawPayload, { timeout: 5000 });
for (let i = 0; i < 500; i++) await rawRequest();
const before = {};
for (const setup of setups) before[setup.kind] = await hopsPerTurn(setup.url, 1);
for (let round = 0; round < ROUNDS; round++) {
  for (const setup of setups) {
    const { latencies } = await load((i) => setup.post('/v1/messages', question(i)), {
      total: PER_ROUND,
      concurrency: 1,
    });
    setup.latencies.push(...latencies);
    setup.turns += PER_ROUND;
    const first = await load(() => setup.post('/v1/messages', firstQuestion()), {
      total: PER_ROUND,
      concurrency: 1,
    });
    setup.fresh.push(...first.latencies);
    setup.turns += PER_ROUND;
  }
  const { latencies } = await load(rawRequest, { total: PER_ROUND * 4, concurrency: 1 });
  raw.latencies.push(...latencies);
}
// The same request at LOW_RATE: between requests the processes sleep, and each hop pays for
// waking them (the requester, the NATS server, the responder).
const idle = { latencies: [] };
for (let i = 0; i < 150; i++) {
  await new Promise((resolve) => setTimeout(resolve, 1000 / LOW_RATE));
  const t0 = performance.now();
  await rawRequest();
  idle.latencies.push(performance.now() - t0);
}
await nc.close();
const rows = [];
const local = setups[0];
for (const setup of setups) {
  const hops = (await hopsPerTurn(setup.url, 1)) - before[setup.kind];
  const perTurn = hops / setup.turns;
  const p50 = percentile(setup.latencies, 50);
  const p99 = percentile(setup.latencies, 99);
  const concurrent = makeClient(setup.url, 10);
  const { wallMs } = await load((i) => concurrent('/v1/messages', question(i)), {
    total: THROUGHPUT_TURNS,
    concurrency: 10,
  });
  rows.push({
    transport: setup.kind,
    hopsPerTurn: perTurn,
    p50,
    p99,
    addedP50PerHop: (p50 - percentile(local.latencies, 50)) / perTurn,
    addedP99PerHop: (p99 - percentile(local.latencies, 99)) / perTurn,
    freshP50: percentile(setup.fresh, 50),
    freshP99: percentile(setup.fresh, 99),
    freshAddedP50PerHop: (percentile(setup.fresh, 50) - percentile(local.fresh, 50)) / perTurn,
    freshAddedP99PerHop: (percentile(setup.fresh, 99) - percentile(local.fresh, 99)) / perTurn,
    turnsPerSecond: THROUGHPUT_TURNS / (wallMs / 1000),
  });
}
const dash = '           —';
const table = (title, p50, p99, addedP50, addedP99, withThroughput) => {
  console.log(`\n${title}`);
  console.log(
    `transport  hops/turn  turn p50  turn p99  added p50/hop  added p99/hop${withThroughput ? '  turns/s (c=10)' : ''}`,
  );
  for (const r of rows) {
    const local = r.transport === 'local';
    console.log(
      `${r.transport.padEnd(9)}  ${r.hopsPerTurn.toFixed(1).padStart(9)}  ${fmt(r[p50]).padStart(8)}  ${fmt(r[p99]).padStart(8)}  ${
        local ? dash : fmt(r[addedP50]).padStart(13)
      }  ${local ? dash : fmt(r[addedP99]).padStart(13)}${withThroughput ? `  ${r.turnsPerSecond.toFixed(0).padStart(14)}` : ''}`,
    );
  }
};
table(
  'turn latency through the HTTP API, concurrency 1 (ms); added = vs local, per service hop\nthe first message of a new conversation (every turn identical; a model call carries about 2 KB):',
  'freshP50',
  'freshP99',
  'freshAddedP50PerHop',
  'freshAddedP99PerHop',
  false,
);
table(
  '50 conversations with growing history (a model call carries the context window, up to 200 messages):',
  'p50',
  'p99',
  'addedP50PerHop',
  'addedP99PerHop',
  true,
);

const natsRow = rows.find((r) => r.transport === 'nats');
const rawP50 = percentile(raw.latencies, 50);
const rawP99 = percentile(raw.latencies, 99);
console.log(
  `\nthe floor of a NATS hop here — nats.js request/reply alone, one connection, 1 KB each way: p50 ${fmt(rawP50)} ms, p99 ${fmt(rawP99)} ms`,
);
console.log(
  `the same at ${LOW_RATE} requests/s (processes asleep between requests): p50 ${fmt(percentile(idle.latencies, 50))} ms, p99 ${fmt(percentile(idle.latencies, 99))} ms`,
);
console.log(
  `Clawmesh's own cost per NATS hop above that floor: p50 ${fmt(natsRow.freshAddedP50PerHop - rawP50)} ms (new conversations), ${fmt(natsRow.addedP50PerHop - rawP50)} ms (with history)`,
);

// A fully split deployment: each role its own process, state in Redis, the services talking over
// NATS, then (the NATS one stopped) over HTTP with keep-alive, one connection pool per peer.
/** Starts the five processes of a split deployment over `transport`; resolves with the gateway's URL and a stop. */
async function startSplit(transport) {
  const prefix = `hopsplit${transport}${run}`;
  const env = {
    CLAWMESH_TRANSPORT: transport,
    CLAWMESH_STORE: 'redis',
    REDIS_URL,
    CLAWMESH_REDIS__KEY_PREFIX: `${prefix}:`,
    CLAWMESH_BUS: 'memory',
    LOG_LEVEL: 'info',
  };
  const ports = {};
  if (transport === 'nats') Object.assign(env, { NATS_URL, CLAWMESH_NATS__SUBJECT_PREFIX: prefix });
  else {
    // Each service's URL is known before it starts: every role calls the others by URL.
    for (const name of SPLIT_ROLE_NAMES) {
      ports[name] = await freePort();
      env[serviceUrlVariable(name)] = `http://127.0.0.1:${ports[name]}`;
    }
  }
  const first = children.length;
  const { gatewayUrl } = await startRoles(CLI, env, children, 'clawmesh-hops-', ports);
  return { url: gatewayUrl, stop: stopper(children.slice(first), prefix) };
}

/** Stops the processes of a deployment and deletes the keys it left in the shared Redis. */
function stopper(own, prefix) {
  return async () => {
    for (const child of own) child.kill('SIGTERM');
    await Promise.all(own.map((child) => new Promise((resolve) => child.once('exit', resolve))));
    await deleteKeys(`${prefix}:*`);
  };
}

/** Deletes the keys a split deployment of this run left in the shared Redis. */
async function deleteKeys(pattern) {
  const redis = createClient({ url: REDIS_URL });
  await redis.connect();
  for await (const keys of redis.scanIterator({ MATCH: pattern, COUNT: 1000 })) {
    if (keys.length > 0) await redis.del(keys);
  }
  await redis.close();
}

console.log(
  `\nfully split (gateway, conversation, 2 skill hosts, models: 5 processes; state in Redis): ${RATE * RATE_SECONDS} turns offered at ${RATE}/s after a 3 s warm-up at that rate, and ${LOW_RATE * RATE_SECONDS} at ${LOW_RATE}/s`,
);
console.log(
  'transport  offered/s  achieved/s  failed  turn p50  turn p90  turn p99  closed loop c=16 turns/s',
);
// The floor of a split turn here: the same processes and hops with nothing of Clawmesh in them
// (bench/split-floor-role.mjs: node:http, nats.js, the redis client), measured the same way.
async function startFloor() {
  const prefix = `hopsfloor${run}`;
  const { children: own, gatewayUrl } = await startFloorProcesses(NATS_URL, REDIS_URL, prefix, children);
  return { url: gatewayUrl, stop: stopper(own, prefix) };
}

const deployments = [
  ['nats', () => startSplit('nats')],
  ['http', () => startSplit('http')],
  ['floor', startFloor],
];
for (const [name, startDeployment] of deployments) {
  const split = await startDeployment();
  const post = makeClient(split.url, 64);
  for (let i = 0; i < 300; i++) await post('/v1/messages', question(i));
  // Warm-up at the same rate: keep-alive connections and code paths of concurrent turns.
  await offer(post, question, RATE, 3);
  const measured = [
    await offer(post, question, RATE, RATE_SECONDS),
    await offer(post, question, LOW_RATE, RATE_SECONDS),
  ];
  const { wallMs } = await load((i) => post('/v1/messages', question(i)), { total: 3000, concurrency: 16 });
  for (const [k, m] of measured.entries()) {
    const rate = k === 0 ? RATE : LOW_RATE;
    console.log(
      `${name.padEnd(9)}  ${String(rate).padStart(9)}  ${(m.latencies.length / m.wall).toFixed(0).padStart(10)}  ${String(m.failed).padStart(6)}  ${fmt(percentile(m.latencies, 50)).padStart(8)}  ${fmt(percentile(m.latencies, 90)).padStart(8)}  ${fmt(percentile(m.latencies, 99)).padStart(8)}  ${k === 0 ? (3000 / (wallMs / 1000)).toFixed(0).padStart(24) : ''}`,
    );
  }
  await split.stop();
}
console.log(
  'floor: the same turn shape with nothing of Clawmesh (bench/split-floor-role.mjs): node:http in, a NATS request to a conversation process that makes 4 Redis round trips and 3 NATS requests (2 KB out, 1 KB back) to two more processes',
);
process.exit(0);
