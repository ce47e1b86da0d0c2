// A loopback OTLP/HTTP receiver for the benchmarks, in a process of its own (as a collector is):
// reads and discards what it is sent, counting the spans; `GET /count` answers the count.
import http from 'node:http';

let spans = 0;
const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ spans }));
    return;
  }
  req.on('data', (chunk) => {
    // Counted per chunk: a key split between two chunks is missed, which is rare and harmless.
    for (let i = chunk.indexOf('"spanId"'); i >= 0; i = chunk.indexOf('"spanId"', i + 8)) spans += 1;
  });
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
