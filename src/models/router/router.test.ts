import { describe, expect, it } from 'vitest';
import type { ChatMessage, ToolSpec } from '../../core/messages.ts';
import { estimateDifficulty } from './difficulty.ts';
import { createRouter } from './router.ts';

const user = (content: string): ChatMessage[] => [
  { role: 'system', content: 'You are helpful.' },
  { role: 'user', content },
];
const tool = (name: string): ToolSpec => ({ name, description: name, parameters: { type: 'object' } });

describe('estimateDifficulty', () => {
  it('scores a greeting 0 with no signals', () => {
    expect(estimateDifficulty({ messages: user('hi there') })).toEqual({ score: 0, signals: [] });
  });

  it('raises the score for length, code, multi-step wording and tools', () => {
    const code = estimateDifficulty({ messages: user('why does this fail?\n```js\nconst x = f(;\n```') });
    expect(code.signals).toContain('code');
    const long = estimateDifficulty({ messages: user('word '.repeat(500)) });
    expect(long.signals).toContain('very long');
    const steps = estimateDifficulty({
      messages: user('First compare the two plans, then design a migration step by step.'),
    });
    expect(steps.signals).toContain('multi-step');
    const tools = estimateDifficulty({ messages: user('stock?'), tools: [tool('a')] });
    expect(tools.signals).toEqual(['tools']);
    expect(steps.score).toBeGreaterThan(tools.score);
  });

  it('reads the last user message, never above 1', () => {
    const everything = estimateDifficulty({
      messages: user(
        `${'Analyze and compare, then refactor step by step. '.repeat(60)}\n\`\`\`\ncode();\n\`\`\`\n1. a\n2. b\n? ? ?`,
      ),
      tools: ['a', 'b', 'c', 'd', 'e'].map(tool),
    });
    expect(everything.score).toBeLessThanOrEqual(1);
    expect(everything.score).toBeGreaterThan(0.9);
    const earlier = estimateDifficulty({
      messages: [
        { role: 'user', content: `${'x'.repeat(3000)}` },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: 'thanks' },
      ],
    });
    expect(earlier.score).toBe(0);
  });
  it('reads "first … then" within one sentence, and code words only with ( = or : on their line', () => {
    const steps = (text: string) => estimateDifficulty({ messages: user(text) }).signals;
    expect(steps('First book it, then pay.')).toContain('multi-step wording');
    expect(steps('First book it. Then pay.')).toEqual([]);
    // One match runs to the sentence's last "then": "and then" inside it is not counted again.
    expect(steps('First book it and then pay, then leave.')).toContain('multi-step wording');
    expect(steps('First book it. And then pay.')).toContain('multi-step wording');
    expect(steps('return the book')).toEqual([]);
    expect(steps('return\nf(x)')).toEqual([]);
    expect(steps('const total = 1')).toContain('code');
  });

  it('takes linear time on text made to make a regular expression backtrack', () => {
    // Each of these held the event loop for seconds to minutes (96 KB of newlines: 14 s).
    for (const text of [
      '\n'.repeat(400_000),
      ' \n'.repeat(200_000),
      'first '.repeat(70_000),
      'return '.repeat(60_000),
      'first then '.repeat(40_000),
    ]) {
      const started = performance.now();
      estimateDifficulty({ messages: user(text) });
      expect(performance.now() - started, JSON.stringify(text.slice(0, 12))).toBeLessThan(250);
    }
  });
});

