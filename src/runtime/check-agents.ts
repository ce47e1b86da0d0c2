import type { Config } from '../config/schema.ts';
import { ClawmeshError } from '../core/errors.ts';

/**
 * Checks what the schema alone cannot: that every agent's skills were loaded and its model
 * names a provider that runs. Throws `INVALID_ARGUMENT` naming each bad key, so a typo stops the
 * start instead of failing every turn of that agent.
 */
export function checkAgents(config: Config, skills: readonly string[], providers: readonly string[]): void {
  const loaded = new Set(skills);
  const known = new Set(providers);
  const problems: string[] = [];
  const checkModel = (key: string, model: string | undefined) => {
    // `auto` is the router itself (rules, then difficulty), as a request naming no model.
    if (model === undefined || model === 'auto') return;
    const provider = model.split('/')[0] ?? '';
    if (!known.has(provider)) {
      const hint = provider === 'openai' ? ' (set OPENAI_API_KEY to enable it)' : '';
      problems.push(`${key}: no model provider "${provider}"${hint} (running: ${[...known].join(', ')})`);
    }
  };
  checkModel('models.default', config.models.default);
  config.agents.forEach((agent, index) => {
    for (const skill of agent.skills ?? []) {
      if (!loaded.has(skill)) {
        problems.push(
          `agents.${index}.skills: no skill named "${skill}" (loaded: ${[...loaded].join(', ') || 'none'})`,
        );
      }
    }
    checkModel(`agents.${index}.model`, agent.model);
  });
  if (problems.length > 0) {
    throw new ClawmeshError('INVALID_ARGUMENT', `invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

/**
 * The names the Model Gateway will know from `config.models` alone, for checks made without
 * building it (`clawmesh doctor`): `local`, the providers with a key, the deployment ids and the
 * tiers (`fast` and `capable` always).
 */
export function configuredModelNames(config: Config): string[] {
  const models = config.models;
  return [
    ...new Set([
      'local',
      ...(models.openai.apiKey ? ['openai'] : []),
      ...(models.anthropic.apiKey ? ['anthropic'] : []),
      ...Object.keys(models.deployments),
      'fast',
      'capable',
      ...Object.keys(models.tiers),
    ]),
  ];
}
