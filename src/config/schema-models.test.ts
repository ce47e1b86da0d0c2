import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './load.ts';

const cwd = mkdtempSync(join(tmpdir(), 'clawmesh-models-config-'));
const load = (env: NodeJS.ProcessEnv = {}, overrides?: Record<string, unknown>) =>
  loadConfig({ env, cwd, ...(overrides ? { overrides } : {}) }).config.models;

describe('the models config', () => {
  it('routes everything to local with no key, and keeps the old keys', () => {
    const models = load();
    expect(models.default).toBe('local');
    expect(models.openai).toEqual({ model: 'gpt-4o-mini', timeoutMs: 60_000 });
    expect(models.cache.enabled).toBe(false);
    expect(models.tiers).toEqual({});
    expect(models.routing).toMatchObject({ rules: [], auto: true, difficultyThreshold: 0.5 });
  });

  it('defaults to openai with OPENAI_API_KEY, and to anthropic with ANTHROPIC_API_KEY alone', () => {
    expect(load({ OPENAI_API_KEY: 'sk-1', OPENAI_MODEL: 'gpt-x' }).default).toBe('openai/gpt-x');
    const anthropic = load({ ANTHROPIC_API_KEY: 'a-1', ANTHROPIC_BASE_URL: 'http://127.0.0.1:9/' });
    expect(anthropic.default).toBe('anthropic/claude-3-5-haiku-latest');
    expect(anthropic.anthropic.baseUrl).toBe('http://127.0.0.1:9/');
    expect(load({ OPENAI_API_KEY: 'sk-1', ANTHROPIC_API_KEY: 'a' }).default).toBe('openai/gpt-4o-mini');
    expect(load({ OPENAI_API_KEY: 'sk-1', CLAWMESH_MODELS__DEFAULT: 'local' }).default).toBe('local');
  });

  it('reads deployments, tiers, rules, cache, prices and budgets', () => {
    const models = load(
      {},
      {
        models: {
          deployments: { 'eu-1': { provider: 'openai', apiKey: 'k', baseUrl: 'http://127.0.0.1:1/v1' } },
          tiers: { fast: ['eu-1', 'local'], capable: ['openai/gpt-4o'] },
          routing: { rules: [{ channel: 'telegram', pattern: '^/deep', tier: 'capable' }] },
          cache: { enabled: true, maxEntries: 10 },
          prices: { 'openai/gpt-4o': { input: 2.5, output: 10 } },
          budgets: { perUserDaily: { tokens: 1000 }, perConversation: { costUsd: 0.5 } },
        },
      },
    );
    expect(models.deployments['eu-1']?.provider).toBe('openai');
    expect(models.tiers.fast).toEqual(['eu-1', 'local']);
    expect(models.routing.rules[0]?.tier).toBe('capable');
    expect(models.cache).toMatchObject({ enabled: true, maxEntries: 10, kind: 'memory', ttlSeconds: 300 });
    expect(models.budgets.perUserDaily?.tokens).toBe(1000);
    expect(models.budgets.perConversation?.costUsd).toBe(0.5);
  });

  it('names a bad regular expression and an unknown provider kind', () => {
    expect(() => load({}, { models: { routing: { rules: [{ pattern: '(', tier: 'fast' }] } } })).toThrow(
      /models\.routing\.rules\.0\.pattern: not a valid regular expression/,
    );
    expect(() => load({}, { models: { deployments: { x: { provider: 'cohere' } } } })).toThrow(
      /models\.deployments\.x\.provider/,
    );
  });
});