describe('createRouter', () => {
  const ctx = { agentId: 'support', channel: 'telegram' };
  const router = createRouter({
    tiers: ['fast', 'capable', 'vision'],
    rules: [
      { agent: 'coder', tier: 'capable' },
      { channel: 'telegram', pattern: '^/deep\\b', tier: 'capable' },
      { minDifficulty: 0.9, tier: 'vision' },
    ],
    defaultTarget: 'local',
  });

  it('never reroutes a request naming an exact model', () => {
    const decision = router.decide({ model: 'openai/gpt-4o', messages: user('/deep think') }, ctx);
    expect(decision).toEqual({ target: 'openai/gpt-4o', by: 'exact', reason: 'openai/gpt-4o requested' });
  });

  it('takes a named tier as asked', () => {
    expect(router.decide({ model: 'fast', messages: user('/deep') }, ctx)).toMatchObject({
      target: 'fast',
      tier: 'fast',
      by: 'tier',
    });
  });

  it('applies the first matching rule by agent, channel and pattern', () => {
    expect(router.decide({ messages: user('hello') }, { agentId: 'coder' })).toMatchObject({
      tier: 'capable',
      by: 'rule',
      reason: 'rule 1 (agent coder) -> tier capable',
    });
    const byPattern = router.decide({ messages: user('/DEEP what is love') }, ctx);
    expect(byPattern).toMatchObject({ tier: 'capable', by: 'rule' });
    expect(byPattern.reason).toContain('rule 2 (channel telegram, pattern /^/deep\\b/)');
    // The same text on another channel does not match rule 2.
    expect(router.decide({ messages: user('/deep what') }, { channel: 'api' }).by).toBe('difficulty');
  });

  it('routes by difficulty when no rule matches, with the reason and score', () => {
    const easy = router.decide({ messages: user('hi') }, ctx);
    expect(easy).toMatchObject({ tier: 'fast', by: 'difficulty', difficulty: 0 });
    expect(easy.reason).toBe('difficulty 0 < 0.5 -> tier fast');
    const hard = router.decide(
      { messages: user('First analyze this code step by step:\n```\nwhile(true){}\n```') },
      ctx,
    );
    expect(hard).toMatchObject({ tier: 'capable', by: 'difficulty' });
    expect(hard.reason).toMatch(/^difficulty 0\.\d+ >= 0\.5 \(code, multi-step.*\) -> tier capable$/);
  });

  it('shares one frozen decision between requests that route alike, and tells others apart', () => {
    const first = router.decide({ messages: user('hi there') }, ctx);
    const again = router.decide({ messages: user('hello you') }, ctx);
    expect(again).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    const withTools = router.decide({ messages: user('hi there'), tools: [tool('a')] }, ctx);
    expect(withTools).not.toBe(first);
    expect(withTools.reason).toBe('difficulty 0.1 < 0.5 (tools) -> tier fast');
    const manyTools = router.decide(
      { messages: user('hi'), tools: ['a', 'b', 'c', 'd', 'e', 'f'].map(tool) },
      ctx,
    );
    expect(manyTools.reason).toBe('difficulty 0.15 < 0.5 (6 tools) -> tier fast');
    expect(router.decide({ model: 'openai/gpt-4o', messages: user('x') }, ctx)).toBe(
      router.decide({ model: 'openai/gpt-4o', messages: user('y') }, ctx),
    );
  });

  it('keeps a difficulty rule decision per score', () => {
    const ruled = createRouter({
      tiers: ['fast', 'capable'],
      rules: [{ minDifficulty: 0.2, tier: 'capable' }],
      defaultTarget: 'local',
    });
    const code = ruled.decide({ messages: user('why does this fail?\n```js\nf(;\n```') }, {});
    const both = ruled.decide({ messages: user('First debug this, then compare:\n```js\nf(;\n```') }, {});
    expect([code.by, code.difficulty]).toEqual(['rule', 0.4]);
    expect(both.difficulty).toBeGreaterThan(0.4);
    expect(both.reason).toBe(`rule 1 (difficulty ${both.difficulty} >= 0.2) -> tier capable`);
  });

  it('treats "auto" as naming no model', () => {
    expect(router.decide({ model: 'auto', messages: user('hi') }, ctx).by).toBe('difficulty');
  });

  it('sends requests to the default when auto routing is off', () => {
    const plain = createRouter({
      tiers: ['fast', 'capable'],
      auto: false,
      defaultTarget: 'openai/gpt-4o-mini',
    });
    expect(plain.decide({ messages: user('hi') }, {})).toEqual({
      target: 'openai/gpt-4o-mini',
      by: 'default',
      reason: 'default openai/gpt-4o-mini',
    });
  });

  it('refuses a rule naming a tier that does not exist', () => {
    expect(() =>
      createRouter({ tiers: ['fast'], rules: [{ tier: 'huge' }], defaultTarget: 'local' }),
    ).toThrow(/models\.routing\.rules\.0\.tier: no tier "huge"/);
  });
});
