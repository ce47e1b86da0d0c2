// bench/models: the Model Gateway's added latency against calling a fake OpenAI upstream
// directly, the two interleaved request by request, at concurrency 1, 16 and 64; throughput as a
// ratio to direct (alternating timed phases); and the latency of an in-process cache hit.
// Two ways in, both measured in the same run:
//   in-process  the gateway's `complete()` (routing, chain, accounting, metrics, the openai SDK
//               provider) against the same openai SDK calling the upstream itself;
//   HTTP        `POST /v1/chat/completions` on a `clawmesh start` process (the gateway as a proxy)
//               against the same keep-alive client POSTing to the upstream itself.
// The upstream is a minimal node:http server in its own process. Run with `npm run bench:models`.
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load, makeClient, percentile, spawnNode, waitHealthy } from './lib.mjs';

const SELF = fileURLToPath(import.meta.url);

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
} else {
  await main();
}

async function main() {
  const dist = (path) => new URL(`../dist/src/${path}`, import.meta.url).href;
  const { loadConfig } = await import(dist('config/load.js'));
  const { buildModels } = await import(dist('runtime/models.js'));
  const { createCallContext } = await import(dist('core/context.js'));
  const { createMetrics } = await import(dist('observability/metrics.js'));
  const { silentLogger } = await import(dist('observability/logger.js'));
  const { default: OpenAI } = await import('openai');

  const PAIRS = {
    1: Number(process.env.BENCH_PAIRS_C1 ?? 1500),
    16: Number(process.env.BENCH_PAIRS_C16 ?? 4000),
    64: Number(process.env.BENCH_PAIRS_C64 ?? 6000),
  };
  const ROUNDS = 3;
  const messages = [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'What is the answer to life, the universe and everything?' },
  ];

  const { child: upstreamChild, value: upstreamPort } = await spawnNode([SELF, '--upstream'], {
    ready: (line) => (line.startsWith('{') ? JSON.parse(line).port : undefined),
  });
  const upstream = `http://127.0.0.1:${upstreamPort}/v1`;
  const env = { OPENAI_API_KEY: 'sk-bench', OPENAI_BASE_URL: upstream, OPENAI_MODEL: 'bench-model' };

  // In-process: the gateway as the monolith builds it (metrics on), and the SDK alone.
  const build = async (cache) => {
    const { config } = loadConfig({
      env,
      cwd: tmpdir(),
      overrides: {
        models: { cache: { enabled: cache }, prices: { 'bench-model': { input: 0.15, output: 0.6 } } },
      },
    });
    return (
      await buildModels(config, { logger: silentLogger(), metrics: createMetrics({ defaultMetrics: false }) })
    ).service;
  };
  const gateway = await build(false);
  const sdk = new OpenAI({ apiKey: 'sk-bench', baseURL: upstream, maxRetries: 0 });
  const ctxOf = (i) => createCallContext({ timeoutMs: 30_000, userId: `u${i % 50}`, agentId: 'bench' });
  const inProcess = {
    direct: () => sdk.chat.completions.create({ model: 'bench-model', messages }),
    gateway: (i) => gateway.complete({ model: 'auto', messages }, ctxOf(i)),
  };

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
  const body = { model: 'auto', messages };
  const httpVia = (c) => {
    const toGateway = makeClient(clawUrl, c);
    const toUpstream = makeClient(`http://127.0.0.1:${upstreamPort}`, c);
    const check = (res) => {
      if (res.status !== 200) throw new Error(`status ${res.status}: ${res.body}`);
    };
    return {
      direct: () => toUpstream('/v1/chat/completions', body).then(check),
      gateway: () => toGateway('/v1/chat/completions', body).then(check),
    };
  };

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

  /** Throughput in alternating timed phases (direct, gateway, direct, …), summed per side. */
  async function throughput(paths, c, total) {
    const wall = { direct: 0, gateway: 0 };
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const side of round % 2 === 0 ? ['direct', 'gateway'] : ['gateway', 'direct']) {
        const { wallMs } = await load((i) => paths[side](i), { total, concurrency: c });
        wall[side] += wallMs;
      }
    }
    return { direct: (total * ROUNDS * 1000) / wall.direct, gateway: (total * ROUNDS * 1000) / wall.gateway };
  }

  async function measure(name, pathsFor) {
    const rows = [];
    for (const c of [1, 16, 64]) {
      const paths = pathsFor(c);
      await interleaved(paths, c, 300); // warm-up
      const { direct, viaGateway } = await interleaved(paths, c, PAIRS[c]);
      const rps = await throughput(paths, c, Math.max(500, Math.floor(PAIRS[c] / 2)));
      rows.push({
        name,
        c,
        directP50: percentile(direct, 50),
        directP99: percentile(direct, 99),
        addedP50: percentile(viaGateway, 50) - percentile(direct, 50),
        addedP99: percentile(viaGateway, 99) - percentile(direct, 99),
        ratio: rps.gateway / rps.direct,
        directRps: rps.direct,
        gatewayRps: rps.gateway,
      });
    }
    return rows;
  }

  const rows = [...(await measure('in-process', () => inProcess)), ...(await measure('HTTP', httpVia))];

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

  const exited = [upstreamChild, clawChild].map(
    (child) => new Promise((resolve) => child.once('exit', resolve)),
  );
  upstreamChild.kill('SIGTERM');
  clawChild.kill('SIGTERM');
  await Promise.all(exited);

  const ms = (n) => n.toFixed(3);
  console.log(
    `bench/models — node ${process.version}; pairs per level: c=1 ${PAIRS[1]}, c=16 ${PAIRS[16]}, c=64 ${PAIRS[64]}`,
  );
  console.log('');
  console.log(
    '| path | c | direct p50 ms | direct p99 ms | added p50 ms | added p99 ms | direct req/s | gateway req/s | throughput vs direct |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.c} | ${ms(r.directP50)} | ${ms(r.directP99)} | ${ms(r.addedP50)} | ${ms(r.addedP99)} | ${r.directRps.toFixed(0)} | ${r.gatewayRps.toFixed(0)} | ${(r.ratio * 100).toFixed(1)}% |`,
    );
  }
  console.log('');
  console.log(
    `cache hit in-process: p50 ${ms(percentile(hits, 50))} ms, p99 ${ms(percentile(hits, 99))} ms (target p50 <= 0.1 ms)`,
  );
  for (const name of ['in-process', 'HTTP']) {
    const c16 = rows.find((r) => r.name === name && r.c === 16);
    const c64 = rows.find((r) => r.name === name && r.c === 64);
    console.log(
      `${name}: added p50 ${ms(c16.addedP50)} ms (target <= 0.3), p99 ${ms(c16.addedP99)} ms (target <= 1) at c=16; throughput ${(c64.ratio * 100).toFixed(1)}% of direct at c=64 (target >= 90%)`,
    );
  }
  process.exit(0);
}
