// A loopback OTLP/HTTP receiver for the benchmarks, in a process of its own (as a collector is):
// reads and discards what it is sent (protobuf or JSON), counting the spans; `GET /count`
// answers the count.
import http from 'node:http';

let spans = 0;

/** Calls `visit(field, start, end)` for each length-delimited field of the message in bytes[start, end). */
function eachLengthDelimited(bytes, start, end, visit) {
  let pos = start;
  const varint = () => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const byte = bytes[pos++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
      shift += 7;
    }
  };
  while (pos < end) {
    const tag = varint();
    const wireType = tag & 7;
    if (wireType === 0) varint();
    else if (wireType === 1) pos += 8;
    else if (wireType === 5) pos += 4;
    else {
      const length = varint();
      visit(tag >>> 3, pos, pos + length);
      pos += length;
    }
  }
}

/** Spans in a protobuf ExportTraceServiceRequest: resource_spans (1) → scope_spans (2) → spans (2). */
function countProtobufSpans(bytes) {
  let count = 0;
  eachLengthDelimited(bytes, 0, bytes.length, (field, start, end) => {
    if (field !== 1) return;
    eachLengthDelimited(bytes, start, end, (field2, start2, end2) => {
      if (field2 !== 2) return;
      eachLengthDelimited(bytes, start2, end2, (field3) => {
        if (field3 === 2) count += 1;
      });
    });
  });
  return count;
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ spans }));
    return;
  }
  const protobuf = String(req.headers['content-type']).startsWith('application/x-protobuf');
  const chunks = [];
  req.on('data', (chunk) => {
    if (protobuf) chunks.push(chunk);
    // JSON is counted per chunk: a key split between two chunks is missed, which is rare and harmless.
    else for (let i = chunk.indexOf('"spanId"'); i >= 0; i = chunk.indexOf('"spanId"', i + 8)) spans += 1;
  });
  req.on('end', () => {
    if (protobuf) spans += countProtobufSpans(Buffer.concat(chunks));
    res.writeHead(200, { 'content-type': protobuf ? 'application/x-protobuf' : 'application/json' });
    res.end(protobuf ? '' : '{}');
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
