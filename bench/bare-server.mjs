// The baseline: a bare node:http server that answers every POST with a fixed JSON body of the
// same size as a Clawmesh reply (BODY_BYTES), after reading the request body.
import http from 'node:http';

const size = Number(process.env.BODY_BYTES ?? 400);
const body = JSON.stringify({
  conversationId: 'c_0',
  text: 'x'.repeat(Math.max(0, size - 60)),
  toolCalls: [],
});
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    JSON.parse(Buffer.concat(chunks).toString() || '{}');
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
