// Loaded into the server under test with `node --expose-gc -r bench/gc-probe.cjs`: on SIGUSR2 it
// runs a full garbage collection and appends the live heap and RSS to BENCH_GC_FILE, so the
// bench can tell a leak (live heap grows) from V8 keeping freed heap (RSS grows, live heap flat).
const { appendFileSync } = require('node:fs');

process.on('SIGUSR2', () => {
  global.gc();
  const { heapUsed, rss } = process.memoryUsage();
  appendFileSync(process.env.BENCH_GC_FILE, `${JSON.stringify({ heapUsed, rss })}\n`);
});
