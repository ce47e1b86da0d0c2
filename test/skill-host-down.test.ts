import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('a conversation role whose skill host is down (http transport)', () => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.stop();
  });

  it('answers every turn without tools, the concurrent first turns too', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const app = await startTestApp({
      roles: ['gateway', 'conversation', 'models'],
      transport: { kind: 'http', urls: { skills: dead } },
      store: { kind: 'memory', lease: 'memory' },
      skills: { load: ['inventory'] },
    });
    apps.push(app);
    // The first turns arrive together: all share the one tool lookup, which fails.
    const replies = await Promise.all(
      Array.from({ length: 8 }, (_, i) => app.post('/v1/messages', { userId: `u${i}`, text: 'hello' })),
    );
    expect(replies.map((reply) => reply.status)).toEqual(Array(8).fill(200));
    for (const reply of replies) expect(reply.body.toolCalls).toEqual([]);
  });
});
