import type { Config } from '../config/schema.ts';
import { redactUrl } from '../core/redact-url.ts';
import { silentLogger } from '../observability/logger.ts';
import { probeHttp } from '../observability/probes.ts';
import { type Check, Problem, reason } from './doctor-check.ts';

type ProviderTarget = { name: string; provider: 'openai' | 'anthropic'; baseUrl: string; apiKey: string };

const VENDOR_URLS = { openai: 'https://api.openai.com/v1', anthropic: 'https://api.anthropic.com' } as const;
const VARIABLES = {
  openai: { key: 'OPENAI_API_KEY', url: 'OPENAI_BASE_URL' },
  anthropic: { key: 'ANTHROPIC_API_KEY', url: 'ANTHROPIC_BASE_URL' },
} as const;

/** A URL as doctor prints it: a password inside it as `***` (and nothing else changed). */
const shown = (url: string) => (url.includes('@') ? redactUrl(url) : url);

/** Each distinct provider server the Model Gateway will call (the shortcuts and the deployments). */
function providerTargets(config: Config): ProviderTarget[] {
  const models = config.models;
  const targets = new Map<string, ProviderTarget>();
  const add = (name: string, provider: 'openai' | 'anthropic', baseUrl?: string, apiKey?: string) => {
    if (!apiKey) return;
    const url = (baseUrl ?? VENDOR_URLS[provider]).replace(/\/+$/, '');
    const key = `${provider} ${url} ${apiKey}`;
    if (!targets.has(key)) targets.set(key, { name, provider, baseUrl: url, apiKey });
  };
  add('model openai', 'openai', models.openai.baseUrl, models.openai.apiKey);
  add('model anthropic', 'anthropic', models.anthropic.baseUrl, models.anthropic.apiKey);
  for (const [id, entry] of Object.entries(models.deployments ?? {})) {
    if (entry.provider === 'local') continue;
    const shortcut = models[entry.provider];
    add(`model ${id}`, entry.provider, entry.baseUrl ?? shortcut.baseUrl, entry.apiKey ?? shortcut.apiKey);
  }
  return [...targets.values()];
}

/** A provider's server answers its model list: `GET {baseUrl}/models` (OpenAI), `GET {baseUrl}/v1/models` (Anthropic). */
export function providerChecks(config: Config): Check[] {
  return providerTargets(config).map((target) => ({
    name: target.name,
    run: async () => {
      const vars = VARIABLES[target.provider];
      const openai = target.provider === 'openai';
      const url = openai ? `${target.baseUrl}/models` : `${target.baseUrl}/v1/models`;
      const headers: Record<string, string> = openai
        ? { authorization: `Bearer ${target.apiKey}` }
        : { 'x-api-key': target.apiKey, 'anthropic-version': '2023-06-01' };
      let answer: { status: number; body: string };
      try {
        answer = await probeHttp(url, { headers, timeoutMs: 3000 });
      } catch (err) {
        throw new Problem(
          `cannot reach ${shown(target.baseUrl)}: ${reason(err)}`,
          `start the model server, or set ${vars.url} to one that runs`,
        );
      }
      if (answer.status === 401 || answer.status === 403) {
        throw new Problem(
          `${shown(target.baseUrl)} refused the API key (HTTP ${answer.status})`,
          `set ${vars.key} to a valid key`,
        );
      }
      if (answer.status >= 400) {
        throw new Problem(
          `GET ${shown(url)} answered HTTP ${answer.status}`,
          openai
            ? `check ${vars.url}: an OpenAI-compatible server's base URL usually ends in /v1`
            : `check ${vars.url}: the base URL is the server's root, without /v1`,
        );
      }
      const count = modelCount(answer.body);
      return `${shown(target.baseUrl)} answers${count === undefined ? '' : ` (${count} models)`}`;
    },
  }));
}

function modelCount(body: string): number | undefined {
  try {
    const data = (JSON.parse(body) as { data?: unknown }).data;
    return Array.isArray(data) ? data.length : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The Model Gateway builds from the config as `clawmesh start` builds it: every tier entry names
 * a deployment, provider or tier, every routing rule a tier, every SDK deployment has a key and
 * the default model resolves. Nothing is called: Redis (a shared cache or budget store) is asked
 * for only on first use, and never here.
 */
export function gatewayCheck(config: Config): Check {
  return {
    name: 'models',
    run: async () => {
      const { buildModels } = await import('../runtime/models.ts');
      const { service } = await buildModels(config, {
        logger: silentLogger(),
        redis: () => Promise.reject(new Error('doctor opens no Redis connection')),
      });
      const { tiers } = service.describe();
      const deployments = Object.keys(config.models.deployments).length;
      return `tiers ${tiers.map((tier) => tier.name).join(', ')}; ${deployments} deployment(s)`;
    },
  };
}
