// bench/models: the Model Gateway's added latency against calling a fake OpenAI upstream
// directly, the two interleaved request by request, at concurrency 1, 16 and 64; throughput as a
// ratio to direct (alternating timed phases); and the latency of an in-process cache hit.
// Two ways in, both measured in the same run:
//   in-process  the gateway's `complete()` (a call context, routing, the deployment chain,
//               accounting and metrics, the `openai` SDK provider) against the same `openai` SDK
//               client configuration (`openAIClientOptions`, the provider's own) calling the
//               upstream itself, in the same process, interleaved: "added" is the gateway's own
//               cost, the HTTP client being the same on both sides. Twice: over the gateway's
//               outbound client (node-fetch on keep-alive agents) and over Node's global fetch;
//   HTTP        `POST /v1/chat/completions` on a `clawmesh start` process (the gateway as a
//               proxy) against the same keep-alive `node:http` client POSTing to the upstream
//               itself. The gateway process adds a whole HTTP server and an outbound HTTP client
//               per request; on a 2-core machine shared by the load client, the gateway and the
//               upstream, its throughput ratio measures how much more CPU a proxied request costs
//               than a bare one, so the gateway process's CPU per request is printed next to it;
//   HTTP, bare proxy (floor)  the same through a process that only streams each request to the
//               upstream and the answer back (node:http, keep-alive): what a gateway on
//               node:http in a process of its own pays here before doing anything.
// The upstream is a minimal node:http server in its own process. Run with `npm run bench:models`
// (or, after `npx tsc -p tsconfig.build.json`, `node bench/models.mjs`).
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load, makeClient, percentile, spawnNode, waitHealthy } from './lib.mjs';

const SELF = fileURLToPath(import.meta.url);
/** The name of the floor's rows: a bare proxy process, no gateway logic. */
const BARE_PROXY = 'HTTP, bare proxy (floor)';

// --- the fake upstream (this file run with --upstream) -------------------------------------
if (process.argv.includes('--upstream')) {
  const completion = JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'bench-model',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'The answer is 42.', refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 24, completion_tokens: 6, total_tokens: 30 },
  });
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString() || '{}');
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(completion),
      });
      res.end(completion);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () =>
    process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`),
  );
} else if (process.argv.includes('--proxy')) {
  // --- the floor of any HTTP gateway (this file run with --proxy): a bare node:http proxy ----
  // that streams each request to the upstream on keep-alive sockets and the answer back, doing
  // nothing else: what one inbound and one outbound HTTP exchange cost here.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const upstreamPort = Number(process.env.UPSTREAM_PORT);
  const server = http.createServer((req, res) => {
    const out = http.request(
      {
        agent,
        host: '127.0.0.1',
        port: upstreamPort,
        method: req.method,
        path: req.url,
        headers: {
          'content-type': req.headers['content-type'],
          'content-length': req.headers['content-length'],
        },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, {
          'content-type': answer.headers['content-type'],
          'content-length': answer.headers['content-length'],
        });
        answer.pipe(res);
      },
    );
    out.on('error', () => res.writeHead(502).end());
    req.pipe(out);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () =>
    process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`),
  );
} else {
  await main();
}

