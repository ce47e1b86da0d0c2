import { describe, expect, it } from 'vitest';
import { createLogger } from '../observability/logger.ts';
import { createMetrics, type Metrics } from '../observability/metrics.ts';
import { createHookRunner } from './hooks.ts';
import type { ClawmeshPlugin, HookContext, PluginMessage } from './types.ts';

const turn = {
  requestId: 'req-1',
  traceId: 'trace-1',
  conversationId: 'conv-1',
  agentId: 'agent-1',
  channel: 'telegram',
  userId: 'user-1',
};

const message = (): PluginMessage => ({
  text: 'hello',
  userId: 'user-1',
  channel: 'telegram',
  agentId: 'agent-1',
  conversationId: 'conv-1',
});

/** A runner whose log lines are kept for assertions. */
function setup(plugins: ClawmeshPlugin[], defaultTimeoutMs?: number) {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (s: string) => lines.push(JSON.parse(s)) },
  });
  const metrics = createMetrics({ defaultMetrics: false });
  const runner = createHookRunner({ plugins, logger, metrics, defaultTimeoutMs });
  return { runner, metrics, lines };
}

async function failures(metrics: Metrics) {
  return (await metrics.pluginFailures.get()).values.map((v) => ({ ...v.labels, value: v.value }));
}

