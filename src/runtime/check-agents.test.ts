import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../config/schema.ts';
import { checkAgents, configuredModelNames } from './check-agents.ts';

const configOf = (input: unknown) => ConfigSchema.parse(input);

describe('checkAgents', () => {
  it('accepts an agent routed by the Model Gateway itself (model: auto)', () => {
    const config = configOf({ agents: [{ id: 'a', model: 'auto' }] });
    expect(() => checkAgents(config, [], ['local', 'fast', 'capable'])).not.toThrow();
  });

  it('names an agent model whose provider is not running', () => {
    const config = configOf({ agents: [{ id: 'a', model: 'openai/gpt-4o' }] });
    expect(() => checkAgents(config, [], ['local'])).toThrow(/agents\.0\.model: no model provider "openai"/);
  });
});

describe('configuredModelNames', () => {
  it('lists what the Model Gateway will know: providers with a key, deployments and tiers', () => {
    const config = configOf({
      models: {
        anthropic: { apiKey: 'sk-ant-0123456789' },
        deployments: { vllm: { provider: 'local' } },
        tiers: { vision: ['local'] },
      },
      agents: [
        { id: 'a', model: 'vllm' },
        { id: 'b', model: 'fast' },
        { id: 'c', model: 'vision' },
        { id: 'd', model: 'anthropic/claude-3-5-haiku-latest' },
      ],
    });
    const names = configuredModelNames(config);
    expect(names).toEqual(['local', 'anthropic', 'vllm', 'fast', 'capable', 'vision']);
    expect(() => checkAgents(config, [], names)).not.toThrow();
  });
});