/** CPU time (user + system) a process has used so far, in microseconds (Linux /proc). */
function cpuMicros(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime, fields 14 and 15 of stat (11 and 12 after the command), in clock ticks (100/s).
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

function inProcessCpu() {
  const { user, system } = process.cpuUsage();
  return { mine: user + system };
}

async function main() {
  const dist = (path) => new URL(`../dist/src/${path}`, import.meta.url).href;
  const { loadConfig } = await import(dist('config/load.js'));
  const { buildModels } = await import(dist('runtime/models.js'));
  const { createCallContext } = await import(dist('core/context.js'));
  const { createMetrics } = await import(dist('observability/metrics.js'));
  const { silentLogger } = await import(dist('observability/logger.js'));
  const { openAIClientOptions } = await import(dist('models/providers/openai/provider.js'));
  const { createOutboundHttp } = await import(dist('models/providers/outbound.js'));
  const { default: OpenAI } = await import('openai');
  // The outbound HTTP client the gateway's providers use (buildModels makes its own of the same kind).
  const outbound = await createOutboundHttp();

  const PAIRS = {
    1: Number(process.env.BENCH_PAIRS_C1 ?? 1500),
    16: Number(process.env.BENCH_PAIRS_C16 ?? 4000),
    64: Number(process.env.BENCH_PAIRS_C64 ?? 6000),
  };
  // Throughput: this many alternating phases per side (direct, gateway, gateway, direct, …).
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 12);
  const messages = [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'What is the answer to life, the universe and everything?' },
  ];

  const { child: upstreamChild, value: upstreamPort } = await spawnNode([SELF, '--upstream'], {
    ready: (line) => (line.startsWith('{') ? JSON.parse(line).port : undefined),
  });
  const upstream = `http://127.0.0.1:${upstreamPort}/v1`;
  const env = { OPENAI_API_KEY: 'sk-bench', OPENAI_BASE_URL: upstream, OPENAI_MODEL: 'bench-model' };

  // In-process: the gateway as the monolith builds it (metrics on), and the SDK alone with the
  // provider's own client options.
  const build = async (cache, outboundHttp = 'node-fetch') => {
    const { config } = loadConfig({
      env,
      cwd: tmpdir(),
      overrides: {
        models: { cache: { enabled: cache }, prices: { 'bench-model': { input: 0.15, output: 0.6 } } },
      },
    });
    const metrics = createMetrics({ defaultMetrics: false });
    return (await buildModels(config, { logger: silentLogger(), metrics, outboundHttp })).service;
  };
  // The gateway side creates a call context per call, as a caller without one must.
  const ctxOf = (i) => createCallContext({ timeoutMs: 30_000, userId: `u${i % 50}`, agentId: 'bench' });
  /** The gateway and the SDK alone over one outbound HTTP client: node-fetch (the gateway's) or Node's fetch. */
  const inProcessOver = async (http) => {
    const gateway = await build(false, http ? 'node-fetch' : 'fetch');
    const sdk = new OpenAI(
      openAIClientOptions({ apiKey: 'sk-bench', baseURL: upstream, ...(http ? { http } : {}) }),
    );
    return {
      direct: () => sdk.chat.completions.create({ model: 'bench-model', messages }),
      gateway: (i) => gateway.complete({ model: 'auto', messages }, ctxOf(i)),
      cpu: inProcessCpu,
    };
  };
  const inProcess = await inProcessOver(outbound);
  const inProcessNodeFetch = await inProcessOver(undefined);

  // HTTP: a `clawmesh start` process with the upstream configured, and the same client for both.
  const dir = mkdtempSync(join(tmpdir(), 'clawmesh-bench-models-'));
  const spawnedAt = performance.now();
  const { child: clawChild, value: clawUrl } = await spawnNode(
    [fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url)), 'start'],
    {
      cwd: dir,
      env: {
        ...env,
        PORT: '0',
        LOG_LEVEL: 'info',
        CLAWMESH_AUDIT__ENABLED: 'false',
        CLAWMESH_STORE: 'memory',
      },
      ready: (line) => (line.includes('Clawmesh listening') ? JSON.parse(line).url : undefined),
    },
  );
  await waitHealthy(`${clawUrl}/healthz`, spawnedAt);
  // The floor: a bare proxy process in front of the same upstream.
  const { child: proxyChild, value: proxyPort } = await spawnNode([SELF, '--proxy'], {
    env: { UPSTREAM_PORT: String(upstreamPort) },
    ready: (line) => (line.startsWith('{') ? JSON.parse(line).port : undefined),
  });
  const body = { model: 'auto', messages };
  /** Requests through a gateway process (`url`, pid `gatewayPid`) against the upstream directly. */
  const viaProcess = (url, gatewayPid) => (c) => {
    const toGateway = makeClient(url, c);
    const toUpstream = makeClient(`http://127.0.0.1:${upstreamPort}`, c);
    const check = (res) => {
      if (res.status !== 200) throw new Error(`status ${res.status}: ${res.body}`);
    };
    return {
      direct: () => toUpstream('/v1/chat/completions', body).then(check),
      gateway: () => toGateway('/v1/chat/completions', body).then(check),
      cpu: () => ({
        mine: (({ user, system }) => user + system)(process.cpuUsage()),
        gateway: cpuMicros(gatewayPid),
        upstream: cpuMicros(upstreamChild.pid),
      }),
    };
  };
  const httpVia = viaProcess(clawUrl, clawChild.pid);
  const proxyVia = viaProcess(`http://127.0.0.1:${proxyPort}`, proxyChild.pid);

  /** Interleaved: each worker alternates direct and gateway calls, so both see the same conditions. */
  async function interleaved(paths, c, pairs) {
    const direct = [];
    const viaGateway = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: c }, async () => {
        while (next < pairs * 2) {
          const i = next++;
          const useGateway = i % 2 === 1;
          const t0 = performance.now();
          await (useGateway ? paths.gateway(i) : paths.direct(i));
          (useGateway ? viaGateway : direct).push(performance.now() - t0);
        }
      }),
    );
    return { direct, viaGateway };
  }

  /**
   * Throughput in rounds of two timed phases (direct then gateway, gateway then direct, …): req/s
   * summed per side, the ratio of the median round with the spread of the rounds, and the CPU
   * each side cost per call (in this process, and in the gateway's process for the HTTP path).
   */
  async function throughput(paths, c, total) {
    const wall = { direct: 0, gateway: 0 };
    const cpu = { direct: {}, gateway: {} };
    const rounds = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const ms = {};
      for (const side of round % 2 === 0 ? ['direct', 'gateway'] : ['gateway', 'direct']) {
        const before = paths.cpu();
        const { wallMs } = await load((i) => paths[side](i), { total, concurrency: c });
        const after = paths.cpu();
        for (const key of Object.keys(after))
          cpu[side][key] = (cpu[side][key] ?? 0) + (after[key] - before[key]);
        wall[side] += wallMs;
        ms[side] = wallMs;
      }
      rounds.push(ms.direct / ms.gateway);
    }
    const calls = total * ROUNDS;
    const perCall = (side) => Object.fromEntries(Object.entries(cpu[side]).map(([k, v]) => [k, v / calls]));
    return {
      direct: (calls * 1000) / wall.direct,
      gateway: (calls * 1000) / wall.gateway,
      // The median round: a burst of other work on the machine spoils a round, not the figure.
      ratio: percentile(rounds, 50),
      cpuDirect: perCall('direct'),
      cpuGateway: perCall('gateway'),
      roundMin: Math.min(...rounds),
      roundMax: Math.max(...rounds),
    };
  }

  async function measure(name, pathsFor) {
    const rows = [];
    for (const c of [1, 16, 64]) {
      const paths = pathsFor(c);
      await interleaved(paths, c, 300); // warm-up
      const { direct, viaGateway } = await interleaved(paths, c, PAIRS[c]);
      const rps = await throughput(paths, c, Math.max(300, Math.floor(PAIRS[c] / 8)));
      rows.push({
        name,
        c,
        directP50: percentile(direct, 50),
        directP99: percentile(direct, 99),
        addedP50: percentile(viaGateway, 50) - percentile(direct, 50),
        addedP99: percentile(viaGateway, 99) - percentile(direct, 99),
        ...rps,
      });
    }
    return rows;
  }

  const rows = [
    ...(await measure('in-process', () => inProcess)),
    ...(await measure('in-process, Node fetch', () => inProcessNodeFetch)),
    ...(await measure('HTTP', httpVia)),
    ...(await measure(BARE_PROXY, proxyVia)),
  ];

  // Cache hit, in-process.
  const cached = await build(true);
  const hitRequest = { model: 'auto', messages };
  await cached.complete(hitRequest, ctxOf(0));
  const first = await cached.complete(hitRequest, ctxOf(0));
  if (!first.cached) throw new Error('the cache did not answer the repeat');
  for (let i = 0; i < 2000; i += 1) await cached.complete(hitRequest, ctxOf(i));
  const hits = [];
  for (let i = 0; i < 20_000; i += 1) {
    const t0 = performance.now();
    await cached.complete(hitRequest, ctxOf(i));
    hits.push(performance.now() - t0);
  }

  const exited = [upstreamChild, clawChild, proxyChild].map(
    (child) => new Promise((resolve) => child.once('exit', resolve)),
  );
  for (const child of [upstreamChild, clawChild, proxyChild]) child.kill('SIGTERM');
  await Promise.all(exited);

  const ms = (n) => n.toFixed(3);
  const us = (n) => (n === undefined ? '-' : n.toFixed(0));
  const pct = (n) => `${(n * 100).toFixed(1)}%`;
  const met = (ok) => (ok ? 'met' : 'NOT met');
  console.log(
    `bench/models — node ${process.version}; pairs per level: c=1 ${PAIRS[1]}, c=16 ${PAIRS[16]}, c=64 ${PAIRS[64]}; throughput: ${ROUNDS} rounds of alternating phases`,
  );
  console.log('');
  console.log(
    '| path | c | direct p50 ms | direct p99 ms | added p50 ms | added p99 ms | direct req/s | gateway req/s | throughput vs direct: median round (min-max) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.c} | ${ms(r.directP50)} | ${ms(r.directP99)} | ${ms(r.addedP50)} | ${ms(r.addedP99)} | ${r.direct.toFixed(0)} | ${r.gateway.toFixed(0)} | ${pct(r.ratio)} (${pct(r.roundMin)}-${pct(r.roundMax)}) |`,
    );
  }
  console.log('');
  console.log('CPU per call, µs (throughput phases; /proc for the child processes):');
  console.log(
    '| path | c | direct: this process | gateway: this process | gateway: its own process | upstream process (direct / via gateway) |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.c} | ${us(r.cpuDirect.mine)} | ${us(r.cpuGateway.mine)} | ${us(r.cpuGateway.gateway)} | ${r.cpuDirect.upstream === undefined ? '-' : `${us(r.cpuDirect.upstream)} / ${us(r.cpuGateway.upstream)}`} |`,
    );
  }
  console.log('');
  const at64 = (name) => rows.find((r) => r.name === name && r.c === 64);
  console.log(
    `outbound HTTP client, the SDK alone at c=64: ${outbound ? 'node-fetch on keep-alive agents' : 'global fetch (node-fetch unavailable)'} ${at64('in-process').direct.toFixed(0)} req/s, ${us(at64('in-process').cpuDirect.mine)} µs CPU/call; Node's fetch ${at64('in-process, Node fetch').direct.toFixed(0)} req/s, ${us(at64('in-process, Node fetch').cpuDirect.mine)} µs CPU/call`,
  );
  console.log('');
  const hitP50 = percentile(hits, 50);
  console.log(
    `cache hit in-process: p50 ${ms(hitP50)} ms, p99 ${ms(percentile(hits, 99))} ms (target p50 <= 0.1 ms: ${met(hitP50 <= 0.1)})`,
  );
  for (const name of ['in-process', 'in-process, Node fetch', 'HTTP', BARE_PROXY]) {
    const c16 = rows.find((r) => r.name === name && r.c === 16);
    const c64 = rows.find((r) => r.name === name && r.c === 64);
    console.log(
      `${name}: added p50 ${ms(c16.addedP50)} ms (target <= 0.3: ${met(c16.addedP50 <= 0.3)}), p99 ${ms(c16.addedP99)} ms (target <= 1: ${met(c16.addedP99 <= 1)}) at c=16; throughput ${pct(c64.ratio)} of direct at c=64 (target >= 90%: ${met(c64.ratio >= 0.9)})`,
    );
  }
  console.log('');
  console.log(
    `in-process: both sides use the same openai SDK client options and outbound HTTP client (${outbound ? 'node-fetch on keep-alive agents, as the gateway runs' : 'global fetch'}; "Node fetch": Node's global fetch on both sides) and share this process; "added" is the gateway's own work (a call context, routing, the chain, accounting, metrics), the same per call over either client.`,
  );
  console.log(
    'HTTP: the gateway is a separate process doing an inbound and an outbound HTTP exchange per request; with the load client, the gateway and the upstream on 2 cores, its throughput ratio is bounded by its CPU per request (column "its own process") against the bare upstream\'s.',
  );
  const floor64 = at64(BARE_PROXY);
  console.log(
    `${BARE_PROXY}: a process that only streams each request to the upstream and the answer back reaches ${pct(floor64.ratio)} of direct at c=64 and adds ${ms(rows.find((r) => r.name === BARE_PROXY && r.c === 16).addedP50)} ms p50 at c=16: the floor of a gateway on node:http in a process of its own, on these two shared cores; Clawmesh's gateway process reaches ${pct(at64('HTTP').ratio)} (${pct(at64('HTTP').ratio / floor64.ratio)} of the floor).`,
  );
  process.exit(0);
}