describe('createHookRunner', () => {
  it('runs hooks by ascending priority, ties in load order', async () => {
    const calls: string[] = [];
    const record = (name: string, priority?: number): ClawmeshPlugin => ({
      name,
      priority,
      onMessageReceived: () => {
        calls.push(name);
        return undefined;
      },
    });
    const { runner } = setup([
      record('late', 200),
      record('default-a'),
      record('early', 10),
      record('default-b'),
    ]);
    await runner.run('onMessageReceived', turn, message());
    expect(calls).toEqual(['early', 'default-a', 'default-b', 'late']);
    expect(runner.plugins.map((p) => p.name)).toEqual(['early', 'default-a', 'default-b', 'late']);
  });

  it('replaces the message with a returned object, without mutating the caller’s', async () => {
    const { runner } = setup([
      {
        name: 'classic',
        onMessageReceived(_context, m) {
          m.text = `${m.text}!`;
          return m;
        },
      },
      { name: 'next', onMessageReceived: (_context, m) => ({ ...m, metadata: { seen: m.text } }) },
    ]);
    const original = message();
    const result = await runner.run('onMessageReceived', turn, original);
    expect(result).toMatchObject({ text: 'hello!', metadata: { seen: 'hello!' } });
    expect(original.text).toBe('hello');
  });

  it('replaces the text with a returned string', async () => {
    const { runner } = setup([{ name: 'upper', onResponseGenerated: (_c, r) => r.text.toUpperCase() }]);
    const response = { text: 'hi', conversationId: 'conv-1', toolCalls: [] };
    expect(await runner.run('onResponseGenerated', turn, response)).toEqual({ ...response, text: 'HI' });
    expect(response.text).toBe('hi');
  });

  it('contains a returned value that cannot replace the hook’s, and counts it as invalid', async () => {
    const { runner, metrics, lines } = setup([
      // A plugin bug each: no text, a text that is no string, an array, skill call without arguments.
      { name: 'empty', onMessageReceived: () => ({}) as PluginMessage },
      { name: 'numeric', onResponseGenerated: () => ({ text: 7 }) as never },
      { name: 'listy', onMessageReceived: () => [] as unknown as PluginMessage },
      { name: 'argless', onSkillCall: () => ({ skill: 's', tool: 't' }) as never },
      { name: 'messageless', onModelCall: () => ({ messages: 'hi' }) as never },
      { name: 'fine', onMessageReceived: (_c, m) => ({ ...m, text: `${m.text}?` }) },
    ]);
    expect(await runner.run('onMessageReceived', turn, message())).toMatchObject({ text: 'hello?' });
    const response = { text: 'hi', conversationId: 'conv-1', toolCalls: [] };
    expect(await runner.run('onResponseGenerated', turn, response)).toEqual(response);
    const call = { skill: 's', tool: 't', arguments: { q: 1 } };
    expect(await runner.run('onSkillCall', turn, call)).toEqual(call);
    const request = { messages: [{ role: 'user' as const, content: 'hi' }], tools: [] };
    expect(await runner.run('onModelCall', turn, request)).toEqual(request);
    expect(await failures(metrics)).toEqual(
      expect.arrayContaining(
        ['empty', 'numeric', 'listy', 'argless', 'messageless'].map((plugin) =>
          expect.objectContaining({ plugin, reason: 'invalid', value: 1 }),
        ),
      ),
    );
    expect(lines.find((l) => l.plugin === 'empty')?.msg).toBe(
      'plugin empty onMessageReceived returned an object without a string `text`; ignored',
    );
  });

  it('ignores a null from onModelCall, keeping what earlier plugins changed', async () => {
    const seen: unknown[] = [];
    const system = { role: 'system' as const, content: 'added' };
    const hooks = createHookRunner({
      plugins: [
        { name: 'add', priority: 1, onModelCall: (_c, r) => ({ ...r, messages: [system, ...r.messages] }) },
        { name: 'null', priority: 2, onModelCall: () => null },
        { name: 'after', priority: 3, onModelCall: (_c, r) => void seen.push(r.messages.length) },
      ],
      logger: createLogger({ level: 'silent' }),
    });
    const request = { messages: [{ role: 'user' as const, content: 'hi' }], tools: [] };
    const result = await hooks.run('onModelCall', turn, request);
    expect(result?.messages).toEqual([system, { role: 'user', content: 'hi' }]);
    expect(seen).toEqual([2]);
  });

  it('drops on null and calls no later plugin', async () => {
    let laterCalled = false;
    const { runner } = setup([
      { name: 'drop', onMessageReceived: () => null },
      {
        name: 'later',
        onMessageReceived: () => {
          laterCalled = true;
          return undefined;
        },
      },
    ]);
    expect(await runner.run('onMessageReceived', turn, message())).toBeNull();
    expect(laterCalled).toBe(false);
  });

  it('keeps the value when a plugin returns undefined', async () => {
    const { runner } = setup([{ name: 'watch', onMessageReceived: () => undefined }]);
    expect(await runner.run('onMessageReceived', turn, message())).toEqual(message());
  });

  it('ignores a string from onSkillCall and a number from any hook, with a warning', async () => {
    const { runner, lines } = setup([
      { name: 'str', onSkillCall: () => 'nope' },
      { name: 'num', onSkillCall: () => 42 as unknown as undefined },
    ]);
    const call = { skill: 'weather', tool: 'forecast', arguments: { city: 'Oslo' } };
    expect(await runner.run('onSkillCall', turn, call)).toEqual(call);
    expect(lines.filter((l) => l.level === 40).map((l) => l.plugin)).toEqual(['str', 'num']);
  });

  it('contains a sync throw and a rejection, counts them, and runs the next plugin', async () => {
    const { runner, metrics, lines } = setup([
      {
        name: 'sync',
        onMessageReceived(_c, m) {
          m.text = 'half-done';
          throw new Error('boom');
        },
      },
      { name: 'async', onMessageReceived: async () => Promise.reject(new Error('later boom')) },
      { name: 'ok', onMessageReceived: (_c, m) => `${m.text} world` },
    ]);
    expect(await runner.run('onMessageReceived', turn, message())).toMatchObject({ text: 'hello world' });
    expect(await failures(metrics)).toEqual([
      { plugin: 'sync', hook: 'onMessageReceived', reason: 'error', value: 1 },
      { plugin: 'async', hook: 'onMessageReceived', reason: 'error', value: 1 },
    ]);
    const warns = lines.filter((l) => l.level === 40);
    expect(warns).toEqual([
      expect.objectContaining({ plugin: 'sync', hook: 'onMessageReceived', error: 'boom' }),
      expect.objectContaining({ plugin: 'async', hook: 'onMessageReceived', error: 'later boom' }),
    ]);
  });

  it('cuts a hanging plugin at its timeout and counts a timeout', async () => {
    const { runner, metrics } = setup([
      { name: 'hang', timeoutMs: 50, onMessageReceived: () => new Promise<undefined>(() => {}) },
      { name: 'ok', onMessageReceived: () => 'after' },
    ]);
    const started = performance.now();
    const result = await runner.run('onMessageReceived', turn, message());
    const elapsed = performance.now() - started;
    expect(result).toMatchObject({ text: 'after' });
    expect(elapsed).toBeGreaterThanOrEqual(45);
    expect(elapsed).toBeLessThan(500);
    expect(await metrics.registry.getSingleMetricAsString('clawmesh_plugin_failures_total')).toContain(
      'clawmesh_plugin_failures_total{plugin="hang",hook="onMessageReceived",reason="timeout"} 1',
    );
  });

  it('uses the default timeout for a plugin without one', async () => {
    const { runner, metrics } = setup([{ name: 'hang', onModelCall: () => new Promise(() => {}) }], 30);
    const request = { messages: [] };
    expect(await runner.run('onModelCall', turn, request)).toEqual(request);
    expect(await failures(metrics)).toEqual([
      { plugin: 'hang', hook: 'onModelCall', reason: 'timeout', value: 1 },
    ]);
  });

  it('gives each hook a context with the turn and a logger bound to the plugin', async () => {
    let seen: HookContext | undefined;
    const { runner, lines } = setup([
      {
        name: 'talker',
        onMessageReceived(context) {
          seen = context;
          context.logger.info('hi from the plugin');
          return undefined;
        },
      },
    ]);
    await runner.run('onMessageReceived', turn, message());
    expect(seen).toMatchObject(turn);
    expect(lines).toContainEqual(
      expect.objectContaining({ plugin: 'talker', requestId: 'req-1', msg: 'hi from the plugin' }),
    );
  });

  it("writes a plugin's failure and its own lines with the turn's request, trace, span and conversation", async () => {
    const { runner, lines } = setup([
      {
        name: 'talker',
        onMessageReceived(context) {
          context.logger.info('hi from the plugin');
          throw new Error('broken');
        },
      },
    ]);
    await runner.run('onMessageReceived', { ...turn, spanId: 'span-1' }, message());
    const ids = { requestId: 'req-1', traceId: 'trace-1', spanId: 'span-1', conversationId: 'conv-1' };
    expect(lines).toContainEqual(expect.objectContaining({ ...ids, msg: 'hi from the plugin' }));
    expect(lines).toContainEqual(
      expect.objectContaining({ ...ids, msg: 'plugin talker onMessageReceived failed; skipped' }),
    );
  });

  it('tells every onError, containing their own throws and hangs', async () => {
    const seen: string[] = [];
    const { runner, metrics } = setup([
      {
        name: 'thrower',
        onError: () => {
          throw new Error('nope');
        },
      },
      { name: 'hanger', timeoutMs: 20, onError: () => new Promise(() => {}) },
      {
        name: 'listener',
        onError: (_c, error) => {
          seen.push(error.code);
        },
      },
    ]);
    await expect(
      runner.notifyError(turn, { code: 'INTERNAL', message: 'x', stage: 'turn' }),
    ).resolves.toBeUndefined();
    expect(seen).toEqual(['INTERNAL']);
    expect(await failures(metrics)).toEqual([
      { plugin: 'thrower', hook: 'onError', reason: 'error', value: 1 },
      { plugin: 'hanger', hook: 'onError', reason: 'timeout', value: 1 },
    ]);
  });

  it('returns the same value at once when no plugin has the hook', async () => {
    const { runner } = setup([{ name: 'only-errors', onError: () => {} }]);
    expect(runner.has('onMessageReceived')).toBe(false);
    expect(runner.has('onError')).toBe(true);
    const value = message();
    expect(await runner.run('onMessageReceived', turn, value)).toBe(value);
    await expect(
      setup([]).runner.notifyError(turn, { code: 'X', message: 'y', stage: 'turn' }),
    ).resolves.toBeUndefined();
  });
});
