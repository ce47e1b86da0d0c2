import { afterEach, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';

/*
 * `clawmesh start gateway conversation` (or every role) with CLAWMESH_TRANSPORT=http: the services
 * the process runs itself need no URL (start asks for none), and their calls must reach them.
 */
describe('several roles in one process on the http transport', () => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.stop();
  });

  const start = async (overrides: Record<string, unknown>) => {
    const app = await startTestApp({ store: { kind: 'memory', lease: 'memory' }, ...overrides });
    apps.push(app);
    return app;
  };

  it('answers with every role in the process and no URL set', async () => {
    const app = await start({ transport: { kind: 'http' } });
    const reply = await app.post('/v1/messages', { userId: 'u1', text: 'how many red shirts are in stock?' });
    expect(reply.status).toBe(200);
    expect(reply.body.toolCalls[0]).toMatchObject({ skill: 'inventory', ok: true });
  });

  it('answers with the gateway and the conversation role together, models and skills elsewhere', async () => {
    const backends = await start({ roles: ['models', 'skills'], transport: { kind: 'http' } });
    const front = await start({
      roles: ['gateway', 'conversation'],
      transport: { kind: 'http', urls: { models: backends.url, skills: backends.url } },
    });
    const began = performance.now();
    const reply = await front.post('/v1/messages', {
      userId: 'u1',
      text: 'how many red shirts are in stock?',
    });
    expect(reply.status).toBe(200);
    expect(reply.body.toolCalls[0]).toMatchObject({ skill: 'inventory', ok: true });
    expect(performance.now() - began).toBeLessThan(5000);
    expect((await fetch(`${front.url}/readyz`)).status).toBe(200);
  });
});
