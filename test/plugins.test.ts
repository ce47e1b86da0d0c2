import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClawmeshPlugin } from '../src/plugins/types.ts';
import { startTestApp, type TestApp } from './support/app.ts';

describe('plugins over the HTTP API', () => {
  const calls: string[] = [];
  let t: TestApp;
  const auditFile = () => join(t.dir, 'plugin-audit.jsonl');

  const second: ClawmeshPlugin = {
    name: 'second',
    priority: 20,
    onMessageReceived(_ctx, message) {
      calls.push(`second:${message.text}`);
      return { ...message, text: message.text.replace('SHIRTS', 'shirts') };
    },
  };
  const first: ClawmeshPlugin = {
    name: 'first',
    priority: 10,
    onMessageReceived(_ctx, message) {
      calls.push(`first:${message.text}`);
      if (message.text.includes('drop me')) return null;
      // A returned string replaces the text.
      return message.text.trim();
    },
    onResponseGenerated(_ctx, response) {
      return { ...response, text: `${response.text} [checked]` };
    },
  };
  const thrower: ClawmeshPlugin = {
    name: 'thrower',
    priority: 30,
    onMessageReceived() {
      throw new Error('plugin bug');
    },
  };
  const hanger: ClawmeshPlugin = {
    name: 'hanger',
    priority: 40,
    timeoutMs: 100,
    onResponseGenerated() {
      return new Promise(() => {});
    },
  };

  beforeAll(async () => {
    t = await startTestApp(
      { plugins: ['./examples/plugins/audit-logger.js', './examples/plugins/moderation.mjs'] },
      { plugins: [second, thrower, first, hanger] },
    );
    process.env.AUDIT_LOG_FILE = auditFile();
  });
  afterAll(async () => {
    await t.stop();
    delete process.env.AUDIT_LOG_FILE;
  });

  it('runs hooks in priority order; a returned value replaces the message and the response', async () => {
    calls.length = 0;
    const res = await t.post('/v1/messages', { userId: 'p1', text: 'how many red SHIRTS are in stock?' });
    expect(res.status).toBe(200);
    expect(calls).toEqual([
      'first:how many red SHIRTS are in stock?',
      'second:how many red SHIRTS are in stock?',
    ]);
    expect(res.body.toolCalls[0]).toMatchObject({ skill: 'inventory', arguments: { item: 'red shirts' } });
    expect(res.body.text).toMatch(/\[checked\]$/);
  });

  it('drops a message when a plugin returns null: no turn, no later plugin', async () => {
    calls.length = 0;
    const res = await t.post('/v1/messages', { userId: 'p2', text: 'please drop me' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ dropped: true, text: '', toolCalls: [] });
    expect(calls).toEqual(['first:please drop me']);
    expect(await t.app.services.conversations!.messages(res.body.conversationId)).toEqual([]);
  });

  it('drops a message through the ESM moderation example', async () => {
    const res = await t.post('/v1/messages', { userId: 'p3', text: 'something forbidden here' });
    expect(res.body.dropped).toBe(true);
  });

  it('contains a throwing and a hanging plugin: the turn still answers, and both are counted', async () => {
    const started = performance.now();
    const res = await t.post('/v1/messages', { userId: 'p4', text: 'hello there' });
    expect(res.status).toBe(200);
    expect(res.body.text.length).toBeGreaterThan(0);
    expect(performance.now() - started).toBeLessThan(2000);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(
      /clawmesh_plugin_failures_total\{plugin="thrower",hook="onMessageReceived",reason="error"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /clawmesh_plugin_failures_total\{plugin="hanger",hook="onResponseGenerated",reason="timeout"\} [1-9]/,
    );
  });

  it('loads the classic CommonJS audit-logger unchanged and it writes its lines', async () => {
    await t.post('/v1/messages', { userId: 'p5', text: 'hello audit' });
    const lines = readFileSync(auditFile(), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.some((line) => line.text === 'hello audit')).toBe(true);
    expect(lines.some((line) => line.userId === 'p5')).toBe(true);
  });
});
