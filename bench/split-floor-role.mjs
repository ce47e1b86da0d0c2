// One process of bench/hops's floor split: the same shape of turn as Clawmesh's fully split
// deployment (an HTTP request into a gateway, a NATS request to a conversation process, which
// makes four Redis round trips and three NATS requests to two other processes), with nothing
// of Clawmesh in it: node:http, nats.js and the redis client, fixed payloads, no validation,
// no tracing, no metrics. What a split turn costs on this machine before any of our code runs.
//
//   node bench/split-floor-role.mjs gateway|conversation|models|skills
//
// Environment: NATS_URL, REDIS_URL, FLOOR_PREFIX (subject and key prefix). Prints
// `{"ready":true,"url":…}` on stdout once it serves.
import http from 'node:http';
import { connect } from '@nats-io/transport-node';
import { createClient } from 'redis';

const role = process.argv[2];
const prefix = process.env.FLOOR_PREFIX ?? 'floor';
const nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', noAsyncTraces: true });
/** About what a new conversation's model call carries (2 KB), and what comes back (1 KB). */
const REQUEST = new Uint8Array(2048).fill(120);
const REPLY = new Uint8Array(1024).fill(121);
const subject = (name) => `${prefix}.${name}`;
const request = (name) => nc.request(subject(name), REQUEST, { timeout: 5000 });
const ready = (url) => console.log(JSON.stringify({ ready: true, url }));

if (role === 'models' || role === 'skills') {
  nc.subscribe(subject(role), { queue: role, callback: (err, msg) => err || msg.respond(REPLY) });
  await nc.flush();
  ready();
} else if (role === 'conversation') {
  const redis = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
  await redis.connect();
  let turn = 0;
  nc.subscribe(subject('conversation'), {
    queue: 'conversation',
    callback: async (err, msg) => {
      if (err) return;
      const key = `${prefix}:${turn++ % 50}`;
      // As a split turn: the lease with the first reads, the journal, three calls, the
      // record, then the claim's end and the lease's release.
      await redis.set(`${key}:lease`, 'holder', { PX: 10000 });
      await redis.set(`${key}:journal`, 'started', { PX: 600000 });
      await request('models');
      await request('skills');
      await request('models');
      await redis.set(`${key}:record`, 'turn');
      await redis.del(`${key}:lease`);
      msg.respond(REPLY);
    },
  });
  await nc.flush();
  ready();
} else if (role === 'gateway') {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      request('conversation').then(
        (reply) =>
          res.writeHead(200, { 'content-type': 'application/json' }).end(`{"bytes":${reply.data.length}}`),
        (err) => res.writeHead(503).end(String(err)),
      );
    });
  });
  server.listen(0, '127.0.0.1', () => ready(`http://127.0.0.1:${server.address().port}`));
} else {
  console.error(`unknown role ${role}: gateway, conversation, models or skills`);
  process.exit(2);
}
